/**
 * deleteJob removes one job whole, in one script: its record from every layout it is in (a legacy
 * record only when it is this workspace's), its index entry, any queue, processing, claim and expiry
 * entry, and its idempotency key. Everything else stays: each test compares the whole database with
 * the state before minus exactly this job's keys and entries.
 */
import { ClaimConflictError, NotFoundError, ValidationError, type DualWriteQueue, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { putJob, redisState, type KeyState } from '../support/state';
import {
  CLAIMS,
  EACH_STAGE,
  EXPIRIES,
  indexKey,
  legacyKey,
  makeManagedQueue,
  moveStage,
  newKey,
  PROCESSING,
  QUEUE,
  rejection,
  scriptCalls,
  type StageCase,
} from './helpers';

const ctx = useRedis();

type State = Record<string, KeyState>;

/** What one job leaves in the database: whole keys, and members of shared keys. */
interface Traces {
  keys: string[];
  /** key -> members (zset members, hash fields, list entries) of this job. */
  members: Record<string, string[]>;
}

/** The snapshot minus exactly a job's traces; a shared key left empty is gone, as Redis removes it. */
function without(state: State, traces: Traces): State {
  const out: State = {};
  for (const [key, entry] of Object.entries(state)) {
    if (traces.keys.includes(key)) continue;
    const gone = traces.members[key];
    if (!gone) {
      out[key] = entry;
      continue;
    }
    let left: KeyState;
    if (entry.type === 'zset') left = { ...entry, value: entry.value.filter(([member]) => !gone.includes(member)) };
    else if (entry.type === 'hash') left = { ...entry, value: Object.fromEntries(Object.entries(entry.value).filter(([field]) => !gone.includes(field))) };
    else if (entry.type === 'list') {
      const value = [...entry.value];
      for (const member of gone) {
        const at = value.indexOf(member);
        if (at >= 0) value.splice(at, 1);
      }
      left = { ...entry, value };
    } else throw new Error(`${key}: a ${entry.type} holds no members`);
    const size = Array.isArray(left.value) ? left.value.length : Object.keys(left.value).length;
    if (size > 0) out[key] = left;
  }
  // Every trace named must have been there: a test that names a trace the job never left proves nothing.
  for (const key of traces.keys) expect({ key, present: key in state }).toEqual({ key, present: true });
  return out;
}

/** The queues of a stage and the one that makes its jobs: in complete, rampdown, so the job has its frozen legacy twin. */
async function queuesFor(c: StageCase, options: Parameters<typeof makeQueue>[2] = {}) {
  const made = await makeQueue(ctx.redis, c.stage, options);
  const maker = c.stage === 'complete' ? (await makeQueue(ctx.redis, 'rampdown', options)).queue : made.queue;
  return { ...made, maker };
}

/** The job keys acme's job x has: both layouts where the stage (or, in complete, its maker) writes them. */
function recordsOf(c: StageCase, jobId: string): string[] {
  if (c.stage === 'complete') return [legacyKey(jobId), newKey('acme', jobId)];
  return [...(c.legacy ? [legacyKey(jobId)] : []), ...(c.fresh ? [newKey('acme', jobId)] : [])];
}

/** Neighbours: another acme job with its own idempotency key, waiting; and a globex job. */
async function neighbours(maker: DualWriteQueue): Promise<void> {
  await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 'n', jobId: 'neighbour', idempotencyKey: 'k-neighbour' });
  await maker.enqueue({ workspaceId: 'globex', type: 't', payload: 'g', jobId: 'globex-job', idempotencyKey: 'k1' });
}

describe('deleteJob removes exactly the job', () => {
  it.each(EACH_STAGE)('in %s: a waiting job with its idempotency key, between neighbours', async (_stage, c) => {
    const { queue, registry, maker } = await queuesFor(c);
    await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 'first', jobId: 'first' });
    await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
    await neighbours(maker);
    const before = await redisState(ctx.redis);

    const result = await queue.deleteJob({ workspaceId: 'acme', jobId: 'x' });

    const records = recordsOf(c, 'x');
    expect(result).toEqual({ jobId: 'x', deleted: records.map((key) => (key === legacyKey('x') ? 'legacy' : 'new')) });
    const entry = c.stage === 'complete' ? 'x' : c.entry('acme', 'x'); // complete's jobs were made in rampdown
    expect(await redisState(ctx.redis)).toEqual(
      without(before, { keys: [...records, 'ws:acme:idem:k1'], members: { [indexKey('acme')]: ['x'], [QUEUE]: [entry] } }),
    );
    expect(await metricValue(registry, 'dualwrite_deletions_total', { forced: 'no' })).toBe(1);
    expect(await queue.getJob({ workspaceId: 'acme', jobId: 'x' })).toBeNull();
    // The workers meet the neighbours only.
    const claimed = [];
    for (let job = await queue.claim({ workerId: 'w' }); job; job = await queue.claim({ workerId: 'w' })) claimed.push(job.id);
    expect(claimed).toEqual(['first', 'neighbour', 'globex-job']);
  });

  it.each(EACH_STAGE)('in %s: a finished job under retention, its expiry entry with it', async (_stage, c) => {
    const { queue, maker } = await queuesFor(c, { retention: { succeeded: 3600 } });
    await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
    await neighbours(maker);
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe('x');
    await queue.updateStatus({ workspaceId: 'acme', jobId: 'x', status: 'succeeded', workerId: 'w1', result: { ok: 1 } });
    await queue.updateStatus({ workspaceId: 'acme', jobId: 'neighbour', status: 'succeeded' });
    const before = await redisState(ctx.redis);
    expect((before[EXPIRIES].value as [string, number][]).map(([member]) => member).sort()).toEqual(['acme:neighbour', 'acme:x']);

    await queue.deleteJob({ workspaceId: 'acme', jobId: 'x' });

    expect(await redisState(ctx.redis)).toEqual(
      without(before, { keys: [...recordsOf(c, 'x'), 'ws:acme:idem:k1'], members: { [indexKey('acme')]: ['x'], [EXPIRIES]: ['acme:x'] } }),
    );
  });

  it.each(EACH_STAGE)('in %s: a job a worker holds is refused unless forced; forced, its claim goes with it', async (_stage, c) => {
    const { queue, registry, maker } = await queuesFor(c);
    await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
    await neighbours(maker);
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe('x');
    expect((await queue.claim({ workerId: 'w2' }))?.id).toBe('neighbour');
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);

    const refused = await rejection(queue.deleteJob({ workspaceId: 'acme', jobId: 'x' }));

    expect(refused).toBeInstanceOf(ClaimConflictError);
    expect(refused).toMatchObject({ code: 'CLAIM_CONFLICT', jobId: 'x', claimant: 'w1' });
    expect(refused.message).toContain('force');
    expect(await redisState(ctx.redis)).toEqual(before);
    expect((await scriptCalls(ctx.redis)) - sent).toBe(1);

    await queue.deleteJob({ workspaceId: 'acme', jobId: 'x', force: true });

    const entry = c.stage === 'complete' ? 'x' : c.entry('acme', 'x');
    expect(await redisState(ctx.redis)).toEqual(
      without(before, { keys: [...recordsOf(c, 'x'), 'ws:acme:idem:k1'], members: { [indexKey('acme')]: ['x'], [PROCESSING]: [entry], [CLAIMS]: [entry] } }),
    );
    expect(await metricValue(registry, 'dualwrite_deletions_total', { forced: 'yes' })).toBe(1);
    // The worker that held it learns the job is gone; its claim is not there to extend.
    expect(await rejection(queue.updateStatus({ workspaceId: 'acme', jobId: 'x', status: 'succeeded', workerId: 'w1' }))).toBeInstanceOf(NotFoundError);
    expect(await rejection(queue.extendClaim({ workspaceId: 'acme', jobId: 'x', workerId: 'w1' }))).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: '' });
  });

  it('in managed mode (live): a held job forced out, the stage record untouched', async () => {
    const { queue, registry } = await makeManagedQueue(ctx.redis, 'live');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
    await neighbours(queue);
    await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);

    expect(await rejection(queue.deleteJob({ workspaceId: 'acme', jobId: 'x' }))).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: 'w1' });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await queue.deleteJob({ workspaceId: 'acme', jobId: 'x', force: true })).toEqual({ jobId: 'x', deleted: ['legacy', 'new'] });

    expect(await redisState(ctx.redis)).toEqual(
      without(before, { keys: [legacyKey('x'), newKey('acme', 'x'), 'ws:acme:idem:k1'], members: { [indexKey('acme')]: ['x'], [PROCESSING]: ['x'], [CLAIMS]: ['x'] } }),
    );
    expect(await metricValue(registry, 'dualwrite_deletions_total', { forced: 'yes' })).toBe(1);
  });

  it('in managed mode: a job requeued in off after a rollback (its new twin stale, still running) leaves the queue with it', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x' });
    await neighbours(queue);
    await queue.claim({ workerId: 'w1' });
    await moveStage(migration, 'off');
    await queue.requeue({ workspaceId: 'acme', jobId: 'x', workerId: 'w1' });
    const before = await redisState(ctx.redis);
    expect([before[legacyKey('x')].value, before[newKey('acme', 'x')].value]).toMatchObject([{ status: 'queued' }, { status: 'running' }]);

    await queue.deleteJob({ workspaceId: 'acme', jobId: 'x' });

    expect(await redisState(ctx.redis)).toEqual(without(before, { keys: [legacyKey('x'), newKey('acme', 'x')], members: { [indexKey('acme')]: ['x'], [QUEUE]: ['x'] } }));
  });
});

describe("deleteJob never touches another workspace's job of the same id", () => {
  it.each<Stage>(['dualwrite', 'shadow', 'live', 'rampdown', 'complete'])(
    "in %s: acme's job lives in the new layout only, globex's legacy service holds job:x; only acme's goes",
    async (stage) => {
      // acme's x was made in complete; after a rollback globex's legacy service took job:x and queued it.
      const complete = await makeQueue(ctx.redis, 'complete');
      await complete.queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
      await complete.queue.enqueue({ workspaceId: 'globex', type: 't', payload: 2, jobId: 'x', idempotencyKey: 'k1' });
      await putJob(ctx.redis, legacyKey('x'), { id: 'x', workspaceId: 'globex', type: 't', payload: 3, status: 'queued', createdAt: 1, updatedAt: 1 });
      await ctx.redis.rpush(QUEUE, 'x');
      const { queue } = await makeQueue(ctx.redis, stage);
      const before = await redisState(ctx.redis);

      const result = await queue.deleteJob({ workspaceId: 'acme', jobId: 'x' });

      expect(result).toEqual({ jobId: 'x', deleted: ['new'] });
      expect(await redisState(ctx.redis)).toEqual(
        without(before, { keys: [newKey('acme', 'x'), 'ws:acme:idem:k1'], members: { [indexKey('acme')]: ['x'], [QUEUE]: ['acme:x'] } }),
      );
    },
  );

  it('in off: a legacy record of another workspace is not found, and not deleted', async () => {
    const { queue } = await makeQueue(ctx.redis, 'off');
    await queue.enqueue({ workspaceId: 'globex', type: 't', payload: 1, jobId: 'x' });
    const before = await redisState(ctx.redis);

    expect(await rejection(queue.deleteJob({ workspaceId: 'acme', jobId: 'x' }))).toBeInstanceOf(NotFoundError);

    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

describe('after deleteJob an idempotency key is free again', () => {
  it.each(EACH_STAGE)('in %s: the same key and request create a new job, not a replay of the deleted one', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const request = { workspaceId: 'acme', type: 't', payload: { n: 1 }, idempotencyKey: 'signup-1' };
    const first = await queue.enqueue(request);
    expect(await queue.enqueue(request)).toEqual({ jobId: first.jobId, created: false });

    await queue.deleteJob({ workspaceId: 'acme', jobId: first.jobId });
    const again = await queue.enqueue(request);

    expect(again.created).toBe(true);
    expect(again.jobId).not.toBe(first.jobId);
    expect(await queue.getJob({ workspaceId: 'acme', jobId: again.jobId })).toMatchObject({ status: 'queued', payload: { n: 1 } });
    expect(await queue.enqueue(request)).toEqual({ jobId: again.jobId, created: false });
  });

  it.each<Stage>(['off', 'complete'])('in %s: a job made by enqueueMany with an idempotency key frees it too', async (stage) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    const request = { workspaceId: 'acme', type: 't', payload: 1, idempotencyKey: 'batch-1' };
    const [first] = await queue.enqueueMany([request, { workspaceId: 'acme', type: 't', payload: 2 }]);

    await queue.deleteJob({ workspaceId: 'acme', jobId: first.jobId });

    expect(await ctx.redis.exists('ws:acme:idem:batch-1')).toBe(0);
    expect(await queue.enqueue(request)).toMatchObject({ created: true });
  });

  it("a key that by now names another job (the deleted job's key expired and was reused) is left to that job", async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x', idempotencyKey: 'k1' });
    await ctx.redis.del('ws:acme:idem:k1');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'y', idempotencyKey: 'k1' });
    const before = await redisState(ctx.redis);

    await queue.deleteJob({ workspaceId: 'acme', jobId: 'x' });

    expect(await redisState(ctx.redis)).toEqual(without(before, { keys: [legacyKey('x'), newKey('acme', 'x')], members: { [indexKey('acme')]: ['x'], [QUEUE]: ['x'] } }));
  });
});

describe('deleteJob refuses what it cannot do, sending and writing nothing', () => {
  it('a job that is not there is a NotFoundError', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x' });
    const before = await redisState(ctx.redis);

    expect(await rejection(queue.deleteJob({ workspaceId: 'acme', jobId: 'nope' }))).toMatchObject({ code: 'NOT_FOUND', jobId: 'nope' });
    expect(await rejection(queue.deleteJob({ workspaceId: 'globex', jobId: 'x' }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('bad input is a ValidationError before anything is sent', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'x' });
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);
    const commands = Number(/total_commands_processed:(\d+)/.exec(String(await ctx.redis.info('stats')))![1]);

    const cases: [unknown, string][] = [
      [{ workspaceId: 'acme', jobId: 'x', force: 'yes' }, 'force'],
      [{ workspaceId: 'ac*me', jobId: 'x' }, 'workspaceId'],
      [{ workspaceId: 'acme', jobId: 'x:y' }, 'jobId'],
      [{ workspaceId: 'acme', jobId: 'x', cascade: true }, 'input.cascade'],
    ];
    for (const [input, field] of cases) {
      const error = await rejection(queue.deleteJob(input as { workspaceId: string; jobId: string }));
      expect({ field, error }).toEqual({ field, error: expect.any(ValidationError) });
      expect((error as ValidationError).field).toBe(field);
    }

    // The two INFO calls of this test are all the server saw (deleteJob reads the job's key before its script otherwise).
    expect(Number(/total_commands_processed:(\d+)/.exec(String(await ctx.redis.info('stats')))![1])).toBe(commands + 1);
    expect(await scriptCalls(ctx.redis)).toBe(sent);
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});
