/**
 * The `keys` option on one Redis: a service keeps its own legacy key names, the queue and the
 * migration use them, keyPrefix goes in front of every key, and a layout that would merge two keys
 * or cannot be read backwards is refused before anything is sent.
 */
import { DualWriteQueue, Migration, type KeyLayoutOption } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { jobFields, jobHash, list, putJob, redisState, zset, type JobRecord } from '../support/state';

const ctx = useRedis();

/** A legacy service that named its job hashes and its queue its own way. */
const LEGACY_NAMES: KeyLayoutOption = {
  legacyJob: (jobId) => `legacy:jobs:${jobId}`,
  queue: (queueName) => `legacy:queue:${queueName}`,
};

const old: JobRecord = {
  id: 'old1',
  workspaceId: 'acme',
  type: 'email.send',
  payload: { to: 'a@acme.test' },
  status: 'queued',
  createdAt: 1_700_000_000_000,
  updatedAt: 1_700_000_000_000,
};

describe('a custom key layout', () => {
  it("writes the service's own legacy names, with keyPrefix in front of every key", async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite', { keys: LEGACY_NAMES, keyPrefix: 'svc:' });

    await queue.enqueue({ workspaceId: 'acme', type: 'email.send', payload: { n: 1 }, jobId: 'j1', idempotencyKey: 'k1' });

    const job = (await queue.getJob({ workspaceId: 'acme', jobId: 'j1' }))!;
    const fields = jobFields({ ...job, id: 'j1', workspaceId: 'acme', idempotencyKey: 'k1' } as JobRecord);
    const state = await redisState(ctx.redis);
    expect(Object.keys(state).sort()).toEqual([
      'svc:legacy:jobs:j1',
      'svc:legacy:queue:default',
      'svc:ws:acme:idem:k1',
      'svc:ws:acme:job:j1',
      'svc:ws:acme:jobs',
    ]);
    expect(state['svc:legacy:jobs:j1']).toEqual({ type: 'hash', value: fields });
    expect(state['svc:ws:acme:job:j1']).toEqual({ type: 'hash', value: fields });
    expect(state['svc:legacy:queue:default']).toEqual(list('j1'));
    expect(state['svc:ws:acme:jobs']).toEqual(zset(['j1', job.createdAt]));
  });

  it('reads a job of the legacy service through the fallback, repairs it on update, and the migration finds its keys', async () => {
    await putJob(ctx.redis, 'legacy:jobs:old1', old);
    await putJob(ctx.redis, 'legacy:jobs:old2', { ...old, id: 'old2' });
    const { queue, registry } = await makeQueue(ctx.redis, 'live', { keys: LEGACY_NAMES });

    const read = await queue.getJob({ workspaceId: 'acme', jobId: 'old1' });
    const updated = await queue.updateStatus({ workspaceId: 'acme', jobId: 'old1', status: 'running' });
    const migration = new Migration({ redis: ctx.redis, stage: 'live', keys: LEGACY_NAMES, metrics: false });
    const backfill = await migration.backfill();
    const verify = await migration.verify();

    expect(read).toMatchObject({ id: 'old1', source: 'legacy' });
    expect(updated).toMatchObject({ previousStatus: 'queued', repaired: 'new' });
    expect(await metricValue(registry, 'dualwrite_read_fallbacks_total', { operation: 'get_job' })).toBe(1);
    expect(backfill).toMatchObject({ completed: true, examined: 2, results: { copied: 1, same: 1 } });
    expect(verify).toMatchObject({ completed: true, clean: true, checked: { legacyJobs: 2, newJobs: 2, indexEntries: 2 } });
    const running = (await redisState(ctx.redis))['legacy:jobs:old1'];
    expect(await redisState(ctx.redis)).toEqual({
      'legacy:jobs:old1': running,
      'ws:acme:job:old1': running,
      'legacy:jobs:old2': jobHash({ ...old, id: 'old2' }),
      'ws:acme:job:old2': jobHash({ ...old, id: 'old2' }),
      'ws:acme:jobs': zset(['old1', old.createdAt], ['old2', old.createdAt]),
    });
    expect(running).toMatchObject({ value: { status: 'running' } });
  });

  it.each<[string, unknown, string, string]>([
    ['an unknown builder', { jobKey: () => 'x' }, 'keys.jobKey', 'unknown-field'],
    ['a builder that is no function', { legacyJob: 'job:' }, 'keys.legacyJob', 'type'],
    ['keys that are no object', 'cluster', 'keys', 'type'],
    ['a builder returning an empty key', { queue: () => '' }, 'keys.queue', 'builder'],
    ['a builder returning no string', { legacyJob: (id: string) => id.length }, 'keys.legacyJob', 'builder'],
    ['a new key equal to the legacy key', { newJob: (_ws: string, id: string) => `job:${id}` }, 'keys.newJob', 'distinct'],
    ['a builder that drops an id', { newJob: (ws: string) => `ws:${ws}:job` }, 'keys.newJob', 'distinct'],
    ['a builder that throws', { orphans: () => { throw new Error('boom'); } }, 'keys.orphans', 'builder'],
  ])('refuses %s before anything is sent', async (_what, keys, field, rule) => {
    const build = () => new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'dualwrite', keys: keys as KeyLayoutOption, metrics: false });

    expect(build).toThrow(expect.objectContaining({ code: 'VALIDATION', field, rule }));
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it('the migration refuses a layout it cannot read backwards, or whose walks would mistake one kind of key for another', async () => {
    const hashed: KeyLayoutOption = { legacyJob: (jobId) => `job:${jobId.split('').reverse().join('')}` };
    const overlapping: KeyLayoutOption = { legacyJob: (jobId) => `jobs/${jobId}`, newJob: (ws, jobId) => `jobs/${ws}/${jobId}` };

    expect(() => new Migration({ redis: ctx.redis, stage: 'dualwrite', keys: hashed, metrics: false })).toThrow(
      expect.objectContaining({ field: 'keys.legacyJob', rule: 'template' }),
    );
    expect(() => new Migration({ redis: ctx.redis, stage: 'dualwrite', keys: overlapping, metrics: false })).toThrow(
      expect.objectContaining({ field: 'keys.legacyJob', rule: 'overlap' }),
    );
    // The queue itself needs no reading backwards: it takes both.
    expect(new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'dualwrite', keys: hashed, metrics: false }).stage).toBe('dualwrite');
    expect(await redisState(ctx.redis)).toEqual({});
  });
});
