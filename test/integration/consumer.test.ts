import Redis from 'ioredis';
import { ClaimConflictError, DualWriteQueue, STAGES, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { hash, jobHash, list, putJob, redisState, zset } from '../support/state';

const ctx = useRedis();

const PROCESSING = 'queue:default:processing';
const CLAIMS = 'queue:default:claims';
const ORPHANS = 'queue:default:orphans';
const UNSUPPORTED = 'queue:default:unsupported';

/** How often the server ran a command so far (INFO commandstats). */
async function commandCalls(redis: Redis, command: string): Promise<number> {
  const stats = String(await redis.info('commandstats'));
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

/** The claim record as claim_job writes it. */
function claimOf(claimedAt: number, visibilityMs: number, workspaceId: string, workerId: string): string {
  return `${claimedAt}:${visibilityMs}:${workspaceId}:${workerId}`;
}

describe('claim', () => {
  it.each<[Stage, boolean, boolean, (id: string) => string]>([
    ['off', true, false, (id) => id],
    ['dualwrite', true, true, (id) => id],
    ['shadow', true, true, (id) => id],
    ['live', true, true, (id) => id],
    ['rampdown', true, true, (id) => id],
    ['complete', false, true, (id) => `acme:${id}`],
  ])('in %s moves the entry to processing and marks the job running in the layouts the stage writes', async (stage, legacy, fresh, entryOf) => {
    const { queue, registry } = await makeQueue(ctx.redis, stage);
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 } });
    const enqueued = (await queue.getJob({ workspaceId: 'acme', jobId }))!;

    const job = await queue.claim({ workerId: 'worker-1', visibilityTimeoutMs: 60_000 });

    expect(job).toMatchObject({ id: jobId, workspaceId: 'acme', status: 'running', payload: { n: 1 } });
    const running = { ...enqueued, status: 'running', updatedAt: job!.updatedAt, attempts: 1 };
    const entry = entryOf(jobId);
    const expected: Record<string, unknown> = {
      'ws:acme:jobs': zset([jobId, enqueued.createdAt]),
      [PROCESSING]: zset([entry, job!.updatedAt + 60_000]),
      [CLAIMS]: hash({ [entry]: claimOf(job!.updatedAt, 60_000, 'acme', 'worker-1') }),
    };
    if (legacy) expected[`job:${jobId}`] = jobHash(running);
    if (fresh) expected[`ws:acme:job:${jobId}`] = jobHash(running);
    expect(await redisState(ctx.redis)).toEqual(expected);
    expect(await metricValue(registry, 'dualwrite_claims_total', { outcome: 'claimed' })).toBe(1);
  });

  it('returns null on an empty queue and writes nothing', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');

    expect(await queue.claim({ workerId: 'w1' })).toBeNull();

    expect(await redisState(ctx.redis)).toEqual({});
    expect(await metricValue(registry, 'dualwrite_claims_total', { outcome: 'empty' })).toBe(1);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'claim', outcome: 'empty' })).toBe(1);
  });

  it('gives one worker the jobs in queue order', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    for (const jobId of ['c', 'a', 'b']) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId });

    const order = [];
    for (let i = 0; i < 4; i++) order.push((await queue.claim({ workerId: 'w1' }))?.id ?? null);

    expect(order).toEqual(['c', 'a', 'b', null]);
    const state = await redisState(ctx.redis);
    expect(state['queue:default']).toBeUndefined();
    expect((state[PROCESSING].value as [string, number][]).map(([e]) => e).sort()).toEqual(['a', 'b', 'c']);
  });

  it('never gives a job to two workers: many claimers on their own connections take every job exactly once', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    const jobIds: string[] = [];
    for (let i = 0; i < 150; i++) jobIds.push((await queue.enqueue({ workspaceId: `ws${i % 5}`, type: 't', payload: i })).jobId);
    const clients = Array.from({ length: 6 }, () => new Redis(ctx.handle.url));
    try {
      const workers = clients.map((redis, w) => ({ id: `w${w}`, queue: new DualWriteQueue({ heartbeat: false, redis, stage: 'live', metrics: false }) }));

      const claimed = await Promise.all(
        workers.map(async ({ id, queue: q }) => {
          const mine: string[] = [];
          // Four claims in flight per connection, so claims really race.
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              for (let job = await q.claim({ workerId: id }); job; job = await q.claim({ workerId: id })) mine.push(job.id);
            }),
          );
          return mine;
        }),
      );

      const all = claimed.flat();
      expect(all.sort()).toEqual([...jobIds].sort());
      const state = await redisState(ctx.redis);
      expect(state['queue:default']).toBeUndefined();
      expect((state[PROCESSING].value as [string, number][]).length).toBe(150);
      const claims = state[CLAIMS].value as Record<string, string>;
      claimed.forEach((mine, w) => mine.forEach((id) => expect(claims[id]).toMatch(new RegExp(`:w${w}$`))));
    } finally {
      clients.forEach((c) => c.disconnect());
    }
  });

  it('moves an entry without a job record aside to the orphans list, counts it, and hands out the next job', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite', { logger });
    await ctx.redis.rpush('queue:default', 'ghost', 'acme:gone');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

    const job = await queue.claim({ workerId: 'w1' });

    expect(job?.id).toBe(jobId);
    const state = await redisState(ctx.redis);
    expect(state[ORPHANS]).toEqual(list('ghost', 'acme:gone'));
    expect(state['queue:default']).toBeUndefined();
    expect(Object.keys(state).sort()).toEqual([CLAIMS, PROCESSING, ORPHANS, `job:${jobId}`, `ws:acme:job:${jobId}`, 'ws:acme:jobs'].sort());
    expect(await metricValue(registry, 'dualwrite_orphaned_entries_total', { operation: 'claim' })).toBe(2);
    expect(warnings.filter((w) => w.includes('orphans'))).toHaveLength(2);
  });

  it.each(STAGES)(
    'in %s sets an entry the package cannot place aside in its own list (never the orphans list), counts it, and hands out the next job',
    async (stage) => {
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
      const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
      // A legacy service's job whose id holds a space, and one whose record names no valid workspace:
      // both have records, so neither is an orphan, and neither may block the head of the queue.
      const odd = { workspace_id: 'acme', type: 't', payload: '1', status: 'queued', created_at: '1', updated_at: '1' };
      await ctx.redis.hset('job:order 17', { id: 'order 17', ...odd });
      await ctx.redis.hset('job:nows', { id: 'nows', ...odd, workspace_id: 'acme corp' });
      await ctx.redis.rpush('queue:default', 'order 17', 'nows');
      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
      const before = await redisState(ctx.redis);

      const job = await queue.claim({ workerId: 'w1' });

      expect(job?.id).toBe(jobId);
      const state = await redisState(ctx.redis);
      expect(state[UNSUPPORTED]).toEqual(list('order 17', 'nows'));
      expect(state[ORPHANS]).toBeUndefined();
      expect(state['job:order 17']).toEqual(before['job:order 17']);
      expect(state['job:nows']).toEqual(before['job:nows']);
      expect(await metricValue(registry, 'dualwrite_unsupported_entries_total', { operation: 'claim' })).toBe(2);
      expect(await metricValue(registry, 'dualwrite_orphaned_entries_total', { operation: 'claim' })).toBe(0);
      expect(warnings.filter((w) => w.includes('cannot place'))).toHaveLength(2);
    },
  );

  it.each<[Stage, boolean, boolean]>([
    ['off', true, false],
    ['dualwrite', true, true],
    ['shadow', true, true],
    ['live', true, true],
    ['rampdown', true, true],
    ['complete', true, true], // the legacy twin follows the job in complete
  ])('in %s claims a legacy job whose id holds a dot, as the legacy service wrote it', async (stage, legacy, fresh) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    const old = { id: 'order.1042', workspaceId: 'acme', type: 't', payload: 1, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
    await putJob(ctx.redis, 'job:order.1042', old);
    if (stage === 'complete') await putJob(ctx.redis, 'ws:acme:job:order.1042', old);
    await ctx.redis.rpush('queue:default', 'order.1042');

    const job = await queue.claim({ workerId: 'w1' });

    expect(job).toMatchObject({ id: 'order.1042', workspaceId: 'acme', status: 'running' });
    const running = { ...old, status: 'running', updatedAt: job!.updatedAt, attempts: 1 };
    const state = await redisState(ctx.redis);
    expect(state['job:order.1042']).toEqual(jobHash(legacy ? running : old));
    expect(state['ws:acme:job:order.1042']).toEqual(fresh ? jobHash(running) : undefined);
    expect(state[PROCESSING]).toEqual(zset(['order.1042', job!.updatedAt + 30_000]));
    expect(state[ORPHANS]).toBeUndefined();
    expect(state[UNSUPPORTED]).toBeUndefined();
    await queue.updateStatus({ workspaceId: 'acme', jobId: 'order.1042', status: 'succeeded', workerId: 'w1' });
    expect((await queue.getJob({ workspaceId: 'acme', jobId: 'order.1042' }))?.status).toBe('succeeded');
  });

  it('takes the entry of a job cancelled while queued off the queue in the same step', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.rpush('queue:default', 'other');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const before = await redisState(ctx.redis);

    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });

    const state = await redisState(ctx.redis);
    const cancelled = (key: string) => ({ ...before[key], value: { ...(before[key].value as object), status: 'cancelled', updated_at: expect.any(String) } });
    expect(state).toEqual({ ...before, 'queue:default': list('other'), [`job:${jobId}`]: cancelled(`job:${jobId}`), [`ws:acme:job:${jobId}`]: cancelled(`ws:acme:job:${jobId}`) });
    expect(await metricValue(registry, 'dualwrite_claims_total', { outcome: 'skipped' })).toBe(0);
  });

  it('drops, without handing it out, the entry of a job cancelled while it waited too deep for the update to find it', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    // Past the 1000 entries an update searches, the entry stays where it is.
    await ctx.redis.lpush('queue:default', ...Array.from({ length: 1000 }, (_, i) => `ahead-${i}`));
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });
    expect(await ctx.redis.lpos('queue:default', jobId)).toBe(1000);
    await ctx.redis.ltrim('queue:default', 1000, -1);
    const before = await redisState(ctx.redis);
    // The update said so on the job: its entry may still wait (a requeue then looks for it).
    const marked = (key: string) => before[key].value as Record<string, string>;
    expect([marked(`job:${jobId}`).entry_unfound, marked(`ws:acme:job:${jobId}`).entry_unfound]).toEqual(['1', '1']);

    expect(await queue.claim({ workerId: 'w1' })).toBeNull();

    const { 'queue:default': _dropped, ...rest } = before;
    const unmarked = (key: string) => {
      const { entry_unfound: _mark, ...fields } = marked(key);
      return { ...before[key], value: fields };
    };
    expect(await redisState(ctx.redis)).toEqual({ ...rest, [`job:${jobId}`]: unmarked(`job:${jobId}`), [`ws:acme:job:${jobId}`]: unmarked(`ws:acme:job:${jobId}`) });
    expect(await metricValue(registry, 'dualwrite_claims_total', { outcome: 'skipped' })).toBe(1);
  });

  it('copies a job from before dual writes into the new layout while claiming it', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const old = { id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
    await putJob(ctx.redis, 'job:old', old);
    await ctx.redis.rpush('queue:default', 'old');

    const job = await queue.claim({ workerId: 'w1' });

    const running = { ...old, status: 'running', updatedAt: job!.updatedAt, attempts: 1 };
    expect(await redisState(ctx.redis)).toEqual({
      'job:old': jobHash(running),
      'ws:acme:job:old': jobHash(running),
      'ws:acme:jobs': zset(['old', old.createdAt]),
      [PROCESSING]: zset(['old', job!.updatedAt + 30_000]),
      [CLAIMS]: hash({ old: claimOf(job!.updatedAt, 30_000, 'acme', 'w1') }),
    });
    expect(await metricValue(registry, 'dualwrite_repairs_total', { target: 'new' })).toBe(1);
  });

  it('a repair while claiming copies the absolute expiry too', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const old = { id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
    await putJob(ctx.redis, 'job:old', old);
    const expiresAt = Date.now() + 7_200_321;
    await ctx.redis.pexpireat('job:old', expiresAt);
    await ctx.redis.rpush('queue:default', 'old');

    await queue.claim({ workerId: 'w1' });

    const state = await redisState(ctx.redis);
    expect([state['job:old'].expiresAt, state['ws:acme:job:old'].expiresAt]).toEqual([expiresAt, expiresAt]);
  });

  it('in complete finds a bare entry left from an earlier stage through its legacy record, which follows the claim', async () => {
    const early = await makeQueue(ctx.redis, 'rampdown');
    const { jobId } = await early.queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const { queue } = await makeQueue(ctx.redis, 'complete');

    const job = await queue.claim({ workerId: 'w1' });

    expect(job).toMatchObject({ id: jobId, status: 'running', source: 'new' });
    const state = await redisState(ctx.redis);
    expect((state[`ws:acme:job:${jobId}`].value as Record<string, string>).status).toBe('running');
    expect(state[`job:${jobId}`]).toEqual(state[`ws:acme:job:${jobId}`]);
    expect(state[PROCESSING].value).toEqual([[jobId, job!.updatedAt + 30_000]]);
  });

  it('waits for a job with waitMs, polling outside any script', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const producer = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'dualwrite', metrics: false });
    setTimeout(() => void producer.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'late' }), 100);

    const job = await queue.claim({ workerId: 'w1', waitMs: 5_000 });

    expect(job?.id).toBe('late');
    expect(Object.keys(await redisState(ctx.redis)).sort()).toEqual(['job:late', CLAIMS, PROCESSING, 'ws:acme:job:late', 'ws:acme:jobs'].sort());
  });

  it('answers null after waitMs when nothing arrives, counting the call once however often it looked', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const lrangeBefore = await commandCalls(ctx.redis, 'lrange');

    expect(await queue.claim({ workerId: 'w1', waitMs: 120 })).toBeNull();

    expect(await redisState(ctx.redis)).toEqual({});
    expect((await commandCalls(ctx.redis, 'lrange')) - lrangeBefore).toBeGreaterThan(1);
    expect(await metricValue(registry, 'dualwrite_claims_total', { outcome: 'empty' })).toBe(1);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'claim', outcome: 'empty' })).toBe(1);
  });
});

describe('a job whose record exists is never stranded, through a rollback from complete and forward again', () => {
  it('complete refuses a caller-given jobId that a legacy job holds, so the rollback finds one job per key', async () => {
    const rampdown = await makeQueue(ctx.redis, 'rampdown');
    await rampdown.queue.enqueue({ workspaceId: 'w1', type: 't', payload: 1, jobId: 'x' });
    const complete = await makeQueue(ctx.redis, 'complete');
    const before = await redisState(ctx.redis);

    await expect(complete.queue.enqueue({ workspaceId: 'w2', type: 't', payload: 2, jobId: 'x' })).rejects.toMatchObject({
      code: 'DUPLICATE_JOB',
      layout: 'legacy',
    });
    expect(await redisState(ctx.redis)).toEqual(before);

    // The documented rollback: w1's job is still claimed and finished as usual.
    const job = await rampdown.queue.claim({ workerId: 'w' });
    expect(job).toMatchObject({ id: 'x', workspaceId: 'w1' });
    await rampdown.queue.updateStatus({ workspaceId: 'w1', jobId: 'x', status: 'succeeded', workerId: 'w' });
    expect((await complete.queue.getJob({ workspaceId: 'w1', jobId: 'x' }))?.status).toBe('succeeded');
  });

  it('a job made in complete whose id another workspace took after the rollback is claimed and finished in the new layout only', async () => {
    const complete = await makeQueue(ctx.redis, 'complete');
    await complete.queue.enqueue({ workspaceId: 'w2', type: 't', payload: 2, jobId: 'y' });
    const rampdown = await makeQueue(ctx.redis, 'rampdown');
    // The legacy key is free, so w1 may take the id after the rollback (nothing can know w2 has it).
    await rampdown.queue.enqueue({ workspaceId: 'w1', type: 't', payload: 1, jobId: 'y' });
    const w1Legacy = (await redisState(ctx.redis))['job:y'];

    const first = await rampdown.queue.claim({ workerId: 'a' });
    const second = await rampdown.queue.claim({ workerId: 'b' });

    expect([first?.workspaceId, first?.source, second?.workspaceId]).toEqual(['w2', 'new', 'w1']);
    expect(await metricValue(rampdown.registry, 'dualwrite_divergences_total', { kind: 'job_id_collision' })).toBe(1);
    await rampdown.queue.updateStatus({ workspaceId: 'w2', jobId: 'y', status: 'succeeded', workerId: 'a' });
    await rampdown.queue.updateStatus({ workspaceId: 'w1', jobId: 'y', status: 'failed', workerId: 'b' });

    const state = await redisState(ctx.redis);
    expect(state[ORPHANS]).toBeUndefined();
    expect(state['queue:default']).toBeUndefined();
    expect(state[PROCESSING]).toBeUndefined();
    expect((state['ws:w2:job:y'].value as Record<string, string>).status).toBe('succeeded');
    expect((state['ws:w1:job:y'].value as Record<string, string>).status).toBe('failed');
    expect((state['job:y'].value as Record<string, string>)).toMatchObject({ workspace_id: 'w1', status: 'failed' });
    expect({ ...(state['job:y'].value as Record<string, string>), status: 'queued', updated_at: '' }).toEqual({
      ...(w1Legacy.value as Record<string, string>),
      updated_at: '',
      attempts: '1',
    });
    // Forward to complete again: both jobs read back, nothing stranded.
    expect((await complete.queue.getJob({ workspaceId: 'w2', jobId: 'y' }))?.status).toBe('succeeded');
    expect((await complete.queue.getJob({ workspaceId: 'w1', jobId: 'y' }))?.status).toBe('failed');
  });
});

describe('finishing a claimed job', () => {
  it.each(['succeeded', 'failed', 'cancelled'] as const)(
    'updateStatus to %s by the claiming worker ends the claim in the same step, in both layouts',
    async (status) => {
      const { queue, registry } = await makeQueue(ctx.redis, 'live');
      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
      await queue.claim({ workerId: 'w1' });

      const result = await queue.updateStatus({ workspaceId: 'acme', jobId, status, workerId: 'w1' });

      expect(result).toEqual({ jobId, previousStatus: 'running', status, repaired: 'none', expiresAt: null });
      const job = (await queue.getJob({ workspaceId: 'acme', jobId }))!;
      expect(await redisState(ctx.redis)).toEqual({
        [`job:${jobId}`]: jobHash({ ...job, status }),
        [`ws:acme:job:${jobId}`]: jobHash({ ...job, status }),
        'ws:acme:jobs': zset([jobId, job.createdAt]),
      });
      expect(await metricValue(registry, 'dualwrite_finishes_total', { status })).toBe(1);
    },
  );

  it('refuses another worker with ClaimConflictError naming the claimant, writing nothing', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);

    const error = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w2' }).catch((e) => e);

    expect(error).toBeInstanceOf(ClaimConflictError);
    expect(error).toMatchObject({ code: 'CLAIM_CONFLICT', jobId, workerId: 'w2', claimant: 'w1' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('refuses a worker guard on a job nobody claimed', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const before = await redisState(ctx.redis);

    const error = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1' }).catch((e) => e);

    expect(error).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: '' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('lets a caller without a worker guard finish a claimed job, ending the claim', async () => {
    const { queue } = await makeQueue(ctx.redis, 'complete');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });

    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed' });

    const state = await redisState(ctx.redis);
    expect(Object.keys(state).sort()).toEqual([`ws:acme:job:${jobId}`, 'ws:acme:jobs']);
  });

  it("does not end another workspace's claim on a job with the same id", async () => {
    const { queue } = await makeQueue(ctx.redis, 'complete');
    await queue.enqueue({ workspaceId: 'ws-a', type: 't', payload: 1, jobId: 'same' });
    await queue.enqueue({ workspaceId: 'ws-b', type: 't', payload: 1, jobId: 'same' });
    const first = await queue.claim({ workerId: 'w1' });
    expect(first?.workspaceId).toBe('ws-a');

    await queue.updateStatus({ workspaceId: 'ws-b', jobId: 'same', status: 'cancelled' });

    const state = await redisState(ctx.redis);
    expect(Object.keys(state[CLAIMS].value)).toEqual(['ws-a:same']);
    // ws-b's job left the queue with its cancel; ws-a's claim stands.
    expect(state['queue:default']).toBeUndefined();
    expect(state[PROCESSING]).toEqual(zset(['ws-a:same', expect.any(Number)]));
  });
});

describe('recoverStalled', () => {
  it('puts a job whose worker never finished back on the queue, and another worker gets it', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'crashed', visibilityTimeoutMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 80));

    const result = await queue.recoverStalled();

    expect(result).toEqual({ recovered: 1, orphaned: 0, unsupported: 0 });
    const job = (await queue.getJob({ workspaceId: 'acme', jobId }))!;
    expect(job.status).toBe('queued');
    expect(await redisState(ctx.redis)).toEqual({
      [`job:${jobId}`]: jobHash(job),
      [`ws:acme:job:${jobId}`]: jobHash(job),
      'queue:default': list(jobId),
      'ws:acme:jobs': zset([jobId, job.createdAt]),
    });
    expect(await metricValue(registry, 'dualwrite_stalled_recoveries_total')).toBe(1);
    expect((await queue.claim({ workerId: 'healthy' }))?.id).toBe(jobId);
    await expect(queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'crashed' })).rejects.toMatchObject({
      code: 'CLAIM_CONFLICT',
      claimant: 'healthy',
    });
  });

  it('leaves claims within their timeout alone', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1', visibilityTimeoutMs: 60_000 });
    const before = await redisState(ctx.redis);

    expect(await queue.recoverStalled()).toEqual({ recovered: 0, orphaned: 0, unsupported: 0 });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('moves a stalled entry whose job record is gone to the orphans list', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'complete');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1', visibilityTimeoutMs: 20 });
    await ctx.redis.del(`ws:acme:job:${jobId}`);
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(await queue.recoverStalled()).toEqual({ recovered: 0, orphaned: 1, unsupported: 0 });

    const state = await redisState(ctx.redis);
    expect(state).toEqual({ [ORPHANS]: list(`acme:${jobId}`), 'ws:acme:jobs': state['ws:acme:jobs'] });
    expect(await metricValue(registry, 'dualwrite_orphaned_entries_total', { operation: 'recover_stalled' })).toBe(1);
  });

  it('moves a processing entry whose legacy record expired to the orphans list, and still recovers the stalled jobs beside it', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'waiting' });
    await queue.claim({ workerId: 'w1', visibilityTimeoutMs: 10 });
    // A claimed legacy job whose TTL ran out: its entry stays in the processing set with no record.
    await ctx.redis.zadd(PROCESSING, 1, 'ghost');
    await ctx.redis.hset(CLAIMS, 'ghost', claimOf(0, 1, 'acme', 'w0'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const job = (await queue.getJob({ workspaceId: 'acme', jobId }))!;

    expect(await queue.recoverStalled()).toEqual({ recovered: 1, orphaned: 1, unsupported: 0 });

    const recovered = (await queue.getJob({ workspaceId: 'acme', jobId }))!;
    const waiting = (await queue.getJob({ workspaceId: 'acme', jobId: 'waiting' }))!;
    expect(recovered).toMatchObject({ status: 'queued' });
    expect(await redisState(ctx.redis)).toEqual({
      [`job:${jobId}`]: jobHash({ ...job, status: 'queued', updatedAt: recovered.updatedAt }),
      [`ws:acme:job:${jobId}`]: jobHash({ ...job, status: 'queued', updatedAt: recovered.updatedAt }),
      'job:waiting': jobHash(waiting),
      'ws:acme:job:waiting': jobHash(waiting),
      'queue:default': list('waiting', jobId),
      [ORPHANS]: list('ghost'),
      'ws:acme:jobs': zset([jobId, job.createdAt], ['waiting', waiting.createdAt]),
    });
    expect(await metricValue(registry, 'dualwrite_orphaned_entries_total', { operation: 'recover_stalled' })).toBe(1);
  });

  it('recovers at most `limit` jobs per call', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    for (let i = 0; i < 5; i++) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i });
    for (let i = 0; i < 5; i++) await queue.claim({ workerId: 'w1', visibilityTimeoutMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 40));

    expect(await queue.recoverStalled({ limit: 3 })).toEqual({ recovered: 3, orphaned: 0, unsupported: 0 });

    const state = await redisState(ctx.redis);
    expect((state['queue:default'].value as string[]).length).toBe(3);
    expect((state[PROCESSING].value as unknown[]).length).toBe(2);
  });
});

it('keeps every job in exactly one of queue and processing through claims, finishes and recoveries in every stage', async () => {
  for (const stage of STAGES) {
    await ctx.redis.flushall();
    const { queue } = await makeQueue(ctx.redis, stage);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i })).jobId);
    const a = await queue.claim({ workerId: 'w1', visibilityTimeoutMs: 10 });
    const b = await queue.claim({ workerId: 'w2' });
    await queue.updateStatus({ workspaceId: 'acme', jobId: b!.id, status: 'succeeded', workerId: 'w2' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    await queue.recoverStalled();

    const state = await redisState(ctx.redis);
    const queued = (state['queue:default']?.value as string[]) ?? [];
    const processing = ((state[PROCESSING]?.value as [string, number][]) ?? []).map(([e]) => e);
    const entryOf = (id: string) => (stage === 'complete' ? `acme:${id}` : id);
    expect({ stage, queued: [...queued].sort() }).toEqual({ stage, queued: ids.filter((id) => id !== b!.id).map(entryOf).sort() });
    expect({ stage, processing }).toEqual({ stage, processing: [] });
    expect({ stage, recovered: (await queue.getJob({ workspaceId: 'acme', jobId: a!.id }))?.status }).toEqual({ stage, recovered: 'queued' });
  }
});
