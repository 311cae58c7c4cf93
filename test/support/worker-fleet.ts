import { ClaimConflictError, DualWriteError, NotFoundError, type DualWriteQueue, type Job } from '../../src';
import type { ClaimRecord, JobLedger } from './job-ledger';

/**
 * Worker processes as the README's Workers section runs them: each claims, extends its claim as a
 * heartbeat while its handler runs, and finishes with a result, or fails with an error and retries
 * within a budget decided from attempts (giving the job back, or failing it and requeueing it); and
 * each process runs recoverStalled and maintain() in loops. Some workers die holding a job (they
 * stop: recoverStalled brings it back) and some stall past their deadline and then try to finish
 * (refused once recoverStalled took the job). Everything a worker is told goes into the ledger.
 */
export interface FleetOptions {
  /** One queue per worker process. */
  queues: DualWriteQueue[];
  workersPerProcess: number;
  ledger: JobLedger;
  random: () => number;
  visibilityTimeoutMs: number;
  /** How often a busy worker extends its claim. */
  heartbeatMs: number;
  /** Claims a job may have; a job claimed past it is failed without running. */
  maxAttempts: number;
  /** Every crashEvery-th claim the worker dies holding the job; every stallEvery-th it stalls past the deadline. */
  crashEvery: number;
  stallEvery: number;
  /** Chance a handler fails. */
  failChance: number;
  recoverEveryMs: number;
  maintainEveryMs: number;
}

export interface FleetCounts {
  operations: number;
  claims: number;
  extends: number;
  crashes: number;
  stalls: number;
  /** Stalled workers whose late finish was refused (recoverStalled had taken the job) or went through. */
  staleRefused: number;
  staleAccepted: number;
  /** Healthy workers whose claim was lost anyway (their heartbeat came too late): refused, not run twice. */
  heartbeatsLate: number;
  /** Retries: a running job given back (requeue with the workerId), or failed and then requeued. */
  handedBack: number;
  failedThenRequeued: number;
  /** Failed jobs that retention removed before their requeue came: they stay failed. */
  requeuesTooLate: number;
  succeeded: number;
  failed: number;
  recovered: number;
  retentionRemoved: number;
  retentionRescheduled: number;
  retentionKept: number;
  /** Entries recoverStalled set aside (no record, or unplaceable): should stay 0. */
  setAside: number;
  errors: Record<string, number>;
  /** Errors no step expects: each fails the scenario. */
  unexpected: string[];
}

export interface Fleet {
  counts: FleetCounts;
  /** Stops the workers (they finish the step they are in); maintenance loops keep running. */
  stopWorkers(): Promise<void>;
  stopMaintenance(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startFleet(options: FleetOptions): Fleet {
  const { ledger, random, visibilityTimeoutMs: visibility } = options;
  const counts: FleetCounts = {
    operations: 0, claims: 0, extends: 0, crashes: 0, stalls: 0, staleRefused: 0, staleAccepted: 0, heartbeatsLate: 0,
    handedBack: 0, failedThenRequeued: 0, requeuesTooLate: 0, succeeded: 0, failed: 0, recovered: 0,
    retentionRemoved: 0, retentionRescheduled: 0, retentionKept: 0, setAside: 0, errors: {}, unexpected: [],
  };
  let workersStopped = false;
  let maintenanceStopped = false;

  /** One call, counted; a DualWriteError is counted by code and rethrown for the step to judge. */
  const call = async <T>(work: () => Promise<T>): Promise<T> => {
    counts.operations++;
    try {
      return await work();
    } catch (error) {
      const kind = error instanceof DualWriteError ? error.code : `client: ${(error as Error).message}`;
      counts.errors[kind] = (counts.errors[kind] ?? 0) + 1;
      throw error;
    }
  };
  const unexpected = (where: string) => (error: unknown) => {
    counts.unexpected.push(`${where}: ${(error as Error).message}`);
  };

  /** What one worker does with one claimed job; 'crashed' when the worker died holding it. */
  const handle = async (queue: DualWriteQueue, job: Job, claim: ClaimRecord, workerId: string, claimNumber: number): Promise<'crashed' | 'done'> => {
    const ids = { workspaceId: job.workspaceId, jobId: job.id };
    const finish = async (status: 'succeeded' | 'failed', detail: { result?: unknown; error?: string }, final: boolean) => {
      const done = await call(() => queue.updateStatus({ ...ids, status, workerId, ...detail }));
      claim.end = final ? 'finished' : 'handed_back';
      if (final) ledger.finished(ids.workspaceId, ids.jobId, { status, attempt: job.attempts, expiresAt: done.expiresAt, ...detail });
      return done;
    };
    const refused = (error: unknown) => {
      if (!(error instanceof ClaimConflictError)) throw error;
      claim.end = 'refused';
    };

    if (job.attempts > options.maxAttempts) {
      await finish('failed', { error: `no attempts left: ${options.maxAttempts} used` }, true).then(() => counts.failed++, refused);
      return 'done';
    }
    // Faults by count, not by chance: a short run meets each of them too.
    if (claimNumber % options.crashEvery === 0) {
      // The process dies mid-job: no heartbeat, no finish. Its claim runs out.
      claim.end = 'abandoned';
      counts.crashes++;
      return 'crashed';
    }
    if (claimNumber % options.stallEvery === 0) {
      // A pause (GC, a frozen VM) past the deadline, with no heartbeat; then the worker carries on.
      counts.stalls++;
      await sleep(visibility + 100 + random() * 300);
      await finish('succeeded', { result: { worker: workerId, attempt: job.attempts, late: true } }, true).then(
        () => {
          counts.staleAccepted++;
          counts.succeeded++;
        },
        (error) => {
          refused(error);
          counts.staleRefused++;
        },
      );
      return 'done';
    }

    // The handler runs; the heartbeat extends the claim until it is done.
    const roll = random();
    const runsFor = roll < 0.65 ? 5 + random() * 55 : roll < 0.95 ? 150 + random() * 300 : 600 + random() * 400;
    const until = Date.now() + runsFor;
    for (let left = runsFor; left > 0; left = until - Date.now()) {
      await sleep(Math.min(left, options.heartbeatMs));
      if (until - Date.now() <= 0) break;
      try {
        const extended = await call(() => queue.extendClaim({ ...ids, workerId, visibilityTimeoutMs: visibility }));
        ledger.extended(claim, extended.deadline, visibility);
        counts.extends++;
      } catch (error) {
        refused(error);
        counts.heartbeatsLate++;
        return 'done';
      }
    }

    try {
      if (random() >= options.failChance) {
        await finish('succeeded', { result: { worker: workerId, attempt: job.attempts } }, true);
        counts.succeeded++;
      } else if (job.attempts >= options.maxAttempts) {
        await finish('failed', { error: `attempt ${job.attempts} of ${options.maxAttempts} failed: out of budget` }, true);
        counts.failed++;
      } else if (random() < 0.5) {
        // Retry by giving the running job back.
        await call(() => queue.requeue({ ...ids, workerId, reason: `retry ${job.attempts + 1} of ${options.maxAttempts}` }));
        claim.end = 'handed_back';
        counts.handedBack++;
      } else {
        // Retry by recording the failure first (error and retention), then requeueing the failed job.
        const error = `attempt ${job.attempts} of ${options.maxAttempts} failed`;
        const failed = await finish('failed', { error }, false);
        try {
          await call(() => queue.requeue({ ...ids, reason: `retry ${job.attempts + 1} of ${options.maxAttempts}` }));
          counts.failedThenRequeued++;
        } catch (requeueError) {
          if (!(requeueError instanceof NotFoundError)) throw requeueError;
          // Retention removed it first: it stays failed, as the worker recorded it.
          ledger.finished(ids.workspaceId, ids.jobId, { status: 'failed', attempt: job.attempts, expiresAt: failed.expiresAt, error });
          counts.requeuesTooLate++;
          counts.failed++;
        }
      }
    } catch (error) {
      refused(error);
      counts.heartbeatsLate++;
    }
    return 'done';
  };

  const worker = async (queue: DualWriteQueue, processIndex: number, slot: number) => {
    for (let life = 0; !workersStopped; life++) {
      // A crashed worker is replaced by a new one under a new id, as a restarted process would be.
      const workerId = `p${processIndex}-w${slot}-${life}`;
      while (!workersStopped) {
        const job = await call(() => queue.claim({ workerId, visibilityTimeoutMs: visibility, waitMs: 100 }));
        if (!job) continue;
        const claim = ledger.claimed(job, workerId, visibility);
        if ((await handle(queue, job, claim, workerId, ++counts.claims)) === 'crashed') break;
      }
    }
  };

  const every = (ms: number, stopped: () => boolean, step: () => Promise<void>) =>
    (async () => {
      while (!stopped()) {
        await step();
        await sleep(ms);
      }
    })();
  const maintenance = options.queues.flatMap((queue, processIndex) => [
    every(options.recoverEveryMs, () => maintenanceStopped, async () => {
      const r = await call(() => queue.recoverStalled()).catch(unexpected(`p${processIndex} recoverStalled`));
      if (!r) return;
      counts.recovered += r.recovered;
      counts.setAside += r.orphaned + r.unsupported;
    }),
    every(options.maintainEveryMs, () => maintenanceStopped, async () => {
      // A full batch means more may be due: sweep again at once.
      for (let full = true; full; ) {
        const r = await call(() => queue.maintain()).catch(unexpected(`p${processIndex} maintain`));
        if (!r) return;
        counts.retentionRemoved += r.removed;
        counts.retentionRescheduled += r.rescheduled;
        counts.retentionKept += r.kept;
        full = r.removed + r.rescheduled + r.kept === 100;
      }
    }),
  ]);
  const workers = options.queues.flatMap((queue, processIndex) =>
    Array.from({ length: options.workersPerProcess }, (_, slot) =>
      worker(queue, processIndex, slot).catch(unexpected(`p${processIndex} worker ${slot}`)),
    ),
  );

  return {
    counts,
    stopWorkers: async () => {
      workersStopped = true;
      await Promise.all(workers);
    },
    stopMaintenance: async () => {
      maintenanceStopped = true;
      await Promise.all(maintenance);
    },
  };
}
