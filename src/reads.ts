import { ValidationError } from './errors';
import { decodeJob, type Job } from './job';
import { SCRIPT, type QueueContext } from './queue-context';
import { errorForReply } from './scripts/replies';
import { runStaged, withOneStage } from './stage-control/run';
import type { Operation } from './telemetry';
import type { ListJobsResult } from './types';
import type { JobStatus } from './validation';

/** listJobs examines at most this many index pages per call, so a status filter stays bounded. */
const LIST_PAGES_PER_CALL = 5;

export interface IndexEntry {
  jobId: string;
  score: string;
  /** Retention's time for the job has come: its record is gone, or about to be, until maintain() sweeps the entry. */
  expired?: boolean;
}

/**
 * Newest first, from the workspace index. Reads at most LIST_PAGES_PER_CALL index pages of `limit`
 * entries, so with a status filter a page can hold fewer than `limit` jobs while nextCursor is set.
 * One stage for the whole page: every script after the first is pinned to its epoch, and the page
 * starts over when the stage changes under it.
 */
export async function listJobPage(
  ctx: QueueContext,
  workspaceId: string,
  status: JobStatus | undefined,
  limit: number,
  from: IndexEntry | undefined,
): Promise<ListJobsResult> {
  const onRestart = () => ctx.metrics.stageRestarts.inc({ operation: 'list_jobs' });
  return withOneStage('listJobs', onRestart, () => listUnderOneStage(ctx, workspaceId, status, limit, from));
}

async function listUnderOneStage(
  ctx: QueueContext,
  workspaceId: string,
  status: JobStatus | undefined,
  limit: number,
  from: IndexEntry | undefined,
): Promise<ListJobsResult> {
  let cursor = from;
  let epoch: string | undefined;
  const jobs: Job[] = [];

  for (let page = 0; page < LIST_PAGES_PER_CALL; page++) {
    const index = await indexPage(ctx, workspaceId, cursor, limit + 1, epoch);
    epoch ??= index.epoch;
    const entries = index.entries;
    const more = entries.length > limit;
    const examined = entries.slice(0, limit);
    const records = await readJobs(ctx, 'list_jobs', workspaceId, examined.map((e) => e.jobId), epoch);
    for (let i = 0; i < examined.length; i++) {
      cursor = examined[i];
      const job = records[i];
      // Retention removed it: no job, and no divergence either (maintain() sweeps the entry).
      if (!job && examined[i].expired) continue;
      if (!job) {
        ctx.metrics.divergences.inc({ kind: 'index_orphan' });
        ctx.logger.warn('redis-dual-write: index entry without a readable job record', { stage: ctx.stages.stage });
        continue;
      }
      if (status && job.status !== status) continue;
      jobs.push(job);
      if (jobs.length === limit) {
        return { jobs, nextCursor: more || i < examined.length - 1 ? encodeCursor(cursor) : null };
      }
    }
    if (!more) return { jobs, nextCursor: null };
  }
  return { jobs, nextCursor: cursor ? encodeCursor(cursor) : null };
}

async function indexPage(
  ctx: QueueContext,
  workspaceId: string,
  cursor: IndexEntry | undefined,
  count: number,
  epoch: string | undefined,
): Promise<{ entries: IndexEntry[]; epoch: string }> {
  const staged = await runStaged(
    ctx,
    SCRIPT.listPage,
    [ctx.keys.workspaceIndex(workspaceId), ctx.keys.expiries(ctx.queueName)],
    [count, cursor?.score ?? '', cursor?.jobId ?? '', workspaceId],
    epoch,
  );
  const { reply } = staged;
  if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId: '', jobId: '' });
  const flat = reply[1] as string[];
  const entries: IndexEntry[] = [];
  for (let i = 0; i < flat.length; i += 3) entries.push({ jobId: flat[i], score: flat[i + 1], expired: flat[i + 2] === '1' });
  return { entries, epoch: staged.epoch };
}

/**
 * Reads jobs through the stage's plan (pinned to `epoch` when given), counting and logging every
 * fallback and divergence.
 */
export async function readJobs(
  ctx: QueueContext,
  operation: Operation,
  workspaceId: string,
  jobIds: readonly string[],
  epoch?: string,
): Promise<(Job | null)[]> {
  if (jobIds.length === 0) return [];
  const keys: string[] = [];
  for (const jobId of jobIds) keys.push(ctx.keys.legacyJob(jobId), ctx.keys.newJob(workspaceId, jobId));
  const { reply, plan, stage } = await runStaged(ctx, SCRIPT.read, keys, [workspaceId], epoch);
  if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId, jobId: '' });

  // One flat list: per job its source, divergence, the differing field names and the fields, each
  // list after its length (see the script's header).
  const flat = reply as (string | number)[];
  let at = 1;
  const take = (): string[] => {
    const count = Number(flat[at]);
    const values = flat.slice(at + 1, at + 1 + count) as string[];
    at += 1 + count;
    return values;
  };
  return jobIds.map((jobId) => {
    const source = String(flat[at]);
    const divergence = String(flat[at + 1]);
    at += 2;
    const differing = take();
    const fields = take();
    if (divergence) {
      ctx.metrics.divergences.inc({ kind: divergence });
      ctx.logger.warn('redis-dual-write: layouts differ', {
        operation,
        kind: divergence,
        differingFields: differing,
        stage,
      });
    }
    if (!source) return null;
    if (source === 'legacy' && plan.readFrom === 'new') {
      ctx.metrics.readFallbacks.inc({ operation });
      ctx.logger.info('redis-dual-write: read fell back to the legacy layout', { operation, stage });
    }
    const { job, corrupt } = decodeJob({ jobId, source: source as Job['source'], fields });
    if (corrupt) {
      ctx.metrics.divergences.inc({ kind: 'corrupt_record' });
      ctx.logger.warn('redis-dual-write: job payload is not JSON; returned as text', { operation, source });
    }
    return job;
  });
}

const CURSOR = /^(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?):([A-Za-z0-9._-]{1,64})$/;

function encodeCursor(entry: IndexEntry): string {
  return Buffer.from(`${entry.score}:${entry.jobId}`, 'utf8').toString('base64url');
}

export function decodeCursor(value: unknown): IndexEntry {
  const text = typeof value === 'string' ? Buffer.from(value, 'base64url').toString('utf8') : '';
  const match = CURSOR.exec(text);
  if (!match) throw new ValidationError('cursor', 'format', 'must be a nextCursor that listJobs returned');
  return { score: match[1], jobId: match[2] };
}
