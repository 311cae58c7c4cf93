/**
 * Managed mode: every script reads the stage from the layout's stage record in the same atomic step
 * as its work. A missing record writes nothing; a transition reaches every call issued after it.
 */
import { Registry } from 'prom-client';
import Redis from 'ioredis';
import { DualWriteQueue, Migration, StageChangedError, StageUnsetError, STAGES, ValidationError } from '../../src';
import { loadScripts } from '../../src/scripts/manifest';
import { MAX_STAGE_RESTARTS } from '../../src/stage-control/run';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();

function managedQueue(options: { registry?: Registry } = {}): DualWriteQueue {
  return new DualWriteQueue({ redis: ctx.redis, stage: 'managed', heartbeat: false, metrics: options.registry ? { registry: options.registry } : false });
}
const migration = () => new Migration({ redis: ctx.redis, stage: 'managed', metrics: false });

describe('managed mode without a stage record', () => {
  it('every operation is a StageUnsetError naming the command that creates it, and nothing is written', async () => {
    const queue = managedQueue();
    await ctx.redis.rpush('queue:default', 'j1');
    // A claim past its deadline and a job due for the sweep: recoverStalled and maintain run their scripts.
    await ctx.redis.zadd('queue:default:processing', 1, 'acme:j1');
    await ctx.redis.zadd('queue:default:expiries', 1, 'acme:j1');
    const before = await redisState(ctx.redis);

    const calls: [string, () => Promise<unknown>][] = [
      ['ready', () => queue.ready()],
      ['enqueue', () => queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 })],
      ['enqueueMany', () => queue.enqueueMany([{ workspaceId: 'acme', type: 't', payload: 1 }])],
      ['updateStatus', () => queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' })],
      ['getJob', () => queue.getJob({ workspaceId: 'acme', jobId: 'j1' })],
      ['listJobs', () => queue.listJobs({ workspaceId: 'acme' })],
      ['claim', () => queue.claim({ workerId: 'w1' })],
      ['recoverStalled', () => queue.recoverStalled()],
      ['extendClaim', () => queue.extendClaim({ workspaceId: 'acme', jobId: 'j1', workerId: 'w1' })],
      ['requeue', () => queue.requeue({ workspaceId: 'acme', jobId: 'j1' })],
      ['deleteJob', () => queue.deleteJob({ workspaceId: 'acme', jobId: 'j1' })],
      ['maintain', () => queue.maintain()],
      ['backfill', () => migration().backfill()],
      ['verify', () => migration().verify()],
      ['cleanup', () => migration().cleanup({ yes: true })],
    ];
    for (const [name, call] of calls) {
      const error = (await call().catch((e: Error) => e)) as Error;
      expect({ name, error }).toEqual({ name, error: expect.any(StageUnsetError) });
      expect(error).toMatchObject({ code: 'STAGE_UNSET', key: 'dualwrite:stage' });
      expect(error.message).toContain('redis-dual-write stage init');
    }
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('setStage on a managed queue is a ValidationError pointing to Migration.setStage and the command', () => {
    const error = (() => {
      try {
        managedQueue().setStage('live');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('Migration.setStage');
    expect((error as Error).message).toContain('redis-dual-write stage set');
  });
});

describe('managed mode with a stage record', () => {
  it.each(STAGES)('in %s writes exactly what a static queue in that stage writes', async (stage) => {
    // The same calls, once through a static queue and once through a managed one, on a clean server.
    const run = async (queue: DualWriteQueue) => {
      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 }, jobId: 'j1', idempotencyKey: 'k1' });
      await queue.enqueueMany([{ workspaceId: 'acme', type: 't', payload: 2, jobId: 'j2' }]);
      const claimed = await queue.claim({ workerId: 'w1' });
      await queue.updateStatus({ workspaceId: 'acme', jobId: claimed!.id, status: 'succeeded', workerId: 'w1' });
      return { jobId, job: await queue.getJob({ workspaceId: 'acme', jobId: 'j2' }), list: (await queue.listJobs({ workspaceId: 'acme' })).jobs.map((j) => j.id) };
    };
    // Times differ between the two runs: every millisecond timestamp becomes T, as a value or inside text.
    const normalise = (value: unknown): unknown => {
      if (typeof value === 'string') return value.replace(/\d{13}/g, 'T');
      if (typeof value === 'number') return value >= 1e12 && value < 1e13 ? 'T' : value;
      if (Array.isArray(value)) return value.map(normalise);
      if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
      return value;
    };

    const { queue: staticQueue } = await makeQueue(ctx.redis, stage);
    const staticResult = await run(staticQueue);
    const staticState = normalise(await redisState(ctx.redis));
    await ctx.redis.flushall();
    await migration().initStage(stage, { reason: 'test' });
    const managed = managedQueue();
    const managedResult = await run(managed);
    const { 'dualwrite:stage': record, 'dualwrite:stage:history': history, ...managedState } = normalise(await redisState(ctx.redis)) as Record<string, unknown>;

    expect(normalise(managedResult)).toEqual(normalise(staticResult));
    expect(managedState).toEqual(staticState);
    expect(record).toBeDefined();
    expect(history).toBeDefined();
    expect([managed.stage, managed.epoch, managed.stageMode]).toEqual([stage, '1', 'managed']);
  });

  it('a transition reaches the next call of every instance, with no restart of its own', async () => {
    await migration().initStage('dualwrite', { reason: 'test' });
    const registry = new Registry();
    const queue = managedQueue({ registry });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    expect(await metricValue(registry, 'dualwrite_stage', { queue: 'default', stage: 'dualwrite' })).toBe(1);

    // No backfill ran, so the guard must be forced: the point here is the switch itself.
    const result = await migration().setStage('shadow', { reason: 'test', force: true });
    const job = await queue.getJob({ workspaceId: 'acme', jobId });
    await ctx.redis.del(`job:${jobId}`); // shadow reads the legacy layout: now there is nothing to read
    const gone = await queue.getJob({ workspaceId: 'acme', jobId });

    expect(result).toMatchObject({ from: 'dualwrite', to: 'shadow', epoch: 2, forced: true, replicated: null });
    expect(job?.source).toBe('legacy');
    expect(gone).toBeNull();
    expect([queue.stage, queue.epoch]).toEqual(['shadow', '2']);
    expect(await metricValue(registry, 'dualwrite_stage', { queue: 'default', stage: 'shadow' })).toBe(1);
    expect(await metricValue(registry, 'dualwrite_stage', { queue: 'default', stage: 'dualwrite' })).toBe(0);
    expect(await metricValue(registry, 'dualwrite_stage_epoch', { queue: 'default' })).toBe(2);
  });

  it('ready() learns the stage from the record', async () => {
    await migration().initStage('live', { reason: 'test' });
    const queue = managedQueue();
    expect(queue.stage).toBeUndefined();

    await queue.ready();

    expect([queue.stage, queue.epoch]).toEqual(['live', '1']);
  });
});

describe('a call of several scripts under a stage that keeps changing', () => {
  /** A client of its own on which, after every page of the index, the operator's transition lands. */
  async function pagesThenTransition(transitions: number): Promise<{ queue: DualWriteQueue; registry: Registry; client: Redis }> {
    const client = new Redis(ctx.handle.url);
    const pageSha = loadScripts().get('list_index_page.v3')!.sha1;
    const evalsha = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let left = transitions;
    (client as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = async (...args: unknown[]) => {
      const reply = await evalsha(...args);
      if (args[0] === pageSha && left-- > 0) await ctx.redis.hincrby('dualwrite:stage', 'epoch', 1);
      return reply;
    };
    const registry = new Registry();
    const queue = new DualWriteQueue({ redis: client, stage: 'managed', heartbeat: false, metrics: { registry } });
    await queue.ready(); // the scripts are loaded: every call goes by EVALSHA
    return { queue, registry, client };
  }

  beforeEach(async () => {
    await migration().initStage('live', { reason: 'test' });
    await ctx.redis.hset('ws:acme:job:j1', { id: 'j1', workspace_id: 'acme', type: 't', payload: '1', status: 'queued', created_at: '1', updated_at: '1' });
    await ctx.redis.zadd('ws:acme:jobs', 1, 'j1');
  });

  it('starts over under the new epoch, each restart counted, and answers from one stage', async () => {
    const { queue, registry, client } = await pagesThenTransition(3);
    try {
      const page = await queue.listJobs({ workspaceId: 'acme' });

      expect(page.jobs.map((job) => job.id)).toEqual(['j1']);
      expect(queue.epoch).toBe('4');
      expect(await metricValue(registry, 'dualwrite_stage_restarts_total', { operation: 'list_jobs' })).toBe(3);
    } finally {
      client.disconnect();
    }
  });

  it(`gives up after ${MAX_STAGE_RESTARTS} restarts with a StageChangedError naming the epochs, and nothing written`, async () => {
    const { queue, registry, client } = await pagesThenTransition(100);
    const before = await redisState(ctx.redis);
    try {
      const error = await queue.listJobs({ workspaceId: 'acme' }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(StageChangedError);
      expect(error).toMatchObject({ code: 'STAGE_CHANGED', operation: 'listJobs', startedEpoch: '6', currentEpoch: '7' });
      expect(await metricValue(registry, 'dualwrite_stage_restarts_total', { operation: 'list_jobs' })).toBe(MAX_STAGE_RESTARTS);
      const after = await redisState(ctx.redis);
      const epochs = MAX_STAGE_RESTARTS + 1;
      const record = before['dualwrite:stage'].value as Record<string, string>;
      expect(after).toEqual({ ...before, 'dualwrite:stage': { type: 'hash', value: { ...record, epoch: String(Number(record.epoch) + epochs) } } });
    } finally {
      client.disconnect();
    }
  });
});
