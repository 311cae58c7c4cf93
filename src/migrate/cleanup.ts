import { ManagedLayoutError, PermissionError, ValidationError, VerifyNotCleanError, WrongStageError } from '../errors';
import { parseQueueEntry } from '../keys';
import type { Stage } from '../stages';
import { serversOf } from '../cluster/nodes';
import { errorForReply, translateRedisError } from '../scripts/replies';
import { readStageRecord } from '../stage-control/record';
import { runBatch, runScript, SCRIPT, slotBatches, type MigrationContext } from './context';
import { BAD_JOB_ID_DETAIL, readLegacyRecords } from './legacy-record';
import { checkRunOptions, type RunOptions } from './options';
import { Pacer, perSecond } from './pacing';
import { scanPage } from './scan';
import { ServerWalk } from './server-walk';
import { Tally, type Sample } from './tally';
import { verify, type VerifyReport } from './verify';

/** What happened to each legacy key a cleanup examined. */
export const CLEANUP_RESULTS = [
  /** deleted (or, in a dry run, would be) */
  'deleted',
  /** kept: a bare queue entry still names it, and a consumer finds the job through it */
  'kept_queued',
  /** kept: no new record exists */
  'kept_no_new',
  /** kept: not a job this package can place (a bad record, as backfill and verify define it) */
  'kept_bad_record',
  /** kept: it changed while the batch was prepared; the next run looks again */
  'kept_changed',
  /** gone before it was reached */
  'gone',
] as const;
export type CleanupResult = (typeof CLEANUP_RESULTS)[number];

export interface CleanupOptions extends RunOptions {
  /** false (default): a dry run that counts what it would delete and writes nothing. */
  yes?: boolean;
}

export interface CleanupReport {
  operation: 'cleanup';
  stage: Stage;
  /** true unless `yes` was given: nothing was deleted, `results.deleted` counts what would be. */
  dryRun: boolean;
  /** false when the signal stopped the run (in its verify or while deleting). */
  completed: boolean;
  /** The verify this run made first; cleanup goes on only when it is clean. */
  verify: VerifyReport;
  /** Legacy keys examined after the verify. */
  examined: number;
  /** Keys under the legacy pattern that the exclude option left out. */
  excluded: number;
  results: Record<CleanupResult, number>;
  /** Up to sampleLimit per kind of kept key. */
  samples: Sample[];
  durationMs: number;
  jobsPerSecond: number;
}

/**
 * Deletes legacy job records once the migration is complete: refused outside stage complete, and
 * unless a verify made by this very run is clean. A dry run by default.
 */
export async function cleanup(context: MigrationContext, options: CleanupOptions = {}): Promise<CleanupReport> {
  const run = checkRunOptions(options, ['yes']);
  if (run.yes !== undefined && typeof run.yes !== 'boolean') throw new ValidationError('yes', 'type', 'must be a boolean');
  const dryRun = run.yes !== true;
  // Before complete the legacy layout is still read or written: deleting it would lose jobs.
  if (context.stage !== 'complete') throw new WrongStageError('cleanup', context.stage, ['complete']);
  if (!dryRun && context.stages.mode === 'static') await refuseBesideStageRecord(context);

  const started = Date.now();
  const { yes: _yes, ...verifyOptions } = run;
  const verified = await verify(context, verifyOptions);
  const tally = new Tally(CLEANUP_RESULTS, run.sampleLimit);
  const report = (completed: boolean, examined: number, excluded: number): CleanupReport => {
    const durationMs = Date.now() - started;
    return {
      operation: 'cleanup',
      stage: context.stage,
      dryRun,
      completed,
      verify: verified,
      examined,
      excluded,
      results: tally.counts,
      samples: tally.samples,
      durationMs,
      jobsPerSecond: perSecond(examined, durationMs),
    };
  };
  if (!verified.completed) return report(false, 0, 0);
  if (!verified.clean) {
    const found = Object.fromEntries(Object.entries(verified.divergences).filter(([, n]) => n > 0));
    throw new VerifyNotCleanError(found, verified.samples);
  }

  const { redis, keys, metrics } = context;
  const queued = await bareQueueEntries(context, run.batchSize);
  const pacer = new Pacer(run.rateLimit, run.signal);
  // Every master of a Cluster in turn: each holds only its own slots' keys.
  const walk = new ServerWalk((await serversOf(redis)).map((server) => ({ id: server.name, redis: server.redis })));
  let examined = 0;
  let excluded = 0;
  do {
    const page = await scanPage(walk.server.redis, walk.cursor, keys.legacyPattern, 'hash', run.batchSize, context.isExcluded);
    excluded += page.excluded;
    if (!(await pacer.take(page.keys.length))) break;
    const candidates: { legacyKey: string; jobId: string }[] = [];
    for (const legacyKey of page.keys) {
      const jobId = keys.parseLegacy(legacyKey);
      if (!jobId) tally.add('kept_bad_record', { key: legacyKey, detail: BAD_JOB_ID_DETAIL });
      else if (queued.has(jobId)) tally.add('kept_queued', { key: legacyKey });
      else candidates.push({ legacyKey, jobId });
    }
    const records = await readLegacyRecords(redis, candidates.map((c) => c.legacyKey));
    const jobs: { legacyKey: string; jobId: string; workspaceId: string }[] = [];
    candidates.forEach((candidate, i) => {
      const legacy = records[i];
      if (legacy.state === 'gone') tally.add('gone');
      else if (legacy.state === 'ok') jobs.push({ ...candidate, workspaceId: legacy.workspaceId });
      else tally.add('kept_bad_record', { key: candidate.legacyKey, detail: legacy.detail });
    });

    for (const batch of slotBatches(context, jobs, (job) => job.legacyKey, run.batchSize)) {
      const outcomes = dryRun ? await wouldDelete(context, batch) : await deleteBatch(context, batch);
      outcomes.forEach((outcome, i) => {
        const key = batch[i].legacyKey;
        if (outcome === 'deleted' || outcome === 'gone') tally.add(outcome);
        else if (outcome === 'no_new') tally.add('kept_no_new', { key });
        else tally.add('kept_changed', { key });
      });
    }
    examined += page.keys.length;
    walk.advance(page.cursor);
    const fraction = walk.fraction();
    metrics.progress.set({ operation: 'cleanup' }, fraction);
    run.onProgress({ operation: 'cleanup', phase: 'legacy', done: examined, fraction });
  } while (!walk.over && !run.signal?.aborted);

  const deleted = tally.counts.deleted;
  if (deleted > 0) metrics.cleanupJobs.inc({ result: dryRun ? 'would_delete' : 'deleted' }, deleted);
  const kept = examined - deleted - tally.counts.gone;
  if (kept > 0) metrics.cleanupJobs.inc({ result: 'kept' }, kept);
  context.logger.info(`redis-dual-write: cleanup ${dryRun ? 'dry run ' : ''}${walk.over ? 'finished' : 'stopped'}`, {
    ...tally.nonZero(),
  });
  return report(walk.over, examined, excluded);
}

type Job = { legacyKey: string; jobId: string; workspaceId: string };

async function deleteBatch(context: MigrationContext, batch: readonly Job[]): Promise<string[]> {
  const scriptKeys = batch.flatMap((job) => [job.legacyKey, context.keys.newJob(job.workspaceId, job.jobId)]);
  const reply = await runScript(context, SCRIPT.cleanup, scriptKeys, batch.map((job) => job.workspaceId));
  // The script checks the plan itself: only one that neither reads nor writes the legacy layout deletes.
  if (reply[0] === 'WRONG_STAGE') throw new WrongStageError('cleanup', context.stage, ['complete']);
  if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId: '', jobId: '' });
  return reply[1] as string[];
}

/** The dry run asks the read-only compare script what the delete script would find. */
async function wouldDelete(context: MigrationContext, batch: readonly Job[]): Promise<string[]> {
  const { keys } = context;
  const scriptKeys: string[] = [keys.expiries(context.queueName)];
  const args: string[] = ['0'];
  for (const job of batch) {
    scriptKeys.push(job.legacyKey, keys.newJob(job.workspaceId, job.jobId), keys.workspaceIndex(job.workspaceId));
    args.push(job.workspaceId, job.jobId);
  }
  const results = await runBatch<[string, string]>(context, SCRIPT.compare, scriptKeys, args);
  return results.map(([legacy, fresh]) => {
    if (legacy === 'none' || (legacy !== 'ours' && legacy !== 'foreign')) return 'gone';
    if (legacy === 'foreign') return 'changed';
    return fresh === 'hash' ? 'deleted' : 'no_new';
  });
}

/**
 * Job ids the queue (waiting or claimed) still names in the bare form. Only the legacy record leads
 * a consumer from such an entry to the job, so those records stay until the entries are consumed.
 */
async function bareQueueEntries(context: MigrationContext, pageSize: number): Promise<Set<string>> {
  const { redis, keys, queueName } = context;
  const bare = new Set<string>();
  const collect = (entries: string[]) => {
    for (const entry of entries) {
      const ids = parseQueueEntry(String(entry));
      if (ids && !ids.workspaceId) bare.add(ids.jobId);
    }
  };
  const queueKey = keys.queue(queueName);
  if (String(await redis.type(queueKey)) === 'list') {
    for (let start = 0; ; start += pageSize) {
      const entries = await redis.lrange(queueKey, start, start + pageSize - 1);
      collect(entries);
      if (entries.length < pageSize) break;
    }
  }
  const processingKey = keys.processing(queueName);
  if (String(await redis.type(processingKey)) === 'zset') {
    for (let start = 0; ; start += pageSize) {
      const entries = await redis.zrange(processingKey, start, start + pageSize - 1);
      collect(entries);
      if (entries.length < pageSize) break;
    }
  }
  return bare;
}

/**
 * A static cleanup that deletes writes nothing into the stage record, so on a managed layout the
 * record's count of deleted legacy records, which keeps rollbacks out of the stages that read the
 * legacy layout, would stay at zero: refused while a record exists. A user the ACL keeps from the
 * record cannot tell; it is warned, and goes on as before stage records existed.
 */
async function refuseBesideStageRecord(context: MigrationContext): Promise<void> {
  let record;
  try {
    record = await readStageRecord(context.redis, context.stageKey);
  } catch (error) {
    if (!(translateRedisError(error) instanceof PermissionError)) throw error;
    context.logger.warn('redis-dual-write: cleanup in static mode could not read the stage record; if the layout is managed, run cleanup in managed mode', {
      key: context.stageKey,
    });
    return;
  }
  if (record) throw new ManagedLayoutError('cleanup', context.stageKey, record.stage);
}

/** What the stage record keeps of a cleanup: enough for the guards and for `status`. */
export function cleanupSummary(report: CleanupReport): Record<string, unknown> {
  return { completed: report.completed, dryRun: report.dryRun, examined: report.examined, results: report.results };
}
