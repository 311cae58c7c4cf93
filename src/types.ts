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
}
export interface UpdateStatusResult {
  jobId: string;
  previousStatus: JobStatus;
  status: JobStatus;
  /** The layout an update had to restore the job into first, if any. */
  repaired: 'none' | 'new' | 'legacy';
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

