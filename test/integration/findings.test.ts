/**
 * One proof per finding of the review in shared/DESIGN.md: each arranges the failure the first
 * attempt suffered and shows it can no longer happen.
 */
import { Registry } from 'prom-client';
import { DualWriteQueue, KeyTypeError, OutOfMemoryError, ValidationError, type Logger } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { hash, list, redisState, zset } from '../support/state';

const ctx = useRedis();

function recordingLogger(): Logger & { lines: { level: string; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const legacyRecord = (jobId: string, workspaceId: string, status = 'queued') => ({
  id: jobId,
  workspace_id: workspaceId,
  type: 't',
  payload: '{"n":1}',
  status,
  created_at: '1700000000000',
  updated_at: '1700000000000',
});

describe('review findings', () => {
  it('CRITICAL-1: a failure at the last write leaves no key and no idempotency key, and the retry creates the job', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.set('ws:acme:jobs', 'not a sorted set'); // the index is the script's last write before the key

    const failed = await queue
      .enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1', idempotencyKey: 'order-7' })
      .catch((e) => e);

    expect(failed).toBeInstanceOf(KeyTypeError);
    expect(await redisState(ctx.redis)).toEqual({ 'ws:acme:jobs': { type: 'string', value: 'not a sorted set' } });

    await ctx.redis.del('ws:acme:jobs');
    const retry = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1', idempotencyKey: 'order-7' });

    expect(retry).toEqual({ jobId: 'j1', created: true });
    expect(Object.keys(await redisState(ctx.redis))).toEqual([
      'job:j1',
      'queue:default',
      'ws:acme:idem:order-7',
      'ws:acme:job:j1',
      'ws:acme:jobs',
    ]);
  });

  it('HIGH-1: when the new hash cannot be written, neither the legacy hash nor the queue is written', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.rpush('ws:acme:job:j1', 'in the way');

    const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1' }).catch((e) => e);

    expect(error).toMatchObject({ code: 'KEY_TYPE', key: 'ws:acme:job:j1', expectedType: 'hash', actualType: 'list' });
    expect(await redisState(ctx.redis)).toEqual({ 'ws:acme:job:j1': list('in the way') });
  });

  it('HIGH-2: an update that cannot reach the new hash does not change the legacy hash either', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.hset('job:j1', legacyRecord('j1', 'acme'));
    await ctx.redis.set('ws:acme:job:j1', 'corrupt');
    const before = await redisState(ctx.redis);

    const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

    expect(error).toBeInstanceOf(KeyTypeError);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('HIGH-3: when the queue push would fail, no job data exists without its queue entry', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    await ctx.redis.hset('queue:default', 'f', 'v');

    const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1' }).catch((e) => e);

    expect(error).toMatchObject({ code: 'KEY_TYPE', key: 'queue:default', expectedType: 'list', actualType: 'hash' });
    expect(await redisState(ctx.redis)).toEqual({ 'queue:default': hash({ f: 'v' }) });
  });

  it('MEDIUM-1: metrics are created once per registry, not per call or per queue', async () => {
    const registry = new Registry();
    const first = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'dualwrite', metrics: { registry } });
    await first.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const metricsAfterFirst = registry.getMetricsAsArray().map((m) => m.name);

    const second = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'live', metrics: { registry } });
    await second.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await second.getJob({ workspaceId: 'acme', jobId: 'nope' });

    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(metricsAfterFirst);
    expect(metricsAfterFirst).toHaveLength(17);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'ok' })).toBe(2);
  });

  it('MEDIUM-2: a read that falls back to the legacy layout is counted and logged', async () => {
    const logger = recordingLogger();
    const { queue, registry } = await makeQueue(ctx.redis, 'rampdown', { logger });
    await ctx.redis.hset('job:old', legacyRecord('old', 'acme'));

    const job = await queue.getJob({ workspaceId: 'acme', jobId: 'old' });

    expect(job).toMatchObject({ id: 'old', source: 'legacy', payload: { n: 1 }, createdAt: 1700000000000 });
    expect(await metricValue(registry, 'dualwrite_read_fallbacks_total', { operation: 'get_job' })).toBe(1);
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ level: 'info', message: expect.stringContaining('fell back to the legacy layout') }),
    );
    expect(await redisState(ctx.redis)).toEqual({ 'job:old': hash(legacyRecord('old', 'acme')) });
  });

  it('MEDIUM-3: a workspaceId that would change the key layout is refused before Redis sees it', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const callsBefore = await ctx.redis.info('commandstats');

    const error = await queue.enqueue({ workspaceId: 'acme:job:x', type: 't', payload: 1 }).catch((e) => e);

    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'VALIDATION', field: 'workspaceId', rule: 'format' });
    expect(await redisState(ctx.redis)).toEqual({});
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(await ctx.redis.info('commandstats'))?.[1]).toBe(
      /cmdstat_evalsha:calls=(\d+)/.exec(callsBefore)?.[1],
    );
  });

  it('MEDIUM-4: out of memory is a typed error with nothing written; reads still work; the retry succeeds once memory is free', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const kept = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const before = await redisState(ctx.redis);
    await ctx.redis.config('SET', 'maxmemory-policy', 'noeviction');
    await ctx.redis.config('SET', 'maxmemory', '1');
    try {
      const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'j2' }).catch((e) => e);

      expect(error).toBeInstanceOf(OutOfMemoryError);
      expect(error.code).toBe('OUT_OF_MEMORY');
      expect((await queue.getJob({ workspaceId: 'acme', jobId: kept.jobId }))?.payload).toBe(1);
      expect(await redisState(ctx.redis)).toEqual(before);
    } finally {
      await ctx.redis.config('SET', 'maxmemory', '0');
    }
    expect(await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'j2' })).toEqual({ jobId: 'j2', created: true });
  });

  it('MEDIUM-5: listing sees jobs that exist only in the new layout', async () => {
    const { queue } = await makeQueue(ctx.redis, 'complete');
    const a = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 'a' });
    const b = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 'b' });

    const page = await queue.listJobs({ workspaceId: 'acme' });

    expect(page.nextCursor).toBeNull();
    expect(page.jobs.map((j) => [j.id, j.payload, j.source]).sort()).toEqual(
      [[a.jobId, 'a', 'new'], [b.jobId, 'b', 'new']].sort(),
    );
    const state = await redisState(ctx.redis);
    expect(Object.keys(state).filter((k) => k.startsWith('job:'))).toEqual([]);
    expect(state['queue:default']).toEqual(list(`acme:${a.jobId}`, `acme:${b.jobId}`));
    expect(state['ws:acme:jobs'].type).toBe('zset');
  });

  it('LOW-1: every operation is counted and timed, not only enqueue', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'live');

    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'running' });
    await queue.getJob({ workspaceId: 'acme', jobId });
    await queue.listJobs({ workspaceId: 'acme' });

    for (const operation of ['enqueue', 'update_status', 'get_job', 'list_jobs']) {
      expect({ operation, count: await metricValue(registry, 'dualwrite_operations_total', { operation, outcome: 'ok' }) }).toEqual({ operation, count: 1 });
      expect({ operation, timed: await metricValue(registry, 'dualwrite_operation_duration_seconds_count', { operation }) }).toEqual({ operation, timed: 1 });
    }
    const job = await queue.getJob({ workspaceId: 'acme', jobId });
    expect(await redisState(ctx.redis)).toEqual({
      [`job:${jobId}`]: hash(expect.objectContaining({ status: 'running' })),
      [`ws:acme:job:${jobId}`]: hash(expect.objectContaining({ status: 'running' })),
      'ws:acme:jobs': zset([jobId, job!.createdAt]),
    });
  });
});
