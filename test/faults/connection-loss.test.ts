/**
 * Scenario 9, connection loss: Redis unreachable. Each call must fail within the bound the client
 * is configured with, with the client's own error (the package adds no retry loop and no wait of
 * its own), be counted with outcome 'error', and calls must succeed again once Redis is back.
 */
import Redis, { type RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';
import { DualWriteError, type DualWriteQueue } from '../../src';
import { startFaultProxy, type FaultProxy } from '../../src/testing';
import { checkInvariants } from '../support/invariants';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { recordRow, scaled } from '../support/soak';

const ctx = useRedis();
let proxy: FaultProxy;
let client: Redis;

beforeEach(async () => {
  proxy = await startFaultProxy({ target: ctx.handle.url });
});
afterEach(async () => {
  client?.disconnect();
  await proxy.close();
});

async function queueThroughProxy(options: RedisOptions) {
  client = new Redis(proxy.url, { disconnectTimeout: 50, ...options });
  client.on('error', () => {});
  await whenReady(client); // without the offline queue, a call before the connection is up fails
  return makeQueue(client, 'dualwrite');
}

const orderFor = (outage: number) => ({ workspaceId: 'acme', type: 'payment.capture', payload: { outage }, idempotencyKey: `order-${outage}` });
const order = orderFor(0);
/** One call of each operation, all at once, as a service would make them while Redis is away. */
function everyOperation(queue: DualWriteQueue, outage = 0): [string, Promise<unknown>][] {
  const calls: [string, () => Promise<unknown>][] = [
    ['enqueue', () => queue.enqueue(orderFor(outage))],
    ['update_status', () => queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' })],
    ['get_job', () => queue.getJob({ workspaceId: 'acme', jobId: 'j1' })],
    ['list_jobs', () => queue.listJobs({ workspaceId: 'acme' })],
  ];
  return calls.map(([operation, call]) => [operation, settledOrHung(call())]);
}

/** A hang detector, far above every bound configured here: a hang fails clearly instead of at the test timeout. */
async function settledOrHung(call: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise((resolve) => (timer = setTimeout(() => resolve('hung'), 10_000)));
  try {
    return await Promise.race([call.then((value) => ({ value }), (error: unknown) => error), hung]);
  } finally {
    clearTimeout(timer);
  }
}

async function expectClientErrorsCounted(registry: Registry, calls: [string, Promise<unknown>][], message: RegExp, counted = 1) {
  for (const [operation, call] of calls) {
    const outcome = await call;
    expect([operation, outcome instanceof Error && !(outcome instanceof DualWriteError)]).toEqual([operation, true]);
    expect([operation, (outcome as Error).message]).toEqual([operation, expect.stringMatching(message)]);
    expect([operation, await metricValue(registry, 'dualwrite_operations_total', { operation, outcome: 'error' })]).toEqual([operation, counted]);
  }
}

/**
 * Outages one after another: during each, every operation fails with the client's error and is
 * counted; after each, the enqueue that failed succeeds as a new job (it never ran).
 */
async function outages(options: RedisOptions, message: RegExp, errorKind: string): Promise<void> {
  const { queue, registry } = await queueThroughProxy(options);
  const count = scaled(1);
  for (let outage = 0; outage < count; outage++) {
    await proxy.refuseConnections(60_000);

    await expectClientErrorsCounted(registry, everyOperation(queue, outage), message, outage + 1);

    await proxy.refuseConnections(0); // Redis is back
    await whenReady(client);
    expect(await queue.enqueue(orderFor(outage))).toEqual({ jobId: expect.any(String), created: true });
  }
  const report = await checkInvariants(ctx.redis);
  expect(report.violations).toEqual([]);
  expect(report.jobs).toHaveLength(count);
  recordRow({
    scenario: 9, name: 'connection loss (Redis unreachable)', operations: count * 5, faults: count, faultKind: 'outages',
    lost: 0, duplicated: 0, halfWritten: 0, callerErrors: count * 4, callerErrorKinds: { [errorKind]: count * 4 },
  });
}

async function whenReady(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}

describe('scenario 9: connection loss', () => {
  it('a fail-fast client (no offline queue, no retries per request) fails every call at once, and succeeds once Redis is back', async () => {
    // Calls in flight when the connection dropped fail on the retry limit; later ones find no connection.
    await outages(
      { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 20 },
      /enableOfflineQueue|max retries per request/,
      'client: no connection (fail-fast client)',
    );
  });

  it('with maxRetriesPerRequest, queued calls fail after that many reconnect attempts, and succeed once Redis is back', async () => {
    await outages({ maxRetriesPerRequest: 2, retryStrategy: () => 20 }, /max retries per request/, 'client: MaxRetriesPerRequestError');
  });

  it('with commandTimeout, calls to a Redis that stopped answering fail with the timeout, yet ioredis resends them after reconnecting', async () => {
    const { queue, registry } = await queueThroughProxy({ commandTimeout: 200 });
    proxy.addLatency(60_000, 60_000); // connections stay open, nothing comes back

    await expectClientErrorsCounted(registry, everyOperation(queue), /Command timed out/);

    proxy.addLatency(0, 0);
    proxy.cutConnections(); // the stuck connection dies; ioredis reconnects and resends what was unanswered
    await whenReady(client);
    // The timed-out enqueue ran on the resend, before this retry: the same key replays it.
    const retried = await queue.enqueue(order);
    expect(retried.created).toBe(false);
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(report.jobs.map((job) => job.jobId)).toEqual([retried.jobId]);
    recordRow({
      scenario: 9, name: 'connection loss (Redis unreachable)', operations: 5, faults: 1, faultKind: 'outages',
      lost: 0, duplicated: report.jobs.length - 1, halfWritten: 0, callerErrors: 4, callerErrorKinds: { 'client: Command timed out': 4 },
    });
  });
});
