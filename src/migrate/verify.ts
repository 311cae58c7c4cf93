import { ID_PATTERN, parseQueueEntry } from '../keys';
import { planFor, type Stage } from '../stages';
import { serversOf } from '../cluster/nodes';
import { perSlot, readLegacyOwners, runBatch, SCRIPT, slotBatches, type MigrationContext } from './context';
import { checkRunOptions, type CheckedRunOptions, type MigrationProgress, type RunOptions } from './options';
import { Pacer, perSecond } from './pacing';
import { scanPage } from './scan';
import { ServerWalk } from './server-walk';
import { Tally, type Sample } from './tally';

/** Every way the two layouts, the queue and the indexes can disagree. */
export const DIVERGENCE_KINDS = [
  /** a legacy job with no new record */
  'missing_new',
  /** a new job with no legacy record, while the stage still writes the legacy layout */
  'missing_legacy',
  /** both records exist and differ (not checked in complete, where the legacy layout is frozen) */
  'field_mismatch',
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
  /** a legacy record that cannot be migrated: bad id in its key, or no valid workspace_id */
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
  checked: { legacyJobs: number; newJobs: number; indexEntries: number; queueEntries: number; processingEntries: number };
  divergences: Record<DivergenceKind, number>;
  /** Up to sampleLimit per kind: the key, the differing fields, or where an orphan entry sits. */
  samples: Sample[];
  durationMs: number;
  /** Items checked per second. */
  itemsPerSecond: number;
}

/** [legacy, new, indexed, differingFields], as compare_layouts.v1 replies per job. */
type Comparison = [string, string, string, string[]];

interface Job {
  workspaceId: string;
  jobId: string;
}

/**
 * Compares the layouts and what references them, reading only, in bounded batches: the legacy
 * layout against the new one, the new one against the legacy one and the indexes, each index
 * against the jobs, and the queue against the jobs. Sets the divergence gauge when it completes.
 */
export async function verify(context: MigrationContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const run = checkRunOptions(options);
  const started = Date.now();
  const walk = new Walk(context, run);
  const phases = [walk.legacyJobs, walk.newJobs, walk.indexes, walk.queue, walk.processing, walk.claims];
  for (const phase of phases) {
    if (run.signal?.aborted) break;
    await phase.call(walk);
  }
  const completed = !run.signal?.aborted;
  const { tally, checked } = walk;
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
    divergences: tally.counts,
    samples: tally.samples,
    durationMs,
    itemsPerSecond: perSecond(Object.values(checked).reduce((a, b) => a + b, 0), durationMs),
  };
}

class Walk {
  readonly tally: Tally<DivergenceKind>;
  readonly checked = { legacyJobs: 0, newJobs: 0, indexEntries: 0, queueEntries: 0, processingEntries: 0 };
  private readonly pacer: Pacer;
  private readonly writesLegacy: boolean;

  constructor(
    private readonly context: MigrationContext,
    private readonly run: CheckedRunOptions,
  ) {
    this.tally = new Tally(DIVERGENCE_KINDS, run.sampleLimit);
    this.pacer = new Pacer(run.rateLimit, run.signal);
    this.writesLegacy = planFor(context.stage).writeLegacy;
  }

  /** Each legacy job against its new record, fields included while both layouts are live. */
  async legacyJobs(): Promise<void> {
    const { keys, redis } = this.context;
    const compareFields = this.context.stage !== 'complete';
    await this.scan('legacy', keys.legacyPattern, 'hash', async (legacyKeys) => {
      const candidates: { legacyKey: string; jobId: string }[] = [];
      for (const legacyKey of legacyKeys) {
        const jobId = keys.parseLegacy(legacyKey);
        if (jobId) candidates.push({ legacyKey, jobId });
        else this.tally.add('bad_legacy_record', { key: legacyKey, detail: 'the key holds no valid job id' });
      }
      const owners = await readLegacyOwners(redis, candidates.map((c) => c.legacyKey));
      const jobs: Job[] = [];
      candidates.forEach(({ legacyKey, jobId }, i) => {
        const owner = owners[i];
        if (owner.state === 'ok' && ID_PATTERN.test(owner.workspaceId)) jobs.push({ workspaceId: owner.workspaceId, jobId });
        else if (owner.state === 'ok' || owner.state === 'no_workspace_id') {
          this.tally.add('bad_legacy_record', { key: legacyKey, detail: 'no valid workspace_id' });
        }
      });
      await this.compare(jobs, compareFields, (job, [legacy, fresh, , differing]) => {
        // 'foreign' or gone: the record changed since it was read; the next run sees it as it is now.
        if (legacy !== 'ours') return;
        const newKey = keys.newJob(job.workspaceId, job.jobId);
        if (fresh === 'none') this.tally.add('missing_new', { key: keys.legacyJob(job.jobId) });
        else if (fresh !== 'hash') this.tally.add('wrong_type', { key: newKey, detail: `holds a ${fresh}` });
        else if (differing.length > 0) this.tally.add('field_mismatch', { key: newKey, fields: differing });
      });
      this.checked.legacyJobs += legacyKeys.length;
      return legacyKeys.length;
    });
  }

  /** Each new job against its legacy record (while that layout is written) and its index. */
  async newJobs(): Promise<void> {
    const { keys } = this.context;
    await this.scan('new', keys.newPattern, 'hash', async (newKeys) => {
      const jobs = newKeys.map((key) => keys.parseNew(key)).filter((job): job is Job => job !== null);
      await this.compare(jobs, false, (job, [legacy, , indexed]) => {
        const newKey = keys.newJob(job.workspaceId, job.jobId);
        if (this.writesLegacy && legacy !== 'ours') {
          const detail = legacy === 'foreign' ? "the legacy key holds another workspace's job" : undefined;
          this.tally.add('missing_legacy', detail ? { key: newKey, detail } : { key: newKey });
        }
        if (indexed !== '1') this.tally.add('missing_index', { key: newKey });
      });
      this.checked.newJobs += jobs.length;
      return newKeys.length;
    });
  }

  /** Each workspace index entry against the jobs, in pages by rank. */
  async indexes(): Promise<void> {
    const { keys, redis } = this.context;
    await this.scan('index', keys.indexPattern, 'zset', async (indexKeys) => {
      let entries = 0;
      for (const indexKey of indexKeys) {
        const workspaceId = keys.parseIndex(indexKey);
        if (!workspaceId) continue;
        // Entries added while paging shift ranks, so one may be seen twice: count each orphan once.
        const orphans = new Set<string>();
        for (let start = 0; !this.run.signal?.aborted; start += this.run.batchSize) {
          const members = (await redis.zrange(indexKey, start, start + this.run.batchSize - 1)).map(String);
          if (!(await this.pacer.take(members.length))) break;
          const jobs: Job[] = [];
          for (const jobId of members) {
            if (ID_PATTERN.test(jobId)) jobs.push({ workspaceId, jobId });
            else if (!orphans.has(jobId)) {
              orphans.add(jobId);
              this.tally.add('index_orphan', { key: indexKey, detail: `member ${JSON.stringify(jobId)} is not a job id` });
            }
          }
          await this.compare(jobs, false, (job, [legacy, fresh]) => {
            if (fresh !== 'hash' && legacy !== 'ours' && !orphans.has(job.jobId)) {
              orphans.add(job.jobId);
              this.tally.add('index_orphan', { key: indexKey, detail: `member ${job.jobId}` });
            }
          });
          entries += members.length;
          this.checked.indexEntries += members.length;
          if (members.length < this.run.batchSize) break;
        }
      }
      return entries;
    });
  }

  /** Each queue entry against its job. */
  async queue(): Promise<void> {
    const { keys, queueName } = this.context;
    await this.entries(keys.queue(queueName), 'list', 'queue_orphan', 'queueEntries');
  }

  /** Each claimed entry against its job, its claim record, and the queue: never in both. */
  async processing(): Promise<void> {
    const { keys, queueName, redis } = this.context;
    const claimsKey = keys.claims(queueName);
    const queueKey = keys.queue(queueName);
    await this.entries(keys.processing(queueName), 'zset', 'processing_orphan', 'processingEntries', async (entries) => {
      const pipeline = redis.pipeline();
      for (const entry of entries) pipeline.hexists(claimsKey, entry).lpos(queueKey, entry);
      const replies = (await pipeline.exec()) ?? [];
      entries.forEach((entry, i) => {
        const [[, claimed], [queueError, position]] = [replies[2 * i], replies[2 * i + 1]];
        if (claimed !== 1) this.tally.add('claim_mismatch', { key: claimsKey, detail: `claimed entry ${JSON.stringify(entry)} has no claim record` });
        // A wrong-typed queue is reported by the queue phase.
        if (!queueError && position !== null) {
          this.tally.add('queued_and_claimed', { key: queueKey, detail: `entry ${JSON.stringify(entry)} at ${position} is also claimed` });
        }
      });
    });
  }

  /** Each claim record against the processing set, in HSCAN pages. */
  async claims(): Promise<void> {
    const { keys, queueName, redis } = this.context;
    const claimsKey = keys.claims(queueName);
    const processingKey = keys.processing(queueName);
    const type = String(await redis.type(claimsKey));
    if (type === 'none') return;
    if (type !== 'hash') {
      this.tally.add('wrong_type', { key: claimsKey, detail: `holds a ${type}` });
      return;
    }
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(claimsKey, cursor, 'COUNT', this.run.batchSize);
      const entries = flat.filter((_, i) => i % 2 === 0).map(String);
      if (!(await this.pacer.take(entries.length))) break;
      const pipeline = redis.pipeline();
      for (const entry of entries) pipeline.zscore(processingKey, entry);
      const scores = (await pipeline.exec()) ?? [];
      entries.forEach((entry, i) => {
        if (scores[i][1] === null) this.tally.add('claim_mismatch', { key: claimsKey, detail: `claim of ${JSON.stringify(entry)} has no processing entry` });
      });
      cursor = String(next);
    } while (cursor !== '0' && !this.run.signal?.aborted);
  }

  /**
   * Each entry of a queue or processing set against its job. An entry is the bare jobId while the
   * legacy layout is written (found through the legacy record) or "<workspaceId>:<jobId>" from
   * complete on (found directly). `alsoCheck` sees each page of entries.
   */
  private async entries(
    key: string,
    expectedType: 'list' | 'zset',
    orphanKind: 'queue_orphan' | 'processing_orphan',
    counter: 'queueEntries' | 'processingEntries',
    alsoCheck?: (entries: string[]) => Promise<void>,
  ): Promise<void> {
    const { keys, redis } = this.context;
    const type = String(await redis.type(key));
    if (type === 'none') return;
    if (type !== expectedType) {
      this.tally.add('wrong_type', { key, detail: `holds a ${type}` });
      return;
    }
    const length = expectedType === 'list' ? await redis.llen(key) : await redis.zcard(key);
    const readsLegacy = this.context.stage !== 'complete';
    for (let start = 0; !this.run.signal?.aborted; start += this.run.batchSize) {
      const end = start + this.run.batchSize - 1;
      const entries = (expectedType === 'list' ? await redis.lrange(key, start, end) : await redis.zrange(key, start, end)).map(String);
      if (!(await this.pacer.take(entries.length))) break;
      const parsed = entries.map(parseQueueEntry);
      const bare = parsed.filter((ids) => ids && !ids.workspaceId).map((ids) => ids!.jobId);
      const owners = await readLegacyOwners(redis, bare.map((jobId) => keys.legacyJob(jobId)));
      const ownerOf = new Map(bare.map((jobId, i) => [jobId, owners[i]]));

      // The job each entry leads a consumer to, or why it leads nowhere.
      const targets: (Job | string)[] = parsed.map((ids) => {
        if (!ids) return 'not a job id nor <workspaceId>:<jobId>';
        if (ids.workspaceId) return { workspaceId: ids.workspaceId, jobId: ids.jobId };
        // A bare entry leads to the job only through its legacy record.
        const owner = ownerOf.get(ids.jobId);
        if (owner?.state !== 'ok' || !ID_PATTERN.test(owner.workspaceId)) return 'no legacy record to find it by';
        // Until complete, the legacy record itself is what a consumer reads.
        return readsLegacy ? 'found' : { workspaceId: owner.workspaceId, jobId: ids.jobId };
      });
      const lookups = targets.filter((t): t is Job => typeof t !== 'string');
      const exists = await this.newRecordsExist(lookups);
      let lookup = 0;
      targets.forEach((target, i) => {
        const problem = typeof target === 'string' ? target : exists[lookup++] ? 'found' : 'no new record';
        if (problem !== 'found') {
          this.tally.add(orphanKind, { key, detail: `entry ${JSON.stringify(entries[i])} at ${start + i}: ${problem}` });
        }
      });
      await alsoCheck?.(entries);
      this.checked[counter] += entries.length;
      this.run.onProgress(this.progress('queue', this.checked[counter], length ? Math.min(1, (start + entries.length) / length) : 1));
      if (entries.length < this.run.batchSize) break;
    }
  }

  private async newRecordsExist(jobs: readonly Job[]): Promise<boolean[]> {
    const { redis, keys } = this.context;
    return perSlot(redis, jobs.map((job) => keys.newJob(job.workspaceId, job.jobId)), async (newKeys) => {
      const pipeline = redis.pipeline();
      for (const key of newKeys) pipeline.type(key);
      return ((await pipeline.exec()) ?? []).map(([, type]) => type === 'hash');
    });
  }

  /** Runs compare_layouts.v1 over jobs in batches and hands each job's result to `check`. */
  private async compare(
    jobs: readonly Job[],
    compareFields: boolean,
    check: (job: Job, comparison: Comparison) => void,
  ): Promise<void> {
    const { keys } = this.context;
    for (const batch of slotBatches(this.context, jobs, (job) => keys.legacyJob(job.jobId), this.run.batchSize)) {
      const scriptKeys: string[] = [];
      const args: string[] = [compareFields ? '1' : '0'];
      for (const job of batch) {
        scriptKeys.push(keys.legacyJob(job.jobId), keys.newJob(job.workspaceId, job.jobId), keys.workspaceIndex(job.workspaceId));
        args.push(job.workspaceId, job.jobId);
      }
      const results = await runBatch<Comparison>(this.context, SCRIPT.compare, scriptKeys, args);
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
    // Every master of a Cluster in turn: each holds only its own slots' keys.
    const walk = new ServerWalk((await serversOf(this.context.redis)).map((server) => ({ id: server.name, redis: server.redis })));
    let done = 0;
    do {
      const page = await scanPage(walk.server.redis, walk.cursor, pattern, type, this.run.batchSize);
      // Index pages are paced entry by entry, inside visit.
      if (phase !== 'index' && !(await this.pacer.take(page.keys.length))) break;
      const examined = await visit(page.keys);
      done += examined;
      walk.advance(page.cursor);
      this.run.onProgress(this.progress(phase, done, walk.fraction()));
    } while (!walk.over && !this.run.signal?.aborted);
  }

  private progress(phase: MigrationProgress['phase'], done: number, fraction: number): MigrationProgress {
    this.context.metrics.progress.set({ operation: 'verify' }, fraction);
    return { operation: 'verify', phase, done, fraction };
  }
}
