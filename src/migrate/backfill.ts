import { ValidationError, WrongStageError } from '../errors';
import { STAGES, type Stage } from '../stages';
import { clearCheckpoint, readCheckpoint, serverRunId, writeCheckpoint } from './checkpoint';
import { serversOf } from '../cluster/nodes';
import { runBatch, SCRIPT, slotBatches, type MigrationContext } from './context';
import { BAD_JOB_ID_DETAIL, LEGACY_RECORD_PROBLEMS, readLegacyRecords } from './legacy-record';
import { checkRunOptions, type RunOptions } from './options';
import { Pacer, perSecond } from './pacing';
import { scanPage } from './scan';
import { ServerWalk } from './server-walk';
import { Tally, type Sample } from './tally';

export type BackfillMode = 'copy' | 'resync';

/** What happened to each legacy job a backfill examined. */
export const BACKFILL_RESULTS = ['copied', 'resynced', 'same', 'conflict', 'skipped', 'gone'] as const;
export type BackfillResult = (typeof BACKFILL_RESULTS)[number];

/**
 * Why a legacy job was skipped: each needs a person, none is resolved silently. The bad records are
 * those verify reports as bad_legacy_record (one definition, legacy-record.ts); workspace_changed
 * is a record whose workspace_id changed while the batch was prepared.
 */
export const SKIP_REASONS = [...LEGACY_RECORD_PROBLEMS, 'workspace_changed'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface BackfillOptions extends RunOptions {
  /**
   * 'copy' (default) creates missing new records and never overwrites one. 'resync', after a
   * rollback, also brings records that differ level: the one updated later wins (a legacy record
   * updated in off replaces its new twin; a new record updated in complete replaces its legacy twin
   * where the stage writes the legacy layout).
   */
  mode?: BackfillMode;
  /** Ignore a checkpoint an interrupted run left, and walk from the start. */
  restart?: boolean;
}

export interface BackfillReport {
  operation: 'backfill';
  mode: BackfillMode;
  stage: Stage;
  /** false when the signal stopped the run: run it again to continue from the checkpoint. */
  completed: boolean;
  /** true when this run continued a checkpoint an earlier run left. */
  resumed: boolean;
  checkpointKey: string;
  /** Legacy keys examined, the resumed run's share included. */
  examined: number;
  /** Keys under the legacy pattern that the exclude option left out (this run's share). */
  excluded: number;
  results: Record<BackfillResult, number>;
  skipped: Record<SkipReason, number>;
  /** Jobs already in the new layout but missing from their workspace index, now indexed. */
  indexed: number;
  /** Up to sampleLimit per kind: conflicts and resyncs with the differing fields, skips with the reason. */
  samples: Sample[];
  durationMs: number;
  /** Legacy keys examined per second by this run. */
  jobsPerSecond: number;
}

// In off, updates reach the legacy layout only: a copy made then goes stale at the next update.
const ALLOWED_STAGES: readonly Stage[] = STAGES.filter((stage) => stage !== 'off');

type ScriptResult = [string, string | string[]];

/**
 * Copies every legacy job missing from the new layout, SCAN page by SCAN page, each batch in one
 * script call that re-checks the job before writing. The cursor is checkpointed after each page.
 */
export async function backfill(context: MigrationContext, options: BackfillOptions = {}): Promise<BackfillReport> {
  const run = checkRunOptions(options, ['mode', 'restart']);
  const mode = run.mode ?? 'copy';
  if (mode !== 'copy' && mode !== 'resync') throw new ValidationError('mode', 'one-of', "must be 'copy' or 'resync'");
  if (run.restart !== undefined && typeof run.restart !== 'boolean') {
    throw new ValidationError('restart', 'type', 'must be a boolean');
  }
  if (!ALLOWED_STAGES.includes(context.stage)) throw new WrongStageError('backfill', context.stage, ALLOWED_STAGES);

  const { redis, keys, metrics } = context;
  const started = Date.now();
  const checkpointKey = keys.checkpoint(context.queueName);
  // One walk per server: the client's own, or each master's on a Cluster, with its own cursor. A
  // master whose run_id changed (restarted, or a replica promoted) is walked again from the start.
  const servers = await Promise.all(
    (await serversOf(redis)).map(async (server) => ({ id: await serverRunId(server.redis), redis: server.redis })),
  );
  const runIds = servers.map((server) => server.id);
  const saved = run.restart ? null : await readCheckpoint(redis, checkpointKey);
  // A checkpoint of another epoch is not resumed: the pages it walked were copied under another
  // stage (a stay in off since would have left them stale), and a run recorded for this epoch's
  // guard must have walked the whole layout in this epoch.
  const resumed =
    saved !== null &&
    saved.mode === mode &&
    saved.epoch === context.epoch &&
    ((saved.cursor !== '0' && runIds.includes(saved.serverRunId)) || saved.done.some((id) => runIds.includes(id)));
  if (saved && !resumed && !run.restart) {
    context.logger.warn('redis-dual-write: backfill checkpoint not resumable (other mode, another epoch of the stage record, or a restarted server); starting over', {
      checkpointMode: saved.mode,
      mode,
      checkpointEpoch: saved.epoch,
      epoch: context.epoch,
    });
  }
  const counts = resumed ? saved.counts : {};
  const results = new Tally(BACKFILL_RESULTS, run.sampleLimit, counts);
  const skipped = new Tally(SKIP_REASONS, run.sampleLimit, counts);
  let indexed = counts.indexed ?? 0;
  let examined = counts.examined ?? 0;
  const examinedBefore = examined;
  let excluded = 0;
  const walk = new ServerWalk(servers, resumed ? { serverId: saved.serverRunId, cursor: saved.cursor, done: saved.done } : undefined);
  const startedAt = resumed ? saved.startedAt : started;
  const pacer = new Pacer(run.rateLimit, run.signal);

  // The counter moves page by page, so a dashboard shows the run's pace, not one jump at its end.
  const counted: Record<string, number> = { ...results.counts };
  const countResults = () => {
    for (const result of BACKFILL_RESULTS) {
      const fresh = results.counts[result] - counted[result];
      if (fresh > 0) metrics.backfillJobs.inc({ result }, fresh);
      counted[result] = results.counts[result];
    }
  };
  const skip = (reason: SkipReason, key: string, detail?: string) => {
    results.add('skipped');
    skipped.add(reason, detail ? { key, detail } : { key });
  };

  do {
    const page = await scanPage(walk.server.redis, walk.cursor, keys.legacyPattern, 'hash', run.batchSize, context.isExcluded);
    excluded += page.excluded;
    if (!(await pacer.take(page.keys.length))) break;
    const candidates: { legacyKey: string; jobId: string }[] = [];
    for (const legacyKey of page.keys) {
      const jobId = keys.parseLegacy(legacyKey);
      if (jobId) candidates.push({ legacyKey, jobId });
      else skip('bad_job_id', legacyKey, BAD_JOB_ID_DETAIL);
    }
    const records = await readLegacyRecords(redis, candidates.map((c) => c.legacyKey));
    const jobs: { legacyKey: string; jobId: string; workspaceId: string }[] = [];
    candidates.forEach((candidate, i) => {
      const legacy = records[i];
      if (legacy.state === 'gone') results.add('gone');
      else if (legacy.state === 'bad') skip(legacy.problem, candidate.legacyKey, legacy.detail);
      else jobs.push({ ...candidate, workspaceId: legacy.workspaceId });
    });

    for (const batch of slotBatches(context, jobs, (job) => job.legacyKey, run.batchSize)) {
      const scriptKeys: string[] = [];
      const args: string[] = [mode];
      for (const job of batch) {
        scriptKeys.push(job.legacyKey, keys.newJob(job.workspaceId, job.jobId), keys.workspaceIndex(job.workspaceId));
        args.push(job.workspaceId, job.jobId);
      }
      const outcomes = await runBatch<ScriptResult>(context, SCRIPT.backfill, scriptKeys, args);
      outcomes.forEach(([outcome, detail], i) => {
        const key = batch[i].legacyKey;
        switch (outcome) {
          case 'copied':
            return results.add('copied');
          case 'same':
            if (detail === '1') indexed += 1;
            return results.add('same');
          case 'resynced':
            // No differing field: only the expiry differed, and now the legacy one's holds.
            return results.add('resynced', (detail as string[]).length > 0 ? { key, fields: detail as string[] } : { key, detail: 'expiry' });
          case 'resynced_legacy':
            return results.add('resynced', { key, fields: detail as string[], detail: 'the new record was newer: copied into the legacy layout' });
          case 'conflict':
            return results.add('conflict', { key, fields: detail as string[] });
          case 'gone':
            return results.add('gone');
          case 'changed':
            return skip('workspace_changed', key);
          case 'bad_created_at':
            return skip('bad_created_at', key, 'created_at changed to a value that is not a number of ms');
          case 'wrongtype':
            return skip('wrong_type', String(detail));
          default:
            throw new Error(`backfill_batch returned an unknown outcome ${outcome}`);
        }
      });
    }

    countResults();
    examined += page.keys.length;
    walk.advance(page.cursor);
    const position = walk.position();
    await writeCheckpoint(redis, checkpointKey, {
      cursor: position.cursor,
      mode,
      epoch: context.epoch,
      serverRunId: position.serverId,
      done: [...position.done],
      startedAt,
      counts: { ...results.counts, ...skipped.counts, indexed, examined },
    });
    const fraction = walk.fraction();
    metrics.progress.set({ operation: 'backfill' }, fraction);
    run.onProgress({ operation: 'backfill', phase: 'legacy', done: examined, fraction });
  } while (!walk.over && !run.signal?.aborted);

  const completed = walk.over;
  // The run's checkpoint is done with; a later run starts over and, finding every job, copies nothing.
  if (completed) await clearCheckpoint(redis, checkpointKey);

  const durationMs = Date.now() - started;
  const report: BackfillReport = {
    operation: 'backfill',
    mode,
    stage: context.stage,
    completed,
    resumed,
    checkpointKey,
    examined,
    excluded,
    results: results.counts,
    skipped: skipped.counts,
    indexed,
    samples: [...results.samples, ...skipped.samples],
    durationMs,
    jobsPerSecond: perSecond(examined - examinedBefore, durationMs),
  };
  context.logger.info(`redis-dual-write: backfill ${completed ? 'finished' : 'stopped; run again to resume'}`, {
    mode,
    examined,
    ...results.nonZero(),
  });
  return report;
}

/** What the stage record keeps of a backfill: enough for the guards and for `status`. */
export function backfillSummary(report: BackfillReport): Record<string, unknown> {
  return {
    mode: report.mode,
    completed: report.completed,
    examined: report.examined,
    results: report.results,
    clean: report.results.conflict + report.results.skipped === 0,
  };
}
