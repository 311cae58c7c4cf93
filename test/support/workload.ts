import { DualWriteError, StatusConflictError, type DualWriteQueue, type JobStatus } from '../../src';
import type { InvariantReport, JobId } from './invariants';

/**
 * A service's load, as the fault scenarios apply it: each job is enqueued with an idempotency key,
 * then moved queued -> running -> succeeded with expectedStatus, read back after each step, and
 * the workspace listed now and then. Calls that fail with a client error (not a DualWriteError:
 * the call may or may not have run) are retried with the same request, as the README's Retries
 * section tells callers to. Everything a caller was told is recorded, to check against Redis.
 */
export interface WorkloadOptions {
  /** One queue per connection; workers take them in turn. */
  queues: DualWriteQueue[];
  jobs: number;
  concurrency: number;
  workspaces?: readonly string[];
  /** Move each job through running to succeeded. Default true. */
  updates?: boolean;
  /** Read each job back after each step, and list its workspace every 10 jobs. Default true. */
  reads?: boolean;
  /** Retry client errors with the same request (default), or let them end the job's work. */
  retryClientErrors?: boolean;
  /** Tries per call before giving up; bounded so a dead server ends the run. Default 200. */
  maxAttempts?: number;
  /** Called after every call the load makes, with the count so far: where a scenario injects its fault. */
  afterCall?: (calls: number) => void;
}

export interface WorkloadResult {
  /** Calls made, retries included. */
  calls: number;
  logicalJobs: number;
  /** Each job a caller was told about, with the last status a caller was told it has. */
  acknowledged: Map<string, JobId & { status: JobStatus }>;
  /** Errors that reached a caller, by kind ('client: Connection is closed.', 'STATUS_CONFLICT', ...). */
  callerErrors: Record<string, number>;
  /** enqueue answers with created: false: the caller's own earlier attempt had made the job. */
  replays: number;
  /** StatusConflictErrors whose actual status was the one being set: the caller's own earlier attempt won. */
  ownWins: number;
  /** Reads that did not show what the caller had been told. */
  staleReads: number;
  /** Calls abandoned after maxAttempts. */
  gaveUp: number;
}

const STEPS: [JobStatus, JobStatus][] = [
  ['queued', 'running'],
  ['running', 'succeeded'],
];

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const workspaces = options.workspaces ?? ['acme', 'globex', 'initech'];
  const maxAttempts = options.maxAttempts ?? 200;
  const result: WorkloadResult = {
    calls: 0,
    logicalJobs: options.jobs,
    acknowledged: new Map(),
    callerErrors: {},
    replays: 0,
    ownWins: 0,
    staleReads: 0,
    gaveUp: 0,
  };
  const countError = (error: unknown) => {
    const kind = error instanceof DualWriteError ? error.code : `client: ${clientErrorKind(error as Error)}`;
    result.callerErrors[kind] = (result.callerErrors[kind] ?? 0) + 1;
  };

  /** Runs a call until it answers or fails with a DualWriteError (which means nothing was written). */
  const attempt = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
    for (let i = 1; ; i++) {
      result.calls++;
      try {
        return await call();
      } catch (error) {
        if (error instanceof DualWriteError) throw error;
        countError(error);
        if (options.retryClientErrors === false) return undefined;
        if (i >= maxAttempts) {
          result.gaveUp++;
          return undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(5 * i, 100)));
      } finally {
        options.afterCall?.(result.calls);
      }
    }
  };

  const runJob = async (queue: DualWriteQueue, n: number) => {
    const workspaceId = workspaces[n % workspaces.length];
    const enqueued = await attempt(() =>
      queue.enqueue({ workspaceId, type: 'soak.job', payload: { n, note: 'reliability' }, idempotencyKey: `request-${n}` }),
    ).catch((error) => void countError(error));
    if (!enqueued) return;
    if (!enqueued.created) result.replays++;
    const job = { workspaceId, jobId: enqueued.jobId, status: 'queued' as JobStatus };
    result.acknowledged.set(`${workspaceId}/${enqueued.jobId}`, job);
    if (options.reads !== false) await readBack(queue, job);
    if (options.reads !== false && n % 10 === 0) {
      await attempt(() => queue.listJobs({ workspaceId, limit: 20 })).catch((error) => void countError(error));
    }
    if (options.updates === false) return;

    for (const [from, to] of STEPS) {
      try {
        const updated = await attempt(() => queue.updateStatus({ workspaceId, jobId: job.jobId, status: to, expectedStatus: from }));
        if (!updated) return;
      } catch (error) {
        countError(error);
        // Only this worker moves this job, so a conflict showing the status being set is its own
        // earlier attempt, whose reply was lost: it won. Anything else is a real conflict.
        if (!(error instanceof StatusConflictError && error.actual === to)) return;
        result.ownWins++;
      }
      job.status = to;
      if (options.reads !== false) await readBack(queue, job);
    }
  };

  const readBack = async (queue: DualWriteQueue, job: JobId & { status: JobStatus }) => {
    const read = await attempt(() => queue.getJob({ workspaceId: job.workspaceId, jobId: job.jobId })).catch((error) => void countError(error));
    if (read !== undefined && read?.status !== job.status) result.staleReads++;
  };

  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      const queue = options.queues[worker % options.queues.length];
      while (next < options.jobs) await runJob(queue, next++);
    }),
  );
  return result;
}

/** Acknowledged jobs absent from Redis, and those whose record lacks the status a caller was told. */
export function againstAcknowledged(report: InvariantReport, result: WorkloadResult): { lost: number; stale: number } {
  const records = new Map(report.jobs.map((job) => [`${job.workspaceId}/${job.jobId}`, job]));
  let lost = 0;
  let stale = 0;
  for (const [id, told] of result.acknowledged) {
    const job = records.get(id);
    if (!job || !(job.legacy || job.new)) lost++;
    else if ([job.legacy, job.new].some((record) => record && record.status !== told.status)) stale++;
  }
  return { lost, stale };
}

/** The caller errors, without the conflicts that were the caller's own earlier attempts. */
export function errorsOtherThanOwnWins(result: WorkloadResult): Record<string, number> {
  const errors = { ...result.callerErrors };
  if (result.ownWins > 0) errors.STATUS_CONFLICT -= result.ownWins;
  if (errors.STATUS_CONFLICT === 0) delete errors.STATUS_CONFLICT;
  return errors;
}

export const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

/** ioredis names some errors (MaxRetriesPerRequestError); the rest are plain Errors told apart by message. */
function clientErrorKind(error: Error): string {
  return error.name !== 'Error' ? error.name : error.message.replace(/\s*\(.*$/, '').slice(0, 50);
}
