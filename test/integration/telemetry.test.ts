import { Registry, register as globalRegistry } from 'prom-client';
import { DualWriteQueue } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();

describe('telemetry', () => {
  afterEach(() => globalRegistry.clear());

  it('two queues on one registry share the metrics without a registration error', async () => {
    const registry = new Registry();
    const a = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, queueName: 'a', stage: 'off', metrics: { registry } });
    const b = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, queueName: 'b', stage: 'complete', metrics: { registry } });

    await a.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await b.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'ok' })).toBe(2);
    expect(Object.keys(await redisState(ctx.redis))).toEqual(expect.arrayContaining(['queue:a', 'queue:b']));
  });

  it('uses prom-client\'s global registry by default, and none with metrics: false', async () => {
    globalRegistry.clear();
    const silent = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false });
    await silent.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);

    const counted = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off' });
    await counted.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

    expect(await metricValue(globalRegistry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'ok' })).toBe(1);
  });

  it('never turns a workspace, job or idempotency id into a label value', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'live');
    await ctx.redis.hset('job:legacyonly7', { id: 'legacyonly7', workspace_id: 'tenant42', type: 't', payload: '1', status: 'queued', created_at: '1', updated_at: '1' });
    const { jobId } = await queue.enqueue({ workspaceId: 'tenant42', type: 't', payload: 1, idempotencyKey: 'idem99' });
    await queue.enqueue({ workspaceId: 'tenant42', type: 't', payload: 1, idempotencyKey: 'idem99' });
    await queue.updateStatus({ workspaceId: 'tenant42', jobId: 'legacyonly7', status: 'running' });
    await queue.getJob({ workspaceId: 'tenant42', jobId });
    await queue.getJob({ workspaceId: 'tenant42', jobId: 'missing1' }).catch(() => null);

    const text = await registry.metrics();

    expect(text).toContain('dualwrite_repairs_total{target="new"} 1');
    for (const id of ['tenant42', jobId, 'idem99', 'legacyonly7', 'missing1']) expect(text).not.toContain(id);
  });

  it('times calls with buckets that resolve sub-millisecond latencies, and counts errors by code', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    await queue.updateStatus({ workspaceId: 'acme', jobId: 'nope', status: 'failed' }).catch(() => null);
    await queue.enqueue({ workspaceId: 'bad id', type: 't', payload: 1 }).catch(() => null);

    const text = await registry.metrics();

    expect(text).toMatch(/dualwrite_operation_duration_seconds_bucket\{le="0\.0001",operation="update_status"\}/);
    expect(text).toMatch(/dualwrite_operation_duration_seconds_bucket\{le="0\.0005",operation="update_status"\}/);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'update_status', outcome: 'not_found' })).toBe(1);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'validation' })).toBe(1);
    expect(await redisState(ctx.redis)).toEqual({});
  });
});
