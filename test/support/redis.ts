import Redis, { type Cluster } from 'ioredis';
import { Registry } from 'prom-client';
import { DualWriteQueue, type DualWriteQueueOptions, type Stage } from '../../src';
import { startRedis, type RedisHandle } from '../../src/testing';

export interface RedisContext {
  handle: RedisHandle;
  redis: Redis;
}

/**
 * One private redis-server per test file (never the shared one on 6379), flushed before each test.
 * Read `ctx.redis` inside tests and hooks: it is set in beforeAll.
 */
export function useRedis(): RedisContext {
  const ctx = {} as RedisContext;
  beforeAll(async () => {
    ctx.handle = await startRedis();
    ctx.redis = new Redis(ctx.handle.url, { maxRetriesPerRequest: 3 });
  });
  beforeEach(async () => {
    await ctx.redis.flushall();
    await ctx.redis.script('FLUSH');
  });
  afterAll(async () => {
    ctx.redis?.disconnect();
    await ctx.handle?.stop();
  });
  return ctx;
}

export interface TestQueue {
  queue: DualWriteQueue;
  registry: Registry;
}

/** A queue with its own metrics registry, so each test reads only its own counts. */
export async function makeQueue(
  redis: Redis,
  stage: Stage,
  options: Partial<DualWriteQueueOptions> = {},
): Promise<TestQueue> {
  const registry = new Registry();
  // No heartbeats: tests compare the whole Redis state with what the call under test may write.
  const queue = new DualWriteQueue({ redis, queueName: 'default', stage, metrics: { registry }, heartbeat: false, ...options });
  await queue.ready();
  return { queue, registry };
}

/** One series' value, 0 when never touched; `<histogram>_count` and `_sum` name a histogram's series. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name) ?? registry.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === name &&
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return match?.value ?? 0;
}

/**
 * The server's redis_version (Valkey answers 7.2.4): ACL rules name CLIENT SETINFO from 7.2 on
 * (serviceAclRules(prefix, { serverVersion })), as ioredis sends it on every connection there.
 */
export async function serverVersion(redis: Redis | Cluster): Promise<string> {
  const node = 'nodes' in redis ? redis.nodes('master')[0] : redis;
  return /redis_version:([0-9.]+)/.exec(String(await node.info('server')))?.[1] ?? '';
}
