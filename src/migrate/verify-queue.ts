import { ID_PATTERN, parseQueueEntry } from '../keys';
import { perSlot, runBatch, runScript, SCRIPT, slotBatches } from './context';
import { readLegacyRecords } from './legacy-record';
import type { VerifyRun } from './verify';

/** What claim_consistency_page says about each entry of a page; see its header. */
type Structure = 'queue' | 'processing' | 'claims';

/**
 * The queue's own structures: the waiting list, the processing set and the claims hash against each
 * other, and their entries against the jobs. Workers claim and finish jobs while this runs, so every
 * fact comes from one atomic read: a page read by one script together with what the other
 * structures say about its entries, and an orphan only once a second script finds it still there
 * and still without a job.
 */
export async function checkConsumerStructures(shared: VerifyRun): Promise<void> {
  const { context, tally, run } = shared;
  const { keys, queueName } = context;
  const queueKey = keys.queue(queueName);
  const processingKey = keys.processing(queueName);
  const claimsKey = keys.claims(queueName);

  await eachPage(shared, 'queue', async (entries, start) => {
    entries.forEach(([entry, alsoClaimed], i) => {
      if (alsoClaimed) tally.add('queued_and_claimed', { key: queueKey, detail: `entry ${JSON.stringify(entry)} at ${start + i} is also claimed` });
    });
    await findOrphans(shared, queueKey, 'queue_orphan', entries.map(([entry]) => entry), start);
    shared.checked.queueEntries += entries.length;
  });
  if (run.signal?.aborted) return;
  await eachPage(shared, 'processing', async (entries, start) => {
    entries.forEach(([entry, hasClaim]) => {
      if (!hasClaim) tally.add('claim_mismatch', { key: claimsKey, detail: `claimed entry ${JSON.stringify(entry)} has no claim record` });
    });
    await findOrphans(shared, processingKey, 'processing_orphan', entries.map(([entry]) => entry), start);
    shared.checked.processingEntries += entries.length;
  });
  if (run.signal?.aborted) return;
  await eachPage(shared, 'claims', async (entries) => {
    entries.forEach(([entry, claimed]) => {
      if (!claimed) tally.add('claim_mismatch', { key: claimsKey, detail: `claim of ${JSON.stringify(entry)} has no processing entry` });
    });
  });
}

/**
 * Every page of one structure, through claim_consistency_page: [entry, fact] pairs and the rank the
 * page started at. A structure of the wrong type is reported once and not walked.
 */
async function eachPage(
  shared: VerifyRun,
  what: Structure,
  visit: (entries: [string, boolean][], start: number) => Promise<void>,
): Promise<void> {
  const { context, run, tally, pacer } = shared;
  const { keys, queueName } = context;
  const scriptKeys = [keys.queue(queueName), keys.processing(queueName), keys.claims(queueName)];
  let from = '0';
  let seen = 0;
  while (!run.signal?.aborted) {
    const reply = await runScript(context, SCRIPT.claimConsistency, scriptKeys, [what, from, run.batchSize]);
    if (reply[0] === 'WRONGTYPE') {
      tally.add('wrong_type', { key: String(reply[1]), detail: `holds a ${String(reply[3])}` });
      return;
    }
    const [, next, flat] = reply as [string, string, string[]];
    const entries: [string, boolean][] = [];
    for (let i = 0; i < flat.length; i += 2) entries.push([String(flat[i]), flat[i + 1] === '1']);
    if (!(await pacer.take(entries.length))) return;
    await visit(entries, what === 'claims' ? seen : Number(from));
    seen += entries.length;
    // A structure's length changes while workers run: its share walked is unknown until the end.
    if (what !== 'claims') shared.progress('queue', seen, next === '' ? 1 : null);
    if (next === '') return;
    from = next;
  }
}

/** How an entry leads to its job: what confirm_orphans re-checks. */
interface Candidate {
  entry: string;
  rank: number;
  jobId: string;
  form: 'bare' | 'named';
  /** The workspace found for it, '' when none. */
  workspaceId: string;
}

/**
 * Entries that lead a consumer to no job. An entry that names no id the package can place is a fact
 * of the page read itself; one whose record was not found is a candidate, reported only when
 * confirm_orphans finds it, in one snapshot, still there and still without its job.
 */
async function findOrphans(
  shared: VerifyRun,
  containerKey: string,
  kind: 'queue_orphan' | 'processing_orphan',
  entries: readonly string[],
  start: number,
): Promise<void> {
  const { context, tally } = shared;
  const { keys, redis } = context;
  // Until complete, a bare entry's legacy record is itself what a consumer reads.
  const legacyIsJob = context.stage !== 'complete';
  const candidates: (Candidate & { why: string })[] = [];
  const bare: { entry: string; rank: number; jobId: string }[] = [];
  const named: Candidate[] = [];
  entries.forEach((entry, i) => {
    const ids = parseQueueEntry(entry);
    const rank = start + i;
    if (!ids) tally.add(kind, { key: containerKey, detail: `entry ${JSON.stringify(entry)} at ${rank}: not a job id nor <workspaceId>:<jobId>` });
    else if (ids.workspaceId) named.push({ entry, rank, jobId: ids.jobId, form: 'named', workspaceId: ids.workspaceId });
    else bare.push({ entry, rank, jobId: ids.jobId });
  });

  const records = await readLegacyRecords(redis, bare.map((b) => keys.legacyJob(b.jobId)));
  const lookups: Candidate[] = [...named];
  bare.forEach((b, i) => {
    const legacy = records[i];
    const workspaceId = legacy.state === 'ok' ? legacy.workspaceId : legacy.state === 'bad' ? legacy.workspaceId : undefined;
    if (workspaceId && ID_PATTERN.test(workspaceId)) {
      if (!legacyIsJob) lookups.push({ ...b, form: 'bare', workspaceId });
    } else if (legacy.state === 'gone' || (legacy.state === 'bad' && legacy.problem === 'wrong_type')) {
      candidates.push({ ...b, form: 'bare', workspaceId: '', why: 'no legacy record to find it by' });
    }
    // A legacy record whose workspace_id cannot be placed is a bad_legacy_record of its own.
  });
  const exists = await newRecordsExist(shared, lookups);
  lookups.forEach((lookup, i) => {
    if (!exists[i]) candidates.push({ ...lookup, why: 'no new record' });
  });
  if (candidates.length === 0) return;

  const confirmed = await confirm(shared, containerKey, candidates);
  candidates.forEach((candidate, i) => {
    if (confirmed[i]) tally.add(kind, { key: containerKey, detail: `entry ${JSON.stringify(candidate.entry)} at ${candidate.rank}: ${candidate.why}` });
  });
}

async function newRecordsExist(shared: VerifyRun, jobs: readonly Candidate[]): Promise<boolean[]> {
  const { redis, keys } = shared.context;
  return perSlot(redis, jobs.map((job) => keys.newJob(job.workspaceId, job.jobId)), async (newKeys) => {
    const pipeline = redis.pipeline();
    for (const key of newKeys) pipeline.type(key);
    return ((await pipeline.exec()) ?? []).map(([, type]) => type === 'hash');
  });
}

/**
 * confirm_orphans over the candidates, in bounded batches: true for each still an orphan. The script
 * reads from the run's plan whether a legacy record is itself the job, as legacyIsJob does here.
 */
async function confirm(shared: VerifyRun, containerKey: string, candidates: readonly Candidate[]): Promise<boolean[]> {
  const { context, run } = shared;
  const { keys } = context;
  const confirmed: boolean[] = [];
  // Every key of a candidate shares the queue's slot on a Cluster layout; group anyway, as the batches do.
  for (const batch of slotBatches(context, candidates, () => containerKey, run.batchSize)) {
    const scriptKeys: string[] = [];
    const args: (string | number)[] = [];
    for (const candidate of batch) {
      // The new key stands in as the container when no workspace is known: the script never reads it then.
      const newKey = candidate.workspaceId ? keys.newJob(candidate.workspaceId, candidate.jobId) : containerKey;
      scriptKeys.push(containerKey, keys.legacyJob(candidate.jobId), newKey);
      args.push(candidate.entry, candidate.rank, candidate.form, candidate.workspaceId);
    }
    const results = await runBatch<string>(context, SCRIPT.confirmOrphans, scriptKeys, args);
    confirmed.push(...results.map((result) => result === '1'));
  }
  return confirmed;
}
