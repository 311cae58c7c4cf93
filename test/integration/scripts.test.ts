import Redis from 'ioredis';
import { DualWriteQueue, EvictionPolicyError, PermissionError, RedisUnavailableError, serviceAclRules } from '../../src';
import { loadScripts } from '../../src/scripts/manifest';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();
const manifest = [...loadScripts().values()];

describe('script registry', () => {
  it('ready() loads every script under the sha1 the manifest gives', async () => {
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false });

    const preloaded = await queue.ready();

    expect(preloaded).toEqual(manifest.map((s) => ({ id: s.id, sha1: s.sha1 })));
    expect(await ctx.redis.script('EXISTS', ...manifest.map((s) => s.sha1))).toEqual(manifest.map(() => 1));
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it('after SCRIPT FLUSH every operation still succeeds; each reload is counted and logged', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const { queue, registry } = await makeQueue(ctx.redis, 'live', { logger });

    await ctx.redis.script('FLUSH');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await ctx.redis.script('FLUSH');
    const updated = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'running' });
    await ctx.redis.script('FLUSH');
    const job = await queue.getJob({ workspaceId: 'acme', jobId });
    await ctx.redis.script('FLUSH');
    const page = await queue.listJobs({ workspaceId: 'acme' });

    expect(updated.previousStatus).toBe('queued');
    expect(job?.status).toBe('running');
    expect(page.jobs.map((j) => j.id)).toEqual([jobId]);
    for (const script of ['enqueue_dual.v3', 'update_status_dual.v3', 'read_with_fallback.v4', 'list_index_page.v3']) {
      const reloads = await metricValue(registry, 'dualwrite_script_reloads_total', { script });
      expect({ script, reloads }).toEqual({ script, reloads: script === 'read_with_fallback.v4' ? 2 : 1 });
    }
    expect(warnings.filter((w) => w.includes('NOSCRIPT'))).toHaveLength(5);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'error' })).toBe(0);
    // Started outside the queue's workers, the job left the queue.
    expect(Object.keys(await redisState(ctx.redis))).toEqual([`job:${jobId}`, `ws:acme:job:${jobId}`, 'ws:acme:jobs']);
  });

  it('a restart empties the script cache but keeps the data; the next call reloads and succeeds', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { kept: true } });
    const before = await redisState(ctx.redis);

    await ctx.handle.restart();
    const job = await queue.getJob({ workspaceId: 'acme', jobId });

    expect(job?.payload).toEqual({ kept: true });
    expect(await metricValue(registry, 'dualwrite_script_reloads_total', { script: 'read_with_fallback.v4' })).toBe(1);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('without NOSCRIPT, calls go by EVALSHA alone: the body is not resent', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.config('RESETSTAT');

    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.listJobs({ workspaceId: 'acme' });

    const stats = await ctx.redis.info('commandstats');
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1]).toBe('3');
    expect(stats).not.toMatch(/cmdstat_eval:/);
  });
});

describe('ready()', () => {
  it('fails with RedisUnavailableError within its timeout when Redis does not answer', async () => {
    const redis = new Redis(ctx.handle.url);
    await redis.ping();
    const queue = new DualWriteQueue({ heartbeat: false, redis, stage: 'off', metrics: false });
    // Every command now waits 1.5 s: had ready() waited for the answer, it would have succeeded.
    await ctx.redis.call('CLIENT', 'PAUSE', '1500', 'ALL');

    const error = await queue.ready({ timeoutMs: 300 }).catch((e) => e);

    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.code).toBe('REDIS_UNAVAILABLE');
    expect(error.message).toMatch(/did not answer within 300 ms/);
    await ctx.redis.call('CLIENT', 'UNPAUSE');
    redis.disconnect();
  });

  it('fails with RedisUnavailableError when nothing listens and the client does not queue offline', async () => {
    const redis = new Redis({ port: 1, host: '127.0.0.1', enableOfflineQueue: false, retryStrategy: () => null });
    redis.on('error', () => {});
    const queue = new DualWriteQueue({ heartbeat: false, redis, stage: 'off', metrics: false });

    const error = await queue.ready({ timeoutMs: 2_000 }).catch((e) => e);

    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toMatch(/readiness check/);
    redis.disconnect();
  });

  it.each([
    ['warns', 'warn', 'allkeys-lru'],
    ['warns by default', undefined, 'volatile-ttl'],
  ])('%s when maxmemory-policy lets Redis evict jobs, and still gets ready', async (_, evictionPolicy, policy) => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    await ctx.redis.config('SET', 'maxmemory-policy', policy);
    try {
      const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false, logger });

      const preloaded = await queue.ready(evictionPolicy ? { evictionPolicy: evictionPolicy as 'warn' } : {});

      expect(preloaded).toHaveLength(manifest.length);
      expect(warnings).toEqual([expect.stringContaining('maxmemory-policy')]);
    } finally {
      await ctx.redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it("throws EvictionPolicyError when asked to, before loading anything", async () => {
    await ctx.redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false });

      const error = await queue.ready({ evictionPolicy: 'throw' }).catch((e) => e);

      expect(error).toBeInstanceOf(EvictionPolicyError);
      expect(error).toMatchObject({ code: 'EVICTION_POLICY', policy: 'allkeys-lru' });
      expect(await ctx.redis.script('EXISTS', ...manifest.map((s) => s.sha1))).toEqual(manifest.map(() => 0));
    } finally {
      await ctx.redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  describe('with an ACL user that may not run SCRIPT LOAD', () => {
    let restricted: Redis;
    beforeEach(async () => {
      await ctx.redis.call('ACL', 'SETUSER', 'service', 'reset', 'on', '>service-secret', ...serviceAclRules());
      const url = new URL(ctx.handle.url);
      restricted = new Redis({
        host: url.hostname,
        port: Number(url.port),
        username: 'service',
        password: 'service-secret',
      });
    });
    afterEach(async () => {
      restricted.disconnect();
      await ctx.redis.call('ACL', 'DELUSER', 'service');
    });

    it('gets ready when a deploy user preloaded the scripts, and works', async () => {
      await new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false }).ready();
      const queue = new DualWriteQueue({ heartbeat: false, redis: restricted, stage: 'dualwrite', metrics: false });

      expect(await queue.ready()).toEqual(manifest.map((s) => ({ id: s.id, sha1: s.sha1 })));
      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

      expect(Object.keys(await redisState(ctx.redis))).toEqual([`job:${jobId}`, 'queue:default', `ws:acme:job:${jobId}`, 'ws:acme:jobs']);
    });

    it('fails with PermissionError naming SCRIPT LOAD and the missing scripts when nobody preloaded them', async () => {
      const queue = new DualWriteQueue({ heartbeat: false, redis: restricted, stage: 'off', metrics: false });

      const error = await queue.ready().catch((e) => e);

      expect(error).toBeInstanceOf(PermissionError);
      expect(error).toMatchObject({ code: 'NO_PERMISSION', command: 'SCRIPT LOAD' });
      for (const script of manifest) expect(error.message).toContain(script.id);
      expect(await redisState(ctx.redis)).toEqual({});
    });

    it('is refused with PermissionError when a command the scripts run is not granted', async () => {
      await new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false }).ready();
      await ctx.redis.call('ACL', 'SETUSER', 'service', '-rpush');
      const queue = new DualWriteQueue({ heartbeat: false, redis: restricted, stage: 'off', metrics: false });

      const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 }).catch((e) => e);

      expect(error).toBeInstanceOf(PermissionError);
      expect(error.code).toBe('NO_PERMISSION');
      expect(await redisState(ctx.redis)).toEqual({});
    });

    // enqueue writes first and undoes on a refusal (see its header): each write refused in turn,
    // beside jobs already there, leaves every key as it was, the queue's other entries included.
    it.each(['rpush', 'hset', 'set', 'zadd', 'del', 'lrem'])('refused %s: enqueue fails with PermissionError naming it, and Redis is as it was', async (command) => {
      const { queue: admin } = await makeQueue(ctx.redis, 'dualwrite');
      await admin.ready();
      await admin.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'first' });
      await ctx.redis.rpush('queue:default', 'first'); // the same entry twice: the undo takes the tail's only
      await ctx.redis.call('ACL', 'SETUSER', 'service', `-${command}`);
      const before = await redisState(ctx.redis);
      const queue = new DualWriteQueue({ heartbeat: false, redis: restricted, stage: 'dualwrite', metrics: false });

      const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'second', idempotencyKey: 'k' }).catch((e) => e);

      expect(error).toBeInstanceOf(PermissionError);
      expect(error).toMatchObject({ code: 'NO_PERMISSION', command: command.toUpperCase() });
      expect(await redisState(ctx.redis)).toEqual(before);
    });
  });
});

