import type { KeyLayout } from './keys';
import type { Logger } from './logger';
import { translateRedisError } from './scripts/replies';
import type { RedisClient } from './scripts/registry';
import type { StagedScripts } from './stage-control/run';
import type { Metrics, Operation } from './telemetry';
import type { UpdateStatusResult } from './types';

/** What the queue's operations share; DualWriteQueue builds it once, the modules doing the work read it. */
export interface QueueContext extends StagedScripts {
  readonly redis: RedisClient;
  readonly queueName: string;
  readonly keys: KeyLayout;
  /** The queue's own keys, built once (the layout's builders are functions of the ids alone). */
  readonly queueKey: string;
  readonly processingKey: string;
  readonly claimsKey: string;
  readonly expiriesKey: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Static mode's retention as script arguments: seconds for succeeded, failed, cancelled ('' = for good). */
  readonly staticRetention: readonly string[];
}

/** The script each operation runs, by manifest id. */
export const SCRIPT = {
  enqueue: 'enqueue_dual.v3',
  enqueueMany: 'enqueue_many_dual.v3',
  updateStatus: 'update_status_dual.v3',
  read: 'read_with_fallback.v4',
  listPage: 'list_index_page.v3',
  claim: 'claim_job.v3',
  recoverStalled: 'recover_stalled.v3',
  extendClaim: 'extend_claim.v2',
  requeue: 'requeue_job.v2',
  deleteJob: 'delete_job.v2',
  sweep: 'sweep_expired.v2',
} as const;

export function rethrowTranslated(error: unknown): never {
  throw translateRedisError(error);
}

/**
 * job:<jobId> holds another workspace's job, so this one can have no legacy twin: the script wrote
 * its new record only. Counted as a divergence, since verify reports it as missing_legacy.
 */
export function countForeignLegacy(ctx: QueueContext, legacyForeign: unknown, operation: Operation): void {
  if (legacyForeign !== '1') return;
  ctx.metrics.divergences.inc({ kind: 'job_id_collision' });
  ctx.logger.warn("redis-dual-write: the legacy key holds another workspace's job with this id; wrote the new layout only", {
    operation,
    stage: ctx.stages.stage,
  });
}

export function countRepair(ctx: QueueContext, repaired: UpdateStatusResult['repaired'], operation: Operation): void {
  if (repaired === 'none') return;
  ctx.metrics.repairs.inc({ target: repaired });
  ctx.logger.warn('redis-dual-write: job existed in one layout only; restored it', {
    operation,
    target: repaired,
    stage: ctx.stages.stage,
  });
}
