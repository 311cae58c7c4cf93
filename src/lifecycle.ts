import { ClaimConflictError, NotFoundError, StatusConflictError } from './errors';
import { parseQueueEntry } from './keys';
import { countForeignLegacy, countRepair, rethrowTranslated, SCRIPT, type QueueContext } from './queue-context';
import { errorForReply } from './scripts/replies';
import { runStaged } from './stage-control/run';
import type { DeleteJobResult, ExtendClaimResult, MaintainResult, RequeueResult, UpdateStatusResult } from './types';
import type { JobStatus } from './validation';

/**
 * What workers and the store need to run for months, beside claim and updateStatus: a claim that
 * outlives its visibility timeout, a job put back on the queue, a job deleted, and retention's sweep.
 * Each is one script, atomic across the layouts the stage writes. DualWriteQueue validates first.
 */

/** Pushes the claim's deadline to the server's now plus `visibilityMs`; only its holder may. */
export async function extendClaim(ctx: QueueContext, workspaceId: string, jobId: string, workerId: string, visibilityMs: number): Promise<ExtendClaimResult> {
  const { reply } = await runStaged(ctx, SCRIPT.extendClaim, [ctx.keys.processing(ctx.queueName), ctx.keys.claims(ctx.queueName)], [
    workspaceId, jobId, workerId, visibilityMs,
  ]);
  if (reply[0] !== 'EXTENDED') throw errorForReply(reply, { workspaceId, jobId, workerId });
  return { jobId, deadline: Number(reply[1]) };
}

/** A failed or cancelled job, or a running one its worker gives back, queued again. */
export async function requeueJob(ctx: QueueContext, workspaceId: string, jobId: string, workerId: string | undefined, reason: string | undefined): Promise<RequeueResult> {
  const { reply } = await runStaged(
    ctx,
    SCRIPT.requeue,
    jobAndQueueKeys(ctx, workspaceId, jobId),
    [workspaceId, jobId, workerId ?? ''],
  );
  if (reply[0] === 'STATUS_CONFLICT') {
    throw new StatusConflictError(jobId, 'failed, cancelled or running', String(reply[1]), 'only a failed or cancelled job, or a running one its worker gives back, can be requeued');
  }
  if (reply[0] !== 'REQUEUED') throw errorForReply(reply, { workspaceId, jobId, workerId });
  const repaired = String(reply[2]) as UpdateStatusResult['repaired'];
  countRepair(ctx, repaired, 'requeue');
  countForeignLegacy(ctx, reply[4], 'requeue');
  ctx.metrics.requeues.inc({ from: String(reply[1]) });
  ctx.logger.info('redis-dual-write: job requeued', { from: String(reply[1]), ...(reason ? { reason } : {}) });
  return { jobId, previousStatus: String(reply[1]) as JobStatus, repaired };
}

/** Deletes a job whole: both layouts, its index entry, queue side entries, its idempotency key. */
export async function deleteJob(ctx: QueueContext, workspaceId: string, jobId: string, force: boolean): Promise<DeleteJobResult> {
  // The idempotency key is named on the job: read it, then the script checks it is still that one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const idempotencyKey = await idempotencyKeyOf(ctx, workspaceId, jobId);
    const { reply } = await runStaged(
      ctx,
      SCRIPT.deleteJob,
      [
        ...jobAndQueueKeys(ctx, workspaceId, jobId),
        // The index key stands in when the job has no idempotency key: the script never touches it then.
        idempotencyKey ? ctx.keys.idempotency(workspaceId, idempotencyKey) : ctx.keys.workspaceIndex(workspaceId),
      ],
      [workspaceId, jobId, force ? '1' : '0', idempotencyKey ?? ''],
    );
    if (reply[0] === 'CHANGED') continue;
    if (reply[0] === 'CLAIM_CONFLICT') throw new ClaimConflictError(jobId, '', String(reply[1]), 'deleting a job a worker holds needs force');
    if (reply[0] !== 'DELETED') throw errorForReply(reply, { workspaceId, jobId });
    const deleted: DeleteJobResult['deleted'] = [];
    if (reply[1] === '1') deleted.push('legacy');
    if (reply[2] === '1') deleted.push('new');
    ctx.metrics.deletions.inc({ forced: force ? 'yes' : 'no' });
    return { jobId, deleted };
  }
  throw new NotFoundError(workspaceId, jobId);
}

/** The idempotency key a job was made with, from its new record, else its legacy one of this workspace. */
async function idempotencyKeyOf(ctx: QueueContext, workspaceId: string, jobId: string): Promise<string | undefined> {
  const fromNew = await ctx.redis.hget(ctx.keys.newJob(workspaceId, jobId), 'idempotency_key').catch(() => null);
  if (fromNew !== null) return fromNew;
  const [owner, key] = await ctx.redis.hmget(ctx.keys.legacyJob(jobId), 'workspace_id', 'idempotency_key').catch(rethrowTranslated);
  return owner === workspaceId && key !== null ? key : undefined;
}

/**
 * Retention's sweep: finished jobs whose expiry passed (Redis removed their records) leave their
 * index entry and side entries behind; at most `limit` of them go per call. Safe from several
 * processes: each job is swept by one script, once.
 */
export async function maintain(ctx: QueueContext, limit: number): Promise<MaintainResult> {
  const expiriesKey = ctx.keys.expiries(ctx.queueName);
  // Candidates by the client's clock; the script decides by the server's.
  const due = await ctx.redis.zrangebyscore(expiriesKey, '-inf', Date.now(), 'LIMIT', 0, limit).catch(rethrowTranslated);
  const jobs = due.map(parseQueueEntry).filter((ids): ids is { workspaceId: string; jobId: string } => ids?.workspaceId !== undefined);
  if (jobs.length === 0) return { removed: 0, rescheduled: 0, kept: 0 };
  const { reply } = await runStaged(
    ctx,
    SCRIPT.sweep,
    [
      expiriesKey,
      ctx.keys.processing(ctx.queueName),
      ctx.keys.claims(ctx.queueName),
      ...jobs.flatMap(({ workspaceId, jobId }) => [ctx.keys.legacyJob(jobId), ctx.keys.newJob(workspaceId, jobId), ctx.keys.workspaceIndex(workspaceId)]),
    ],
    jobs.flatMap(({ workspaceId, jobId }) => [workspaceId, jobId]),
  );
  if (reply[0] !== 'SWEPT') throw errorForReply(reply, { workspaceId: '', jobId: '' });
  const [removed, rescheduled, kept] = [Number(reply[1]), Number(reply[2]), Number(reply[3])];
  if (removed > 0) ctx.metrics.retentionRemovals.inc(removed);
  return { removed, rescheduled, kept };
}

/** A job's keys (legacy, new, index) and its queue's (queue, processing, claims, expiries): requeue's and delete's KEYS[2..8]. */
function jobAndQueueKeys(ctx: QueueContext, workspaceId: string, jobId: string): string[] {
  const { keys, queueName } = ctx;
  return [
    keys.legacyJob(jobId),
    keys.newJob(workspaceId, jobId),
    keys.workspaceIndex(workspaceId),
    keys.queue(queueName),
    keys.processing(queueName),
    keys.claims(queueName),
    keys.expiries(queueName),
  ];
}
