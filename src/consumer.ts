import { ClaimContentionError } from './errors';
import { decodeJob, type Job } from './job';
import { ID_PATTERN, parseQueueEntry } from './keys';
import { countForeignLegacy, countRepair, rethrowTranslated, SCRIPT, type QueueContext } from './queue-context';
import { errorForReply, translateRedisError } from './scripts/replies';
import { runStaged } from './stage-control/run';
import type { Operation } from './telemetry';
import type { RecoverStalledResult, UpdateStatusResult } from './types';

/** How deep in the queue a claim may reach, and how often it retries after losing a race. */
const CLAIM_DEPTH = 16;
const CLAIM_ATTEMPTS = 50;

/** One claim: the next queued job for a worker, or null when nothing is queued. */
export async function claimNext(ctx: QueueContext, workerId: string, visibilityMs: number): Promise<Job | null> {
  const queueKey = ctx.keys.queue(ctx.queueName);
  // A claim takes the head, so one worker sees FIFO order; after losing the head to another
  // worker it picks among the first few entries, so many workers rarely collide twice. Orphaned
  // and skipped entries leave the queue, so only lost races count against the attempts.
  for (let lostRaces = 0; lostRaces < CLAIM_ATTEMPTS; ) {
    const head = await ctx.redis.lrange(queueKey, 0, CLAIM_DEPTH - 1).catch(rethrowTranslated);
    if (head.length === 0) return null;
    const entry = lostRaces === 0 ? head[0] : head[Math.floor(Math.random() * head.length)];
    const target = await locate(ctx, entry);
    // The reads above do not depend on the stage: the script reads it, in the same step as the claim.
    const { reply, plan } = await runStaged(
      ctx,
      SCRIPT.claim,
      [
        queueKey,
        ctx.keys.processing(ctx.queueName),
        ctx.keys.claims(ctx.queueName),
        target.unsupported ? ctx.keys.unsupported(ctx.queueName) : ctx.keys.orphans(ctx.queueName),
        ...jobKeys(ctx, target),
      ],
      [entry, target.workspaceId, target.jobId, workerId, CLAIM_DEPTH, visibilityMs],
    );
    switch (reply[0]) {
      case 'CLAIMED': {
        ctx.metrics.claims.inc({ outcome: 'claimed' });
        countRepair(ctx, String(reply[1]) as UpdateStatusResult['repaired'], 'claim');
        countForeignLegacy(ctx, reply[3], 'claim');
        const source = reply[3] === '1' ? 'new' : plan.readFrom;
        return decodeJob({ jobId: target.jobId, source, fields: reply[2] as string[] }).job;
      }
      case 'SET_ASIDE':
        countSetAside(ctx, 'claim', target.unsupported ? 'unsupported' : 'orphans', 1, entry);
        break;
      case 'SKIPPED':
        ctx.metrics.claims.inc({ outcome: 'skipped' });
        ctx.logger.info('redis-dual-write: dropped a queue entry of a job that is not queued', {
          status: String(reply[1]),
        });
        break;
      case 'MOVED':
        lostRaces++;
        break;
      default:
        throw errorForReply(reply, { workspaceId: target.workspaceId, jobId: target.jobId, workerId });
    }
  }
  throw new ClaimContentionError(CLAIM_ATTEMPTS);
}

/**
 * Puts jobs whose claim outlived its visibility timeout back on the queue ('queued' again), at most
 * `limit` per call. Entries whose job record is gone are moved aside.
 */
export async function recoverStalledJobs(ctx: QueueContext, limit: number): Promise<RecoverStalledResult> {
  // Candidates by the client's clock; the script decides by the server's.
  const stalled = await ctx.redis.zrangebyscore(
    ctx.keys.processing(ctx.queueName), '-inf', Date.now(), 'LIMIT', 0, limit,
  ).catch(rethrowTranslated);
  if (stalled.length === 0) return { recovered: 0, orphaned: 0, unsupported: 0 };
  const targets = await Promise.all(stalled.map((entry) => locate(ctx, entry)));
  const { reply } = await runStaged(
    ctx,
    SCRIPT.recoverStalled,
    [
      ctx.keys.queue(ctx.queueName),
      ctx.keys.processing(ctx.queueName),
      ctx.keys.claims(ctx.queueName),
      ctx.keys.orphans(ctx.queueName),
      ctx.keys.unsupported(ctx.queueName),
      ...targets.flatMap((target) => jobKeys(ctx, target).slice(0, 2)),
    ],
    stalled.flatMap((entry, i) => [entry, targets[i].workspaceId, targets[i].unsupported ? 'unsupported' : '']),
  );
  if (reply[0] !== 'RECOVERED') throw errorForReply(reply, { workspaceId: '', jobId: '' });
  const [recovered, orphaned, , unsupported] = [Number(reply[1]), Number(reply[2]), Number(reply[3]), Number(reply[4])];
  if (recovered > 0) {
    ctx.metrics.stalledRecoveries.inc(recovered);
    ctx.logger.warn('redis-dual-write: claims outlived their visibility timeout; jobs queued again', {
      recovered,
    });
  }
  countSetAside(ctx, 'recover_stalled', 'orphans', orphaned);
  countSetAside(ctx, 'recover_stalled', 'unsupported', unsupported);
  return { recovered, orphaned, unsupported };
}

/** Where a queue entry leads: a job, or nowhere (workspaceId '') and then why. */
interface Target {
  workspaceId: string;
  jobId: string;
  /** The entry or its legacy record is there but the package cannot place it (not an orphan). */
  unsupported: boolean;
}

/**
 * The ids behind a queue entry. A bare entry names the jobId only; its workspace comes from the
 * legacy record, the one place that says it (in complete too: read as a locator, never as data).
 * workspaceId is '' when no valid one is found: the scripts then set the entry aside, as an orphan
 * when there is no record, as unsupported when there is one the package cannot place.
 */
async function locate(ctx: QueueContext, entry: string): Promise<Target> {
  const ids = parseQueueEntry(entry);
  if (!ids) return { workspaceId: '', jobId: '', unsupported: true };
  if (ids.workspaceId) return { workspaceId: ids.workspaceId, jobId: ids.jobId, unsupported: false };
  // Only "no record" (or a key that is no hash) makes an orphan; a connection error or timeout
  // must fail the call, or a healthy job would be moved aside.
  const named = await ctx.redis.hget(ctx.keys.legacyJob(ids.jobId), 'workspace_id').catch((error: Error) => {
    if (error.message?.startsWith('WRONGTYPE')) return null;
    throw translateRedisError(error);
  });
  if (named === null) return { workspaceId: '', jobId: ids.jobId, unsupported: false };
  if (!ID_PATTERN.test(named)) return { workspaceId: '', jobId: ids.jobId, unsupported: true };
  return { workspaceId: named, jobId: ids.jobId, unsupported: false };
}

/** legacyKey, newKey and indexKey of a located job; the queue key stands in for unknown ids. */
function jobKeys(ctx: QueueContext, target: Target): [string, string, string] {
  if (!target.workspaceId) {
    const unused = ctx.keys.queue(ctx.queueName);
    return [unused, unused, unused];
  }
  return [
    ctx.keys.legacyJob(target.jobId),
    ctx.keys.newJob(target.workspaceId, target.jobId),
    ctx.keys.workspaceIndex(target.workspaceId),
  ];
}

/** Counts and logs entries moved aside: to the orphans list (no record) or the unsupported one. */
function countSetAside(ctx: QueueContext, operation: Operation, list: 'orphans' | 'unsupported', count: number, entry?: string): void {
  if (count === 0) return;
  if (list === 'orphans') {
    ctx.metrics.orphanedEntries.inc({ operation }, count);
    ctx.logger.warn('redis-dual-write: entries without a job record moved to the orphans list', {
      operation,
      count,
      orphansKey: ctx.keys.orphans(ctx.queueName),
    });
    return;
  }
  ctx.metrics.unsupportedEntries.inc({ operation }, count);
  ctx.logger.warn('redis-dual-write: entries the package cannot place (id or workspace_id outside the whitelist) set aside', {
    operation,
    count,
    unsupportedKey: ctx.keys.unsupported(ctx.queueName),
    // The entry may hold any bytes a legacy writer put there: show a bounded, quoted form.
    ...(entry === undefined ? {} : { entry: JSON.stringify(entry.slice(0, 100)) }),
  });
}
