import { DuplicateJobError, IdempotencyConflictError, KeyTypeError, STAGES, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { jobHash, list, redisState, zset } from '../support/state';

const ctx = useRedis();

describe('enqueue', () => {
  it('in dualwrite writes both layouts, the queue, the index and the idempotency key in one step', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');

    const result = await queue.enqueue({
      workspaceId: 'acme',
      type: 'email.send',
      payload: { to: 'a@example.com', n: 1 },
      idempotencyKey: 'order-1',
      jobId: 'job-1',
    });

    expect(result).toEqual({ jobId: 'job-1', created: true });
    const state = await redisState(ctx.redis);
    const createdAt = Number((state['job:job-1'].value as Record<string, string>).created_at);
    const record = { id: 'job-1', workspaceId: 'acme', type: 'email.send', payload: { to: 'a@example.com', n: 1 }, status: 'queued', createdAt, updatedAt: createdAt, idempotencyKey: 'order-1' };
    expect(state).toEqual({
      'job:job-1': jobHash(record),
      'ws:acme:job:job-1': jobHash(record),
      'queue:default': list('job-1'),
      'ws:acme:jobs': zset(['job-1', createdAt]),
      'ws:acme:idem:order-1': { type: 'string', value: expect.stringMatching(/^[0-9a-f]{32}:job-1$/), expiresAt: expect.any(Number) },
    });
    expect(await ctx.redis.ttl('ws:acme:idem:order-1')).toBeGreaterThan(86_400 - 60);
    expect(Math.abs(createdAt - Date.now())).toBeLessThan(60_000);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'ok' })).toBe(1);
  });

  it.each<[Stage, boolean, boolean, (jobId: string) => string]>([
    ['off', true, false, (id) => id],
    ['dualwrite', true, true, (id) => id],
    ['shadow', true, true, (id) => id],
    ['live', true, true, (id) => id],
    ['rampdown', true, true, (id) => id],
    ['complete', false, true, (id) => `acme:${id}`],
  ])('in %s writes legacy=%s new=%s and queues the entry the stage documents', async (stage, legacy, fresh, entry) => {
    const { queue } = await makeQueue(ctx.redis, stage);

    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: [1] });

    const job = await queue.getJob({ workspaceId: 'acme', jobId });
    expect(job).not.toBeNull();
    const expected: Record<string, unknown> = {
      'queue:default': list(entry(jobId)),
      'ws:acme:jobs': zset([jobId, job!.createdAt]),
    };
    const record = jobHash({ ...job!, payload: [1] });
    if (legacy) expected[`job:${jobId}`] = record;
    if (fresh) expected[`ws:acme:job:${jobId}`] = record;
    expect(await redisState(ctx.redis)).toEqual(expected);
    expect(job).toMatchObject({ id: jobId, workspaceId: 'acme', type: 't', payload: [1], status: 'queued' });
  });

  it('gives a random UUID as jobId when the caller gives none', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');

    const a = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: null });
    const b = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: null });

    expect(a.jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.jobId).not.toBe(a.jobId);
    expect(Object.keys(await redisState(ctx.redis)).sort()).toEqual(
      [`job:${a.jobId}`, `job:${b.jobId}`, 'queue:default', `ws:acme:job:${a.jobId}`, `ws:acme:job:${b.jobId}`, 'ws:acme:jobs'].sort(),
    );
  });

  describe('idempotency', () => {
    it('replays the same key and request (object key order aside) as the original job, writing nothing', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      const first = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { a: 1, b: { c: 2, d: 3 } }, idempotencyKey: 'k' });
      await ctx.redis.expire('ws:acme:idem:k', 500);
      const before = await redisState(ctx.redis);

      const replay = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { b: { d: 3, c: 2 }, a: 1 }, idempotencyKey: 'k' });

      expect(replay).toEqual({ jobId: first.jobId, created: false });
      expect(await redisState(ctx.redis)).toEqual(before);
      // A replay does not extend the key's TTL.
      expect(await ctx.redis.ttl('ws:acme:idem:k')).toBeLessThanOrEqual(500);
      expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'replay' })).toBe(1);
    });

    it.each([
      ['another payload', { type: 't', payload: { a: 2 } }],
      ['another type', { type: 'u', payload: { a: 1 } }],
      ['another jobId', { type: 't', payload: { a: 1 }, jobId: 'other' }],
    ])('refuses the same key with %s: IdempotencyConflictError, nothing written', async (_, change) => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      const first = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { a: 1 }, idempotencyKey: 'k' });
      const before = await redisState(ctx.redis);

      const error = await queue.enqueue({ workspaceId: 'acme', idempotencyKey: 'k', ...change }).catch((e) => e);

      expect(error).toBeInstanceOf(IdempotencyConflictError);
      expect(error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', idempotencyKey: 'k', originalJobId: first.jobId, workspaceId: 'acme' });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    // Fingerprints stay in Redis for the key's TTL, across deploys: these are what earlier versions
    // stored, so a retry that reaches a newer version must still replay, never conflict.
    it.each([
      ['bfcce3af4b832ed4f53db2850c70892f', { type: 't', payload: { b: { d: 3, c: 2 }, a: 1 } }],
      ['38e1f465daa94ca516b9d3a66a2dc465', { type: 'email.send', jobId: 'job-1', payload: { to: 'user@example.com', template: 'signup', vars: { name: 'Ada', plan: 'pro' } } }],
      ['f128c0f95596882d28d078fa08d8b863', { type: 't', payload: [1, 'two', null, true, { z: [], y: {} }, -1.5e-7, 1e21] }],
      ['d20a77e61fb64073506d677f0fadb9b1', { type: 't', payload: { 10: 'ten', 9: 'nine', b: 'x', B: 'y', '\u00e9': 'e', '\u2028': 'ls', 'q"\\\n': 'esc', '\u{1F600}': 'emoji', '': 'empty' } }],
      ['6a08caaa9c47ad8b04a97dd7faa60ff0', { type: 't', payload: 'a "string" with \u0001 control' }],
      ['f023bcaa6cdb80d2c4c0a16f2af4cd0c', { type: 't', payload: 42 }],
      ['6a0da6feb166d2bcaa4b1cf9aa6beb51', { type: 't', payload: null }],
    ])('replays a key stored with fingerprint %s by an earlier version, writing nothing', async (fingerprint, request) => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await ctx.redis.set('ws:acme:idem:k', `${fingerprint}:original-1`, 'EX', 500);
      const before = await redisState(ctx.redis);

      const replay = await queue.enqueue({ workspaceId: 'acme', idempotencyKey: 'k', ...request });

      expect(replay).toEqual({ jobId: 'original-1', created: false });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('is scoped to the workspace: the same key in another workspace creates another job', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      const a = await queue.enqueue({ workspaceId: 'ws-a', type: 't', payload: 1, idempotencyKey: 'k' });

      const b = await queue.enqueue({ workspaceId: 'ws-b', type: 't', payload: 1, idempotencyKey: 'k' });

      expect(b.created).toBe(true);
      expect(b.jobId).not.toBe(a.jobId);
      const state = await redisState(ctx.redis);
      expect(state['ws:ws-a:idem:k'].value).toMatch(new RegExp(`:${a.jobId}$`));
      expect(state['ws:ws-b:idem:k'].value).toMatch(new RegExp(`:${b.jobId}$`));
      expect(state['queue:default'].value).toEqual([a.jobId, b.jobId]);
    });

    it('is used in every stage', async () => {
      for (const stage of STAGES) {
        await ctx.redis.flushall();
        const { queue } = await makeQueue(ctx.redis, stage);
        const first = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotencyKey: 'k' });
        const before = await redisState(ctx.redis);

        const again = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotencyKey: 'k' });

        expect({ stage, again }).toEqual({ stage, again: { jobId: first.jobId, created: false } });
        expect(await redisState(ctx.redis)).toEqual(before);
      }
    });

    it('keeps the configured TTL on the idempotency key', async () => {
      const { queue } = await makeQueue(ctx.redis, 'off', { idempotencyTtlSeconds: 120 });

      await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotencyKey: 'k' });

      const ttl = await ctx.redis.ttl('ws:acme:idem:k');
      expect(ttl).toBeGreaterThan(110);
      expect(ttl).toBeLessThanOrEqual(120);
    });
  });

  describe('duplicate jobIds', () => {
    it.each<[Stage, 'legacy' | 'new']>([
      ['dualwrite', 'legacy'],
      ['dualwrite', 'new'],
      ['off', 'legacy'],
      ['complete', 'new'],
    ])('in %s a jobId that exists in the %s layout is a DuplicateJobError, nothing written', async (stage, layout) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      const existing = layout === 'legacy' ? 'job:dup' : 'ws:acme:job:dup';
      await ctx.redis.hset(existing, 'id', 'dup', 'workspace_id', 'acme', 'status', 'queued');
      const before = await redisState(ctx.redis);

      const error = await queue
        .enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'dup', idempotencyKey: 'k' })
        .catch((e) => e);

      expect(error).toBeInstanceOf(DuplicateJobError);
      expect(error).toMatchObject({ code: 'DUPLICATE_JOB', jobId: 'dup', workspaceId: 'acme', layout });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it.each(['acme', 'other'])(
      "in complete refuses a jobId whose legacy key holds a job (of workspace %s): a rollback would bring both back under one key",
      async (owner) => {
        const { queue } = await makeQueue(ctx.redis, 'complete');
        await ctx.redis.hset('job:old', 'id', 'old', 'workspace_id', owner, 'status', 'queued');
        const before = await redisState(ctx.redis);

        const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'old' }).catch((e) => e);

        expect(error).toBeInstanceOf(DuplicateJobError);
        expect(error).toMatchObject({ code: 'DUPLICATE_JOB', workspaceId: 'acme', jobId: 'old', layout: 'legacy' });
        expect(await redisState(ctx.redis)).toEqual(before);
        // The same holds for a batch.
        const batchError = await queue.enqueueMany([{ workspaceId: 'acme', type: 't', payload: 1, jobId: 'old' }]).catch((e) => e);
        expect(batchError).toMatchObject({ code: 'DUPLICATE_JOB', layout: 'legacy', index: 0 });
        expect(await redisState(ctx.redis)).toEqual(before);
      },
    );
  });

  describe('wrong key types', () => {
    it.each([
      ['queue:default', 'list', (r: typeof ctx.redis) => r.set('queue:default', 'x')],
      ['ws:acme:jobs', 'zset', (r: typeof ctx.redis) => r.rpush('ws:acme:jobs', 'x')],
      ['job:j1', 'hash', (r: typeof ctx.redis) => r.set('job:j1', 'x')],
      ['ws:acme:job:j1', 'hash', (r: typeof ctx.redis) => r.sadd('ws:acme:job:j1', 'x')],
      ['ws:acme:idem:k', 'string', (r: typeof ctx.redis) => r.rpush('ws:acme:idem:k', 'x')],
    ])('%s holding the wrong type is a KeyTypeError naming it, and nothing is written', async (key, expectedType, arrange) => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await arrange(ctx.redis);
      const before = await redisState(ctx.redis);

      const error = await queue
        .enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1', idempotencyKey: 'k' })
        .catch((e) => e);

      expect(error).toBeInstanceOf(KeyTypeError);
      expect(error).toMatchObject({ code: 'KEY_TYPE', key, expectedType, actualType: before[key].type });
      expect(await redisState(ctx.redis)).toEqual(before);
    });
  });

  it('stores the payload as JSON that reads back unchanged, unicode included', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const payload = { text: 'grüße 👋 \u2028', nested: [{ x: null, y: true, z: -1.5e-7 }], empty: {} };

    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload });

    expect((await queue.getJob({ workspaceId: 'acme', jobId }))?.payload).toEqual(payload);
    expect(JSON.parse(await ctx.redis.hget(`ws:acme:job:${jobId}`, 'payload') as string)).toEqual(payload);
    expect(JSON.parse(await ctx.redis.hget(`job:${jobId}`, 'payload') as string)).toEqual(payload);
  });

  it('queues entries in enqueue order and indexes each job at its created_at', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');

    for (const jobId of ['c', 'a', 'b']) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId });

    const state = await redisState(ctx.redis);
    expect(state['queue:default']).toEqual(list('c', 'a', 'b'));
    const createdAt = (jobId: string) => Number((state[`job:${jobId}`].value as Record<string, string>).created_at);
    expect(state['ws:acme:jobs']).toEqual(
      zset(...(['c', 'a', 'b'].map((id) => [id, createdAt(id)] as [string, number]).sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1)))),
    );
  });
});
