import {
  DuplicateJobError,
  IdempotencyConflictError,
  KeyTypeError,
  ValidationError,
  type EnqueueInput,
} from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { jobHash, list, redisState, str, zset } from '../support/state';

const ctx = useRedis();

const job = (jobId: string, workspaceId = 'acme', extra: Partial<EnqueueInput> = {}): EnqueueInput => ({
  workspaceId,
  type: 't',
  payload: { jobId },
  jobId,
  ...extra,
});

async function evalshaCalls(): Promise<number> {
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(await ctx.redis.info('commandstats'))?.[1] ?? 0);
}

describe('enqueueMany', () => {
  it('writes every job of the batch in one script: both layouts, the queue in order, the indexes, the idempotency keys', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const callsBefore = await evalshaCalls();

    const results = await queue.enqueueMany([job('a'), job('b', 'other', { idempotencyKey: 'kb' }), job('c')]);

    expect(results).toEqual([
      { jobId: 'a', created: true },
      { jobId: 'b', created: true },
      { jobId: 'c', created: true },
    ]);
    expect(await evalshaCalls()).toBe(callsBefore + 1);
    const state = await redisState(ctx.redis);
    const createdAt = Number((state['job:a'].value as Record<string, string>).created_at);
    const record = (id: string, workspaceId = 'acme', idempotencyKey?: string) =>
      jobHash({ id, workspaceId, type: 't', payload: { jobId: id }, status: 'queued', createdAt, updatedAt: createdAt, idempotencyKey });
    expect(state).toEqual({
      'job:a': record('a'),
      'job:b': record('b', 'other', 'kb'),
      'job:c': record('c'),
      'ws:acme:job:a': record('a'),
      'ws:other:job:b': record('b', 'other', 'kb'),
      'ws:acme:job:c': record('c'),
      'queue:default': list('a', 'b', 'c'),
      'ws:acme:jobs': zset(['a', createdAt], ['c', createdAt]),
      'ws:other:jobs': zset(['b', createdAt]),
      'ws:other:idem:kb': { type: 'string', value: expect.stringMatching(/^[0-9a-f]{32}:b$/), expiresAt: expect.any(Number) },
    });
    expect(await ctx.redis.ttl('ws:other:idem:kb')).toBeGreaterThan(86_400 - 60);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue_many', outcome: 'ok' })).toBe(1);
  });

  it('in complete writes the new layout only and queues workspace-qualified entries', async () => {
    const { queue } = await makeQueue(ctx.redis, 'complete');

    await queue.enqueueMany([job('a'), job('b', 'other')]);

    const state = await redisState(ctx.redis);
    expect(Object.keys(state).sort()).toEqual(['queue:default', 'ws:acme:job:a', 'ws:acme:jobs', 'ws:other:job:b', 'ws:other:jobs']);
    expect(state['queue:default']).toEqual(list('acme:a', 'other:b'));
  });

  it('returns the original job for a replayed idempotency key, creating the rest', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const first = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 }, idempotencyKey: 'k1' });

    const results = await queue.enqueueMany([
      { workspaceId: 'acme', type: 't', payload: { n: 1 }, idempotencyKey: 'k1' },
      job('fresh'),
    ]);

    expect(results).toEqual([
      { jobId: first.jobId, created: false },
      { jobId: 'fresh', created: true },
    ]);
    const state = await redisState(ctx.redis);
    expect(state['queue:default']).toEqual(list(first.jobId, 'fresh'));
  });

  it('treats the same idempotency key twice in one batch like two calls: the second replays the first', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const same = { workspaceId: 'acme', type: 't', payload: { n: 1 }, idempotencyKey: 'k' };

    const [a, b] = await queue.enqueueMany([same, same]);

    expect(a.created).toBe(true);
    expect(b).toEqual({ jobId: a.jobId, created: false });
    expect((await redisState(ctx.redis))['queue:default']).toEqual(list(a.jobId));
  });

  describe('all or nothing', () => {
    it('an invalid job fails the batch before Redis sees it, naming its index and field', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await queue.enqueue(job('existing'));
      const before = await redisState(ctx.redis);
      const callsBefore = await evalshaCalls();

      const error = await queue.enqueueMany([job('a'), job('b', 'bad:ws'), job('c')]).catch((e) => e);

      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', field: 'jobs[1].workspaceId', rule: 'format', index: 1 });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await evalshaCalls()).toBe(callsBefore);
    });

    it('a hole in the jobs array is an invalid job at its index, before Redis sees the batch', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await queue.enqueue(job('existing'));
      const before = await redisState(ctx.redis);
      const callsBefore = await evalshaCalls();
      // eslint-disable-next-line no-sparse-arrays
      const batch = [job('a'), , job('c')] as EnqueueInput[];

      const error = await queue.enqueueMany(batch).catch((e) => e);

      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', field: 'jobs[1]', rule: 'type', index: 1 });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await evalshaCalls()).toBe(callsBefore);
    });

    it.each([
      ['a jobId that exists already', [job('a'), job('b'), job('existing')], 2, DuplicateJobError, { layout: 'legacy', jobId: 'existing' }],
      ['a jobId twice in the batch', [job('a'), job('a')], 1, DuplicateJobError, { jobId: 'a' }],
      [
        'an idempotency key used for another request',
        [job('a'), job('b', 'acme', { idempotencyKey: 'used' })],
        1,
        IdempotencyConflictError,
        { idempotencyKey: 'used' },
      ],
      [
        'one idempotency key for two different requests in the batch',
        [job('a', 'acme', { idempotencyKey: 'twice' }), job('b', 'acme', { idempotencyKey: 'twice' })],
        1,
        IdempotencyConflictError,
        { originalJobId: 'a' },
      ],
      ["a workspace index holding the wrong type", [job('a'), job('b', 'broken')], 1, KeyTypeError, { key: 'ws:broken:jobs' }],
    ])('%s fails the whole batch with an error naming the index; nothing is written', async (_, batch, index, type, facts) => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await queue.enqueue(job('existing'));
      await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 'first use', idempotencyKey: 'used' });
      await ctx.redis.set('ws:broken:jobs', 'not a zset');
      const before = await redisState(ctx.redis);

      const error = await queue.enqueueMany(batch).catch((e) => e);

      expect(error).toBeInstanceOf(type);
      expect(error).toMatchObject({ index, ...facts });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('a queue key of the wrong type fails the batch at its first job', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await ctx.redis.set('queue:default', 'x');

      const error = await queue.enqueueMany([job('a'), job('b')]).catch((e) => e);

      expect(error).toMatchObject({ code: 'KEY_TYPE', key: 'queue:default', index: 0 });
      expect(await redisState(ctx.redis)).toEqual({ 'queue:default': str('x') });
    });
  });

  it('takes 1 to 1000 jobs', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');

    for (const bad of [[], Array.from({ length: 1001 }, (_, i) => job(`j${i}`)), 'jobs' as never]) {
      await expect(queue.enqueueMany(bad)).rejects.toMatchObject({ code: 'VALIDATION', field: 'jobs', rule: 'range' });
    }
    expect(await redisState(ctx.redis)).toEqual({});

    const results = await queue.enqueueMany(Array.from({ length: 1000 }, (_, i) => job(`j${i}`, `ws${i % 7}`)));

    expect(results.filter((r) => r.created)).toHaveLength(1000);
    const state = await redisState(ctx.redis);
    expect((state['queue:default'].value as string[]).length).toBe(1000);
    expect(Object.keys(state)).toHaveLength(2001 + 7);
  });
});
