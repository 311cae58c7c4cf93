/**
 * Scenario 10, worker lifecycle under retention: what a store runs for months. A service enqueues
 * at a steady rate with idempotency keys that live shorter than the run (and replays some
 * requests); worker processes claim, extend as a heartbeat, finish with a result or an error, retry
 * within a budget from attempts, crash holding jobs and stall past their deadline; recoverStalled
 * and maintain() run in loops; finished jobs expire after 1-2 s; and the operator moves the managed
 * layout from dualwrite to shadow to live under that load (backfill, then a verify that must come
 * back clean). Afterwards: every job ended exactly once, no two workers held a job at once, every
 * record says what its workers were told, and once retention and the keys ran out and the sweep is
 * done, nothing of any job is left.
 *
 * Memory: used_memory, DBSIZE, the indexes and the expiries set are sampled every 250 ms. At soak
 * scale the load runs 50 s and used_memory must stay within ±5% of its mean over the load's second
 * half (after the first half filled the retention and idempotency windows), and the key counts may
 * drift by at most 10% of their mean over it: a leak of one small entry per job hides in ±5% of
 * used_memory over a minute, not in the counts. At scale 1 the load lasts
 * 2.5 s, too short for a steady state, so the leak check there is the end state: after the final
 * sweep no key of any job (record, index entry, expiries entry, claim, queue entry, idempotency key)
 * may remain, and the whole database must be the stage record and heartbeats alone.
 */
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { DualWriteQueue, Migration, type VerifyReport } from '../../src';
import { checkInvariants } from '../support/invariants';
import { JobLedger } from '../support/job-ledger';
import { memoryReport, sampleMemory, usedMemory } from '../support/memory';
import { produce } from '../support/idempotent-producer';
import { useRedis } from '../support/redis';
import { recordRow, scaled, seededRandom, SOAK } from '../support/soak';
import { startFleet } from '../support/worker-fleet';
import { checkOutcomes, sweepUntilClean } from '../support/retention-checks';

const ctx = useRedis();

const WORKSPACES = ['acme', 'globex', 'initech'] as const;
const PER_SECOND = 40;
const CALLS = scaled(100);
const LOAD_SECONDS = CALLS / PER_SECOND;
/** Shorter than the load at every scale, so keys expire and replays past them make new jobs. */
const IDEMPOTENCY_TTL_SECONDS = LOAD_SECONDS >= 20 ? 3 : 1;
const RETENTION = { succeeded: 1, failed: 2, cancelled: 1 };
const VISIBILITY_MS = 400;
const HEARTBEAT_MS = 120;
const PROCESSES = 2;
const WORKERS_PER_PROCESS = 8;
const MAX_ATTEMPTS = 3;
/** Every 25th claim's worker dies holding the job; every 45th stalls past its deadline. */
const CRASH_EVERY = 25;
const STALL_EVERY = 45;
const RECOVER_EVERY_MS = 100;
const MAINTAIN_EVERY_MS = 200;
/** Long enough for a steady state to fill half of it: the ±5% is asserted only then. */
const MEMORY_ASSERTED = LOAD_SECONDS >= 30;
const SAMPLE_EVERY_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const giveUpAt = Date.now() + timeoutMs; !condition(); await sleep(20)) if (Date.now() > giveUpAt) return false;
  return true;
}

let clients: Redis[] = [];
afterEach(() => {
  for (const client of clients) client.disconnect();
  clients = [];
});

describe('scenario 10: worker lifecycle under retention', () => {
  it('workers crash, stall, extend, requeue and finish under retention and short idempotency keys: nothing lost, nothing duplicated, nothing left, memory flat', async () => {
    const connect = () => {
      const client = new Redis(ctx.handle.url);
      clients.push(client);
      return client;
    };
    const operator = new Migration({ redis: ctx.redis, stage: 'managed', metrics: false });
    await operator.initStage('dualwrite', { reason: 'soak: start in dualwrite' });
    await operator.configure({ retention: RETENTION });
    const queueOn = async (instanceId: string) => {
      const queue = new DualWriteQueue({
        redis: connect(), stage: 'managed', idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
        metrics: { registry: new Registry() }, heartbeat: { intervalMs: 1000 }, instanceId,
      });
      await queue.ready();
      return queue;
    };
    const [service, ...workerProcesses] = await Promise.all(
      ['service', ...Array.from({ length: PROCESSES }, (_, i) => `workers-${i}`)].map(queueOn),
    );

    // The baseline: every connection of the run open, and no latency histograms (see the memory report).
    const samplerConnection = connect();
    await samplerConnection.ping();
    await ctx.redis.config('RESETSTAT');
    const baselineUsedMemory = await usedMemory(ctx.redis);
    const sampler = sampleMemory(samplerConnection, {
      everyMs: SAMPLE_EVERY_MS, expiriesKey: 'queue:default:expiries', indexKeys: WORKSPACES.map((w) => `ws:${w}:jobs`),
    });
    const ledger = new JobLedger();
    const random = seededRandom(SOAK.seed);
    const started = Date.now();
    const fleet = startFleet({
      queues: workerProcesses, workersPerProcess: WORKERS_PER_PROCESS, ledger, random, visibilityTimeoutMs: VISIBILITY_MS,
      heartbeatMs: HEARTBEAT_MS, maxAttempts: MAX_ATTEMPTS, crashEvery: CRASH_EVERY, stallEvery: STALL_EVERY, failChance: 0.2,
      recoverEveryMs: RECOVER_EVERY_MS, maintainEveryMs: MAINTAIN_EVERY_MS,
    });

    // However it ends, the fleet and the sampler stop: their loops would keep the test process alive.
    try {
      // The operator moves the fleet forward under load: dualwrite -> shadow after a backfill, shadow ->
      // live after a verify, which must find the layouts equal while retention removes jobs. Both in
      // the load's first half: the first call of a command Redis has not seen adds its latency
      // histogram to used_memory (latency-tracking, Redis 7+), a one-time step the second half must not hold.
      let calls = 0;
      let verifyUnderLoad: VerifyReport | undefined;
      let operatorError: unknown;
      const operatorSteps = (async () => {
        await until(() => calls >= CALLS / 6, LOAD_SECONDS * 1000);
        await operator.backfill();
        await operator.setStage('shadow', { reason: 'soak: forward under load' });
        await until(() => calls >= CALLS / 3, LOAD_SECONDS * 1000);
        verifyUnderLoad = await operator.verify();
        await operator.setStage('live', { reason: 'soak: forward under load' });
      })().catch((error) => {
        operatorError = error;
      });

      const loadFromMs = sampler.now();
      const produced = await produce({
        queue: service, ledger, calls: CALLS, perSecond: PER_SECOND, workspaces: WORKSPACES,
        idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS, random, replayChance: 0.15, retryChance: 0.03, cancelChance: 0.04,
        onCall: (n) => (calls = n),
      });
      const loadToMs = sampler.now();
      const producedAt = Date.now();
      await operatorSteps;

      // Drain: every job a caller was told exists ends (crashed jobs come back through recoverStalled).
      const drained = await until(() => [...ledger.jobs.values()].every((job) => job.outcomes.length > 0), 30_000);
      await fleet.stopWorkers();
      await fleet.stopMaintenance();

      // What callers were told, against Redis: each ended job is there as told, or retention removed it at its time.
      const outcomes = await checkOutcomes(ctx.redis, ledger);

      // Wait out retention and the idempotency keys, then sweep until nothing is due.
      const lastExpiry = Math.max(0, ...[...ledger.ended()].map(([, outcome]) => outcome.expiresAt ?? 0));
      await sleep(Math.max(lastExpiry, producedAt + IDEMPOTENCY_TTL_SECONDS * 1000) + 20 - Date.now());
      const finalSweep = await sweepUntilClean(service, ctx.redis, 'queue:default:expiries');
      const finalVerify = await operator.verify();
      const invariants = await checkInvariants(ctx.redis, { ignore: (key) => key.startsWith('dualwrite:') });
      const keysLeft = (await ctx.redis.keys('*')).sort();
      const samples = await sampler.stop();
      const finalUsedMemory = await usedMemory(ctx.redis);
      await ctx.redis.config('RESETSTAT');
      const memory = memoryReport(samples, { fromMs: loadFromMs, toMs: loadToMs }, SAMPLE_EVERY_MS, {
        baseline: baselineUsedMemory, final: finalUsedMemory, finalWithoutHistograms: await usedMemory(ctx.redis),
      });
      const ledgerViolations = ledger.violations();
      const counts = fleet.counts;

      const overlaps = ledgerViolations.filter((v) => v.kind === 'overlap' || v.kind === 'finished_twice' || v.kind === 'ended_off_claim');
      const lost = ledgerViolations.filter((v) => v.kind === 'not_finished').length + outcomes.vanished.length;
      const callerErrors = { ...counts.errors };
      for (const [kind, n] of Object.entries(produced.errors)) callerErrors[kind] = (callerErrors[kind] ?? 0) + n;
      recordRow({
        scenario: 10,
        name: 'worker lifecycle under retention (crash, stall, extend, requeue)',
        operations: produced.operations + counts.operations,
        faults: counts.crashes + counts.stalls,
        faultKind: 'worker crashes and stalls past the claim deadline',
        lost,
        duplicated: produced.duplicates.length + overlaps.length,
        halfWritten: outcomes.wrong.length + invariants.violations.length + Object.values(finalVerify.divergences).reduce((a, b) => a + b, 0),
        callerErrors: Object.values(callerErrors).reduce((a, b) => a + b, 0),
        callerErrorKinds: callerErrors,
        figures: {
          seconds: Math.round((Date.now() - started) / 1000),
          loadSeconds: LOAD_SECONDS,
          idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
          retentionSucceededSeconds: RETENTION.succeeded,
          retentionFailedSeconds: RETENTION.failed,
          retentionCancelledSeconds: RETENTION.cancelled,
          perSecond: PER_SECOND,
          visibilityTimeoutMs: VISIBILITY_MS,
          heartbeatMs: HEARTBEAT_MS,
          processes: PROCESSES,
          workers: PROCESSES * WORKERS_PER_PROCESS,
          maxAttempts: MAX_ATTEMPTS,
          crashEvery: CRASH_EVERY,
          stallEvery: STALL_EVERY,
          recoverEveryMs: RECOVER_EVERY_MS,
          maintainEveryMs: MAINTAIN_EVERY_MS,
          requests: produced.requests,
          jobs: produced.created,
          replaysSameJob: produced.replaysSameJob,
          replaysOfRemovedJob: produced.replaysOfRemovedJob,
          replaysNewJob: produced.replaysNewJob,
          cancelled: produced.cancelled,
          cancelsTooLate: produced.cancelsTooLate,
          claims: counts.claims,
          extends: counts.extends,
          crashes: counts.crashes,
          stalls: counts.stalls,
          staleRefused: counts.staleRefused,
          staleAccepted: counts.staleAccepted,
          heartbeatsLate: counts.heartbeatsLate,
          recovered: counts.recovered,
          handedBack: counts.handedBack,
          failedThenRequeued: counts.failedThenRequeued,
          requeuesTooLate: counts.requeuesTooLate,
          succeeded: counts.succeeded,
          failed: counts.failed,
          retentionRemoved: counts.retentionRemoved + finalSweep.removed,
          retentionRemovedInFinalSweep: finalSweep.removed,
          recordsCheckedPresent: outcomes.present,
          recordsCheckedRemoved: outcomes.removed,
          succeededWithEarlierError: outcomes.succeededWithEarlierError,
          pendingMaintenanceUnderLoad: verifyUnderLoad?.pendingMaintenance ?? -1,
          overlaps: overlaps.length,
        },
        memory,
      });

      expect(operatorError).toBeUndefined();
      expect(drained).toBe(true);
      expect(counts.unexpected).toEqual([]);
      expect(ledgerViolations).toEqual([]);
      expect(produced.duplicates).toEqual([]);
      expect(produced.wrongReplays).toEqual([]);
      expect(outcomes.vanished).toEqual([]);
      expect(outcomes.wrong).toEqual([]);
      expect(counts.setAside).toBe(0);
      // Every outcome the workers and the service reported, and nothing else.
      expect(counts.succeeded + counts.failed + produced.cancelled).toBe(produced.created);
      // The faults happened, so the run proves something about them.
      expect(counts.crashes).toBeGreaterThan(0);
      expect(counts.stalls).toBeGreaterThan(0);
      expect(counts.extends).toBeGreaterThan(0);
      expect(counts.handedBack + counts.failedThenRequeued).toBeGreaterThan(0);
      expect(counts.recovered).toBeGreaterThan(0);
      expect(counts.retentionRemoved + finalSweep.removed).toBe(produced.created);
      // The verify that let the fleet into live, taken under load, found nothing wrong.
      expect(verifyUnderLoad).toMatchObject({ clean: true });
      // Nothing of any job is left: verify clean with nothing pending, no invariant broken, no key but the stage's.
      expect(finalSweep.due).toBe(0);
      expect(finalVerify).toMatchObject({ clean: true, pendingMaintenance: 0 });
      expect(invariants).toEqual({ jobs: [], violations: [] });
      expect(keysLeft).toEqual(['dualwrite:instances', 'dualwrite:instances:info', 'dualwrite:stage', 'dualwrite:stage:history']);
      if (MEMORY_ASSERTED) {
        expect(memory.usedMemory.secondHalf.maxDeviation).toBeLessThanOrEqual(0.05);
        // Finer than bytes: a leak of one small entry per job hides in ±5% of used_memory, not in the
        // counts, whose drift over the second half (slope x its length) must stay within 10% of their mean.
        const halfSeconds = (memory.loadToMs - memory.loadFromMs) / 2000;
        for (const series of [memory.keys.secondHalf, memory.indexEntries, memory.expiriesEntries]) {
          expect(Math.abs(series.slopePerSecond) * halfSeconds).toBeLessThanOrEqual(0.1 * series.mean);
        }
      }
    } finally {
      await Promise.allSettled([fleet.stopWorkers(), fleet.stopMaintenance(), sampler.stop()]);
    }
  });
});
