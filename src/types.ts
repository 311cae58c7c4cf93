import type { Registry } from 'prom-client';
import type { KeyLayoutOption } from './custom-layout';
import type { Logger } from './logger';
import type { RedisClient } from './scripts/registry';
import type { StageOption } from './stages';
import type { Job } from './job';
import type { JobStatus } from './validation';

/** What callers pass to and get back from DualWriteQueue. */

export interface DualWriteQueueOptions {
  /** An ioredis client (Redis or Cluster) the caller owns: the queue never closes it. */
  redis: RedisClient;
  queueName?: string;
  /**
   * 'managed': every script reads the stage from the layout's stage record, in the same atomic step
   * as its work; a fleet must use this. A stage name: static mode, this process alone (tests, one
   * instance, the demo's first steps). See README "Stage control".
   */
  stage: StageOption;
  /** Prepended to every key, whoever builds it. */
  keyPrefix?: string;
  /**
   * Where each record lives: builders for any key of KeyLayout (they receive validated ids only);
   * the default layout builds the rest. On a Cluster use `clusterLayout(tag)`: every key of one
   * operation must share a hash slot, which the constructor checks.
   */
  keys?: KeyLayoutOption;
  idempotencyTtlSeconds?: number;
  maxPayloadBytes?: number;
  metrics?: { registry: Registry } | false;
  logger?: Logger;
  /**
   * Every few seconds (after an operation, never holding it up) the queue tells the layout which
   * package version, scripts, mode and epoch it runs, for `redis-dual-write status`. Default on,
   * every 5000 ms; false turns it off.
   */
  heartbeat?: { intervalMs?: number } | false;
  /** How this instance shows in status; default host-pid-random. */
  instanceId?: string;
  /**
   * Static mode: how long finished jobs stay, by status, in seconds (default: for good). A managed
   * queue reads it from the stage record instead, where every instance finds the same (set it with
   * Migration.configure or `redis-dual-write stage config`).
   */
  retention?: Retention;
}

/** How long a finished job stays, by its status, in seconds; a status left out keeps its jobs for good. */
export interface Retention {
  succeeded?: number;
  failed?: number;
  cancelled?: number;
}

export interface EnqueueInput {
  workspaceId: string;
  type: string;
  payload: unknown;
  idempotencyKey?: string;
  jobId?: string;
}
export interface EnqueueResult {
  jobId: string;
  /** false when an idempotent replay returned the original job and nothing was written. */
  created: boolean;
}

export interface UpdateStatusInput {
  workspaceId: string;
  jobId: string;
  status: JobStatus;
  expectedStatus?: JobStatus;
  /** Only the worker holding the job's claim may update it (ClaimConflictError otherwise). */
  workerId?: string;
  /** Why the job failed, as the worker says it: stored on the job in every layout (at most 4096 characters). */
  error?: string;
  /** What the job produced: any JSON, bounded like payloads, stored on the job in every layout. */
  result?: unknown;
}
export interface UpdateStatusResult {
  jobId: string;
  previousStatus: JobStatus;
  status: JobStatus;
  /** The layout an update had to restore the job into first, if any. */
  repaired: 'none' | 'new' | 'legacy';
  /** When retention removes the job (ms since the epoch), or null when it stays. */
  expiresAt: number | null;
}

export interface ExtendClaimInput {
  workspaceId: string;
  jobId: string;
  /** The worker holding the claim: only it may extend it (ClaimConflictError otherwise). */
  workerId: string;
  /** The new deadline: the server's now plus this (default 30000). */
  visibilityTimeoutMs?: number;
}
export interface ExtendClaimResult {
  jobId: string;
  /** The claim's new deadline, ms since the epoch (server time). */
  deadline: number;
}

export interface RequeueInput {
  workspaceId: string;
  jobId: string;
  /** Required to requeue a running job: the worker holding its claim (it gives the job back). */
  workerId?: string;
  /** Why, for the log (say "retry 2 of 5"). */
  reason?: string;
}
export interface RequeueResult {
  jobId: string;
  previousStatus: JobStatus;
  repaired: 'none' | 'new' | 'legacy';
}

export interface DeleteJobInput {
  workspaceId: string;
  jobId: string;
  /** Delete it even while a worker holds it (the worker's finish then gets ClaimConflictError). */
  force?: boolean;
}
export interface DeleteJobResult {
  jobId: string;
  /** The layouts the job's record was deleted from. */
  deleted: ('legacy' | 'new')[];
}

export interface MaintainInput {
  /** At most this many expired jobs per call (default and maximum 100). */
  limit?: number;
}
export interface MaintainResult {
  /** Expired jobs whose index entry and queue side entries were removed. */
  removed: number;
  /** Jobs due but still there (their expiry moved): looked at again when it comes. */
  rescheduled: number;
  /** Jobs due but kept for good since (their expiry was taken away): no longer watched. */
  kept: number;
}

export interface ClaimInput {
  /** Who takes the job; pass it to updateStatus to finish only jobs this worker holds. */
  workerId: string;
  /** How long the claim holds before recoverStalled may give the job to another worker. */
  visibilityTimeoutMs?: number;
  /** Wait up to this long for a job when the queue is empty (default 0: answer at once). */
  waitMs?: number;
}

export interface RecoverStalledInput {
  /** At most this many stalled jobs per call (default and maximum 100). */
  limit?: number;
}
export interface RecoverStalledResult {
  /** Jobs put back on the queue. */
  recovered: number;
  /** Stalled entries whose job record was gone, moved to the orphans list. */
  orphaned: number;
  /** Stalled entries the package cannot place (see the unsupported list), moved there. */
  unsupported: number;
}

export interface GetJobInput {
  workspaceId: string;
  jobId: string;
}

export interface ListJobsInput {
  workspaceId: string;
  status?: JobStatus;
  limit?: number;
  cursor?: string | null;
}
export interface ListJobsResult {
  jobs: Job[];
  /** Pass it back to get the next page; null when the index holds nothing further. */
  nextCursor: string | null;
}

export interface ReadyOptions {
  /** How long to wait for Redis to answer before failing with RedisUnavailableError. */
  timeoutMs?: number;
  /**
   * What to do when maxmemory-policy is not noeviction (eviction silently deletes jobs):
   * 'warn' logs at warn (the default), 'throw' fails with EvictionPolicyError.
   */
  evictionPolicy?: 'warn' | 'throw';
}

