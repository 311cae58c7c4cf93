/**
 * Scenario 1, reply lost: Redis ran the script, the connection died before the reply arrived.
 * The caller (or ioredis for it) cannot tell whether the call ran, so it runs it again; the
 * idempotency key must turn that second run into a replay of the first.
 */
import Redis, { type RedisOptions } from 'ioredis';
import { DuplicateJobError } from '../../src';
import { startFaultProxy, type FaultProxy } from '../../src/testing';
import { checkInvariants, tally } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow, scaled, seededRandom, SOAK } from '../support/soak';
import { againstAcknowledged, errorsOtherThanOwnWins, runWorkload, sum, type WorkloadResult } from '../support/workload';

const ctx = useRedis();
let proxy: FaultProxy;
const clients: Redis[] = [];

beforeEach(async () => {
  proxy = await startFaultProxy({ target: ctx.handle.url });
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await proxy.close();
});

function throughProxy(options: RedisOptions = {}): Redis {
  const client = new Redis(proxy.url, { disconnectTimeout: 50, ...options });
  client.on('error', () => {}); // connection errors reach the calls; the event would only be noise
  clients.push(client);
  return client;
}

const SCRIPT_CALLS = ['evalsha', 'eval'];

async function expectEveryJobOnce(result: WorkloadResult) {
  const report = await checkInvariants(ctx.redis);
  expect(report.violations).toEqual([]); // both layouts, one queue entry, indexed, keys point at jobs
  expect(againstAcknowledged(report, result)).toEqual({ lost: 0, stale: 0 });
  expect(result.acknowledged.size).toBe(result.logicalJobs);
  expect(report.jobs).toHaveLength(result.logicalJobs); // no second job for any request
  expect(result.staleReads).toBe(0);
  return tally(report, result.acknowledged.values(), result.logicalJobs);
}

describe('scenario 1: reply lost', () => {
  it('ioredis resends each command whose reply was lost: every job exists once, in both layouts, with one queue entry', async () => {
    const { queue } = await makeQueue(throughProxy(), 'dualwrite'); // ioredis defaults: reconnect and resend
    const drop = proxy.dropReplies(scaled(15), { commands: SCRIPT_CALLS, share: 0.1, random: seededRandom(SOAK.seed) });

    const result = await runWorkload({ queues: [queue], jobs: scaled(40), concurrency: 8 });
    const dropped = drop.stop();

    expect(dropped).toBeGreaterThan(0);
    expect(result.replays + result.ownWins).toBeGreaterThan(0); // some writes ran twice, and were caught
    const figures = await expectEveryJobOnce(result);
    // The only errors callers saw were their own earlier updates winning (see README, Retries).
    expect(errorsOtherThanOwnWins(result)).toEqual({});
    recordRow({
      scenario: 1, name: 'reply lost', operations: result.calls, faults: dropped, faultKind: 'replies lost (dropped, or later than commandTimeout)',
      ...figures, callerErrors: sum(result.callerErrors), callerErrorKinds: result.callerErrors,
    });
  });

  it('when the client gives up at once, the caller retries with the same key: still every job once', async () => {
    const { queue } = await makeQueue(throughProxy({ maxRetriesPerRequest: 0 }), 'live');
    const drop = proxy.dropReplies(scaled(15), { commands: SCRIPT_CALLS, share: 0.1, random: seededRandom(SOAK.seed + 1) });

    const result = await runWorkload({ queues: [queue], jobs: scaled(40), concurrency: 8 });
    const dropped = drop.stop();

    expect(dropped).toBeGreaterThan(0);
    const errors = errorsOtherThanOwnWins(result);
    expect(sum(errors)).toBeGreaterThan(0); // the caller saw the lost replies...
    expect(Object.keys(errors).every((kind) => kind.startsWith('client: '))).toBe(true); // ...as client errors
    expect(result.gaveUp).toBe(0);
    const figures = await expectEveryJobOnce(result);
    recordRow({
      scenario: 1, name: 'reply lost', operations: result.calls, faults: dropped, faultKind: 'replies lost (dropped, or later than commandTimeout)',
      ...figures, callerErrors: sum(result.callerErrors), callerErrorKinds: result.callerErrors,
    });
  });

  it('a reply later than commandTimeout: the script ran although the caller got an error, and the retry replays it', async () => {
    const { queue } = await makeQueue(throughProxy({ commandTimeout: 100 }), 'dualwrite');
    const request = { workspaceId: 'acme', type: 'invoice.render', payload: { invoice: 7 }, idempotencyKey: 'invoice-7' };
    proxy.addLatency(250, 600);

    const first = await queue.enqueue(request).catch((error: Error) => error);
    expect(first).toBeInstanceOf(Error);
    expect((first as Error).message).toMatch(/Command timed out/);
    // The request was on its way: it runs after the caller was told it failed.
    const jobKeys = await waitFor(async () => (await ctx.redis.keys('ws:acme:job:*')).length > 0, 2_000);
    expect(jobKeys).toBe(true);

    let retried: { jobId: string; created: boolean } | undefined;
    let timeouts = 1;
    for (let attempt = 0; attempt < 30 && !retried; attempt++) {
      retried = await queue.enqueue(request).catch(() => void timeouts++);
    }

    expect(retried?.created).toBe(false);
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(report.jobs.map((job) => job.jobId)).toEqual([retried!.jobId]);
    recordRow({
      scenario: 1, name: 'reply lost', operations: timeouts + 1, faults: timeouts, faultKind: 'replies lost (dropped, or later than commandTimeout)',
      lost: 0, duplicated: report.jobs.length - 1, halfWritten: 0, callerErrors: timeouts,
      callerErrorKinds: { 'client: Command timed out': timeouts },
    });
  });

  it('a claim whose lookup of the legacy record loses its reply leaves the job queued, never orphaned', async () => {
    const { queue } = await makeQueue(throughProxy({ maxRetriesPerRequest: 0 }), 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    proxy.dropReplies(1, { commands: ['hget'] }); // claim reads job:<id>'s workspace before its script

    const claimed = await queue.claim({ workerId: 'worker-1' }).catch((error: Error) => error);

    // Either the claim failed (the job stays queued) or it took the job; it may not lose it.
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(await ctx.redis.llen('queue:default:orphans')).toBe(0);
    if (!(claimed instanceof Error)) expect(claimed?.id).toBe(jobId);
  });

  it('a claim whose reply is lost: the job stays claimed until its visibility timeout, then recoverStalled queues it again', async () => {
    const { queue } = await makeQueue(throughProxy(), 'dualwrite'); // ioredis resends the lost claim
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'first' });
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'second' });
    proxy.dropReplies(1, { commands: SCRIPT_CALLS });

    const claimed = await queue.claim({ workerId: 'worker-1', visibilityTimeoutMs: 100 });
    expect(claimed).not.toBeNull();
    // The first run's claim is held though no caller heard of it; after the timeout it comes back.
    expect((await ctx.redis.zrange('queue:default:processing', 0, -1)).sort()).toEqual(['first', 'second']);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await queue.recoverStalled()).toEqual({ recovered: 2, orphaned: 0, unsupported: 0 });

    expect((await ctx.redis.lrange('queue:default', 0, -1)).sort()).toEqual(['first', 'second']);
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(report.jobs.map((job) => [job.jobId, job.new?.status])).toEqual([['first', 'queued'], ['second', 'queued']]);
  });

  describe('without an idempotency key (what the key protects against)', () => {
    it("ioredis' resend of a lost enqueue answers with the job the first run made, created: false", async () => {
      const { queue } = await makeQueue(throughProxy(), 'dualwrite');
      proxy.dropReplies(1, { commands: SCRIPT_CALLS });

      const result = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

      expect(result.created).toBe(false);
      const report = await checkInvariants(ctx.redis);
      expect(report.violations).toEqual([]);
      expect(report.jobs.map((job) => job.jobId)).toEqual([result.jobId]); // one job: the first run's
    });

    it("a caller's own jobId that its resend finds taken is still a DuplicateJobError", async () => {
      const { queue } = await makeQueue(throughProxy(), 'dualwrite');
      proxy.dropReplies(1, { commands: SCRIPT_CALLS });

      const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'mine' }).catch((e) => e);

      expect(error).toBeInstanceOf(DuplicateJobError);
      const report = await checkInvariants(ctx.redis);
      expect(report.violations).toEqual([]);
      expect(report.jobs.map((job) => job.jobId)).toEqual(['mine']);
    });

    it('a caller that retries without a key or jobId makes a second job', async () => {
      const { queue } = await makeQueue(throughProxy({ maxRetriesPerRequest: 0 }), 'dualwrite');
      proxy.dropReplies(1, { commands: SCRIPT_CALLS });
      const request = { workspaceId: 'acme', type: 't', payload: 1 };

      const first = await queue.enqueue(request).catch((e) => e);
      const second = await queue.enqueue(request);

      expect(first).not.toHaveProperty('jobId');
      const report = await checkInvariants(ctx.redis);
      expect(report.violations).toEqual([]);
      expect(report.jobs).toHaveLength(2); // the duplicate the idempotency key exists to prevent
      expect(report.jobs.map((job) => job.jobId)).toContain(second.jobId);
    });
  });
});

async function waitFor(condition: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}
