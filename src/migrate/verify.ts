import { JOB_ID_PATTERN } from '../keys';
import { planFor, type Stage } from '../stages';
import { serversOf } from '../cluster/nodes';
import { runBatch, SCRIPT, slotBatches, type MigrationContext } from './context';
import { BAD_JOB_ID_DETAIL, readLegacyRecords } from './legacy-record';
import { checkRunOptions, type CheckedRunOptions, type MigrationProgress, type RunOptions } from './options';
import { Pacer, perSecond } from './pacing';
import { scanPage } from './scan';
import { ServerWalk } from './server-walk';
import { Tally, type Sample } from './tally';
import { checkConsumerStructures } from './verify-queue';

/** Every way the two layouts, the queue and the indexes can disagree. */
export const DIVERGENCE_KINDS = [
  /** a legacy job with no new record */
  'missing_new',
  /** a new job with no legacy record, while the stage still writes the legacy layout */
  'missing_legacy',
  /** both records exist and differ (not checked in complete, which reads the new layout only) */
  'field_mismatch',
  /** both records exist and expire at different times, or one never does (not checked in complete) */
  'ttl_mismatch',
  /** a new job its workspace index does not list */
  'missing_index',
  /** an index entry whose job exists in neither layout */
  'index_orphan',
  /** a queue entry whose job cannot be found */
  'queue_orphan',
  /** a claimed (processing) entry whose job cannot be found */
  'processing_orphan',
  /** an entry both waiting in the queue and claimed: two workers could run the job */
  'queued_and_claimed',
  /** a processing entry without its claim record, or a claim record without its processing entry */
  'claim_mismatch',
  /** a legacy record that cannot be migrated: bad id in its key, no valid workspace_id or created_at */
  'bad_legacy_record',
  /** a key of the layout that holds another type than a job hash */
  'wrong_type',
] as const;
export type DivergenceKind = (typeof DIVERGENCE_KINDS)[number];

export type VerifyOptions = RunOptions;

export interface VerifyReport {
  operation: 'verify';
  stage: Stage;
  /** false when the signal stopped the run: the counts then cover only what was walked. */
  completed: boolean;
  /** Completed and no divergence of any kind. */
  clean: boolean;
  checked: VerifyChecked;
  /** Keys under the layout's patterns that the exclude option left out. */
  excluded: number;
  /**
   * Index entries of jobs retention removed, which maintain() has yet to sweep: expected, not a
   * divergence (they go with the next sweep).
   */
  pendingMaintenance: number;
  divergences: Record<DivergenceKind, number>;
  /** Up to sampleLimit per kind: the key, the differing fields, or where an orphan entry sits. */
  samples: Sample[];
  durationMs: number;
  /** Items checked per second. */
  itemsPerSecond: number;
}

export interface VerifyChecked {
  legacyJobs: number;
  newJobs: number;
  indexEntries: number;
  queueEntries: number;
  processingEntries: number;
}

/** What every phase of one verify shares: where it counts, how it paces, how it reports progress. */
export interface VerifyRun {
  context: MigrationContext;
  run: CheckedRunOptions;
  tally: Tally<DivergenceKind>;
  checked: VerifyChecked;
  pacer: Pacer;
  /** fraction: the share of the phase walked, null when unknown. */
  progress(phase: MigrationProgress['phase'], done: number, fraction: number | null): void;
}

/** [legacy, new, indexed, differingFields, legacyExpiresAt, newExpiresAt, expired], as compare_layouts replies per job. */
type Comparison = [string, string, string, string[], number, number, string];

interface Job {
  workspaceId: string;
  jobId: string;
}

/**
 * Compares the layouts and what references them, reading only, in bounded batches: the legacy
 * layout against the new one, the new one against the legacy one and the indexes, each index
 * against the jobs, and the queue's structures against each other and the jobs. Every divergence
 * it reports was seen in one atomic read, so traffic during the run never shows as one. Sets the
 * divergence gauge when it completes.
 */
export async function verify(context: MigrationContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const run = checkRunOptions(options);
  const started = Date.now();
  const shared: VerifyRun = {
    context,
    run,
    tally: new Tally(DIVERGENCE_KINDS, run.sampleLimit),
    checked: { legacyJobs: 0, newJobs: 0, indexEntries: 0, queueEntries: 0, processingEntries: 0 },
    pacer: new Pacer(run.rateLimit, run.signal),
    progress: (phase, done, fraction) => {
      if (fraction !== null) context.metrics.progress.set({ operation: 'verify' }, fraction);
      run.onProgress({ operation: 'verify', phase, done, fraction });
    },
  };
  const layouts = new LayoutWalk(shared);
  const phases = [() => layouts.legacyJobs(), () => layouts.newJobs(), () => layouts.indexes(), () => checkConsumerStructures(shared)];
  for (const phase of phases) {
    if (run.signal?.aborted) break;
    await phase();
  }
  const completed = !run.signal?.aborted;
  const { tally, checked } = shared;
  if (completed) {
    for (const kind of DIVERGENCE_KINDS) context.metrics.verifyDivergences.set({ kind }, tally.counts[kind]);
  }
  const durationMs = Date.now() - started;
  const clean = completed && tally.total() === 0;
  context.logger[clean ? 'info' : 'warn'](`redis-dual-write: verify ${completed ? 'finished' : 'stopped'}`, {
    stage: context.stage,
    ...tally.nonZero(),
  });
  return {
    operation: 'verify',
    stage: context.stage,
    completed,
    clean,
    checked,
    excluded: layouts.excluded,
    pendingMaintenance: layouts.pendingMaintenance,
    divergences: tally.counts,
    samples: tally.samples,
    durationMs,
    itemsPerSecond: perSecond(Object.values(checked).reduce((a, b) => a + b, 0), durationMs),
  };
}

/** The job layouts and the workspace indexes, walked with SCAN and compared job by job. */
class LayoutWalk {
  excluded = 0;
  pendingMaintenance = 0;
  private readonly writesLegacy: boolean;
  /** While both layouts are live their records must agree field by field and in expiry. */
  private readonly compareRecords: boolean;

  constructor(private readonly shared: VerifyRun) {
    this.writesLegacy = planFor(shared.context.stage).writeLegacy;
    this.compareRecords = shared.context.stage !== 'complete';
  }

  /** Each legacy job against its new record, fields and expiry included while both layouts are live. */
  async legacyJobs(): Promise<void> {
    const { context, tally, checked } = this.shared;
    const { keys, redis } = context;
    await this.scan('legacy', keys.legacyPattern, 'hash', async (legacyKeys) => {
      const candidates: { legacyKey: string; jobId: string }[] = [];
      for (const legacyKey of legacyKeys) {
        const jobId = keys.parseLegacy(legacyKey);
        if (jobId) candidates.push({ legacyKey, jobId });
        else tally.add('bad_legacy_record', { key: legacyKey, detail: BAD_JOB_ID_DETAIL });
      }
      const records = await readLegacyRecords(redis, candidates.map((c) => c.legacyKey));
      const jobs: Job[] = [];
      candidates.forEach(({ legacyKey, jobId }, i) => {
        const legacy = records[i];
        if (legacy.state === 'ok') jobs.push({ workspaceId: legacy.workspaceId, jobId });
        else if (legacy.state === 'bad') tally.add('bad_legacy_record', { key: legacyKey, detail: legacy.detail });
      });
      await this.compare(jobs, this.compareRecords, (job, [legacy, fresh, , differing, legacyExpiresAt, newExpiresAt]) => {
        // 'foreign' or gone: the record changed since it was read; the next run sees it as it is now.
        if (legacy !== 'ours') return;
        const newKey = keys.newJob(job.workspaceId, job.jobId);
        if (fresh === 'none') tally.add('missing_new', { key: keys.legacyJob(job.jobId) });
        else if (fresh !== 'hash') tally.add('wrong_type', { key: newKey, detail: `holds a ${fresh}` });
        else if (differing.length > 0) tally.add('field_mismatch', { key: newKey, fields: differing });
        else if (legacyExpiresAt !== newExpiresAt) {
          tally.add('ttl_mismatch', { key: newKey, detail: `expires at ${expiry(newExpiresAt)}, its legacy record at ${expiry(legacyExpiresAt)}` });
        }
      });
      checked.legacyJobs += legacyKeys.length;
      return legacyKeys.length;
    });
  }

  /** Each new job against its legacy record (while that layout is written) and its index. */
  async newJobs(): Promise<void> {
    const { context, tally, checked } = this.shared;
    const { keys } = context;
    await this.scan('new', keys.newPattern, 'hash', async (newKeys) => {
      const jobs = newKeys.map((key) => keys.parseNew(key)).filter((job): job is Job => job !== null);
      await this.compare(jobs, false, (job, [legacy, , indexed]) => {
        const newKey = keys.newJob(job.workspaceId, job.jobId);
        if (this.writesLegacy && legacy !== 'ours') {
          const detail = legacy === 'foreign' ? "the legacy key holds another workspace's job" : undefined;
          tally.add('missing_legacy', detail ? { key: newKey, detail } : { key: newKey });
        }
        if (indexed !== '1') tally.add('missing_index', { key: newKey });
      });
      checked.newJobs += jobs.length;
      return newKeys.length;
    });
  }

  /** Each workspace index entry against the jobs, in pages by rank. */
  async indexes(): Promise<void> {
    const { context, run, tally, checked, pacer } = this.shared;
    const { keys, redis } = context;
    await this.scan('index', keys.indexPattern, 'zset', async (indexKeys) => {
      let entries = 0;
      for (const indexKey of indexKeys) {
        const workspaceId = keys.parseIndex(indexKey);
        if (!workspaceId) continue;
        // Entries added while paging shift ranks, so one may be seen twice: count each orphan once.
        const orphans = new Set<string>();
        for (let start = 0; !run.signal?.aborted; start += run.batchSize) {
          const members = (await redis.zrange(indexKey, start, start + run.batchSize - 1)).map(String);
          if (!(await pacer.take(members.length))) break;
          const jobs: Job[] = [];
          for (const jobId of members) {
            if (JOB_ID_PATTERN.test(jobId)) jobs.push({ workspaceId, jobId });
            else if (!orphans.has(jobId)) {
              orphans.add(jobId);
              tally.add('index_orphan', { key: indexKey, detail: `member ${JSON.stringify(jobId)} is not a job id` });
            }
          }
          // An orphan only when, in one snapshot, the entry is still indexed and no record holds the
          // job, and retention did not remove it (then the sweep will take the entry).
          await this.compare(jobs, false, (job, [legacy, fresh, indexed, , , , expired]) => {
            if (indexed === '1' && fresh !== 'hash' && legacy !== 'ours' && !orphans.has(job.jobId)) {
              orphans.add(job.jobId);
              if (expired === '1') this.pendingMaintenance++;
              else tally.add('index_orphan', { key: indexKey, detail: `member ${job.jobId}` });
            }
          });
          entries += members.length;
          checked.indexEntries += members.length;
          if (members.length < run.batchSize) break;
        }
      }
      return entries;
    });
  }

  /** Runs compare_layouts over jobs in batches and hands each job's result to `check`. */
  private async compare(jobs: readonly Job[], compareRecords: boolean, check: (job: Job, comparison: Comparison) => void): Promise<void> {
    const { context, run } = this.shared;
    const { keys } = context;
    for (const batch of slotBatches(context, jobs, (job) => keys.legacyJob(job.jobId), run.batchSize)) {
      const scriptKeys: string[] = [keys.expiries(context.queueName)];
      const args: string[] = [compareRecords ? '1' : '0'];
      for (const job of batch) {
        scriptKeys.push(keys.legacyJob(job.jobId), keys.newJob(job.workspaceId, job.jobId), keys.workspaceIndex(job.workspaceId));
        args.push(job.workspaceId, job.jobId);
      }
      const results = await runBatch<Comparison>(context, SCRIPT.compare, scriptKeys, args);
      results.forEach((result, i) => check(batch[i], result));
    }
  }

  /** Walks every key of a pattern page by page until done or stopped; `visit` returns items examined. */
  private async scan(
    phase: MigrationProgress['phase'],
    pattern: string,
    type: 'hash' | 'zset',
    visit: (keys: string[]) => Promise<number>,
  ): Promise<void> {
    const { context, run, pacer } = this.shared;
    // Every master of a Cluster in turn: each holds only its own slots' keys.
    const walk = new ServerWalk((await serversOf(context.redis)).map((server) => ({ id: server.name, redis: server.redis })));
    let done = 0;
    do {
      const page = await scanPage(walk.server.redis, walk.cursor, pattern, type, run.batchSize, context.isExcluded);
      this.excluded += page.excluded;
      // Index pages are paced entry by entry, inside visit.
      if (phase !== 'index' && !(await pacer.take(page.keys.length))) break;
      const examined = await visit(page.keys);
      done += examined;
      walk.advance(page.cursor);
      this.shared.progress(phase, done, walk.fraction());
    } while (!walk.over && !run.signal?.aborted);
  }
}

/** An expiry for a report: the time, or that there is none. */
function expiry(expiresAt: number): string {
  return expiresAt < 0 ? 'never' : new Date(expiresAt).toISOString();
}

/** What the stage record keeps of a verify: enough for the guards and for `status`. */
export function verifySummary(report: VerifyReport): Record<string, unknown> {
  return {
    stage: report.stage,
    completed: report.completed,
    clean: report.clean,
    divergences: Object.fromEntries(Object.entries(report.divergences).filter(([, count]) => count > 0)),
    checked: report.checked,
  };
}
