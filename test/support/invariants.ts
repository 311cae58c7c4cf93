import type Redis from 'ioredis';
import { ID_PATTERN, JOB_ID_PATTERN, JOB_STATUSES } from '../../src';

/**
 * "Nothing lost, duplicated or half-written", checked over the whole database after a fault: reads
 * every key the package writes and reports each broken promise. The fault scenarios assert the
 * report is empty; test/faults/invariants.test.ts proves each kind of violation is caught.
 */

/** Where a job's record must be: as the stages its writes ran in wrote it. */
export type ExpectedLayouts = 'legacy' | 'new' | 'both' | 'any';

export interface InvariantOptions {
  /** Default 'both': the scenarios run in stages that write both layouts. */
  layouts?: ExpectedLayouts | ((job: JobId) => ExpectedLayouts);
  /** Whether both records, where both exist, must hold the same fields. Default true. */
  layoutsAgree?: boolean | ((job: JobId) => boolean);
  /** Keys a scenario made itself (memory filler, decoys): neither read nor reported. */
  ignore?: (key: string) => boolean;
}

export interface JobId {
  workspaceId: string;
  jobId: string;
}

export type ViolationKind =
  | 'missing_layout' // a record absent from a layout the stage writes
  | 'layouts_differ' // both records exist and their fields differ
  | 'record_incomplete' // a record lacking a field, or naming another id or workspace
  | 'not_indexed' // a record missing from its workspace index, or at another score
  | 'index_orphan' // an index entry whose job has no record
  | 'queue_orphan' // a queue entry whose job has no record
  | 'not_queued' // a queued job without its queue entry
  | 'queued_twice' // a job with more than one queue entry: a duplicate
  | 'idempotency_orphan' // an idempotency key pointing at a job that has no record
  | 'idempotency_without_ttl'
  | 'unknown_key'; // a key outside the layout

export interface Violation {
  kind: ViolationKind;
  key: string;
  detail: string;
}

export interface JobView extends JobId {
  legacy?: Record<string, string>;
  new?: Record<string, string>;
  indexScore?: number;
  queueEntries: number;
}

export interface InvariantReport {
  jobs: JobView[];
  violations: Violation[];
}

const FIELDS = ['id', 'workspace_id', 'type', 'payload', 'status', 'created_at', 'updated_at'];
const ID = ID_PATTERN.source.slice(1, -1); // the id patterns without their anchors
const JOB_ID = JOB_ID_PATTERN.source.slice(1, -1);
const LEGACY = new RegExp(`^job:(${JOB_ID})$`);
const NEW = new RegExp(`^ws:(${ID}):job:(${JOB_ID})$`);
const INDEX = new RegExp(`^ws:(${ID}):jobs$`);
const IDEMPOTENCY = new RegExp(`^ws:(${ID}):idem:([A-Za-z0-9._:-]{1,200})$`);
const QUEUE = /^queue:([A-Za-z0-9._-]{1,64})$/;
const PROCESSING = /^queue:([A-Za-z0-9._-]{1,64}):processing$/;
const QUEUE_SIDE_KEYS = /^queue:([A-Za-z0-9._-]{1,64}):(claims|orphans|unsupported|expiries)$/;

export async function checkInvariants(redis: Redis, options: InvariantOptions = {}): Promise<InvariantReport> {
  const layoutsOf = typeof options.layouts === 'function' ? options.layouts : () => (options.layouts ?? 'both') as ExpectedLayouts;
  const agreeOf = typeof options.layoutsAgree === 'function' ? options.layoutsAgree : () => options.layoutsAgree ?? true;
  const violations: Violation[] = [];
  const violate = (kind: ViolationKind, key: string, detail: string) => violations.push({ kind, key, detail });
  const views = new Map<string, JobView>();
  const view = (workspaceId: string, jobId: string): JobView => {
    const id = `${workspaceId}/${jobId}`;
    let found = views.get(id);
    if (!found) views.set(id, (found = { workspaceId, jobId, queueEntries: 0 }));
    return found;
  };

  const values = await readAll(redis, options.ignore ?? (() => false));
  const legacyOwner = new Map<string, string>(); // jobId -> the workspace its legacy record names

  // Records first: every other key is checked against them.
  for (const [key, value] of values) {
    let match: RegExpExecArray | null;
    if ((match = LEGACY.exec(key)) && isHash(value)) {
      const record = value.value;
      checkRecord(key, record, match[1], undefined, violate);
      const workspaceId = record.workspace_id ?? '';
      legacyOwner.set(match[1], workspaceId);
      view(workspaceId, match[1]).legacy = record;
    } else if ((match = NEW.exec(key)) && isHash(value)) {
      checkRecord(key, value.value, match[2], match[1], violate);
      view(match[1], match[2]).new = value.value;
    }
  }
  const hasRecord = (workspaceId: string, jobId: string) => {
    const found = views.get(`${workspaceId}/${jobId}`);
    return Boolean(found && (found.legacy || found.new));
  };

  for (const [key, value] of values) {
    let match: RegExpExecArray | null;
    if ((LEGACY.test(key) || NEW.test(key)) && isHash(value)) continue;
    if ((match = INDEX.exec(key)) && value.type === 'zset') {
      for (const [jobId, score] of value.value) {
        if (!hasRecord(match[1], jobId)) violate('index_orphan', key, jobId);
        else view(match[1], jobId).indexScore = score;
      }
    } else if ((match = IDEMPOTENCY.exec(key)) && value.type === 'string') {
      const jobId = /^[0-9a-f]+:(.+)$/.exec(value.value)?.[1] ?? '';
      if (!hasRecord(match[1], jobId)) violate('idempotency_orphan', key, `points at ${jobId || value.value}`);
      if (!(value.ttl > 0)) violate('idempotency_without_ttl', key, `ttl ${value.ttl}`);
    } else if ((QUEUE.test(key) && value.type === 'list') || (PROCESSING.test(key) && value.type === 'zset')) {
      const entries = value.type === 'list' ? value.value : value.value.map(([entry]) => entry);
      for (const entry of entries) {
        // A bare entry names the legacy record; "<workspaceId>:<jobId>" names the new one.
        const [first, second] = entry.split(':');
        const workspaceId = second === undefined ? legacyOwner.get(first) : first;
        const jobId = second ?? first;
        if (workspaceId === undefined || !hasRecord(workspaceId, jobId)) violate('queue_orphan', key, entry);
        else view(workspaceId, jobId).queueEntries++;
      }
    } else if (!QUEUE_SIDE_KEYS.test(key)) {
      violate('unknown_key', key, `a ${value.type} outside the layout`);
    }
  }

  for (const job of views.values()) {
    const where = `${job.workspaceId}/${job.jobId}`;
    const layouts = layoutsOf(job);
    if ((layouts === 'legacy' || layouts === 'both') && !job.legacy) violate('missing_layout', where, 'no legacy record');
    if ((layouts === 'new' || layouts === 'both') && !job.new) violate('missing_layout', where, 'no new record');
    if (job.legacy && job.new && agreeOf(job)) {
      const differing = FIELDS.filter((field) => job.legacy![field] !== job.new![field]);
      if (differing.length > 0) violate('layouts_differ', where, differing.join(', '));
    }
    // Where the layouts may disagree (a stage wrote one of them), the record written last speaks for the job.
    const newest = job.legacy && job.new && Number(job.legacy.updated_at) > Number(job.new.updated_at) ? job.legacy : undefined;
    const record = newest ?? job.new ?? job.legacy!;
    if (job.indexScore === undefined) violate('not_indexed', where, 'absent from the workspace index');
    else if (String(job.indexScore) !== record.created_at) {
      violate('not_indexed', where, `index score ${job.indexScore}, created_at ${record.created_at}`);
    }
    if (job.queueEntries > 1) violate('queued_twice', where, `${job.queueEntries} queue entries`);
    // A running job may have left the queue (a legacy consumer pops its entry); a queued one may not.
    if (job.queueEntries === 0 && record.status === 'queued') violate('not_queued', where, 'queued without a queue entry');
  }
  return { jobs: [...views.values()], violations };
}

/** The figures a soak row reports, from a report and what the callers were told. */
export function tally(
  report: InvariantReport,
  acknowledged: Iterable<JobId>,
  logicalJobs?: number,
): { jobs: number; lost: number; duplicated: number; halfWritten: number } {
  const present = new Set(report.jobs.filter((j) => j.legacy || j.new).map((j) => `${j.workspaceId}/${j.jobId}`));
  let lost = 0;
  for (const job of acknowledged) if (!present.has(`${job.workspaceId}/${job.jobId}`)) lost++;
  const queuedTwice = report.violations.filter((v) => v.kind === 'queued_twice').length;
  const extraJobs = logicalJobs === undefined ? 0 : Math.max(0, present.size - logicalJobs);
  const halfWritten = new Set(report.violations.filter((v) => v.kind !== 'queued_twice').map((v) => v.key)).size;
  return { jobs: present.size, lost, duplicated: queuedTwice + extraJobs, halfWritten };
}

function checkRecord(
  key: string,
  record: Record<string, string>,
  jobId: string,
  workspaceId: string | undefined,
  violate: (kind: ViolationKind, key: string, detail: string) => void,
): void {
  const missing = FIELDS.filter((field) => record[field] === undefined);
  if (missing.length > 0) violate('record_incomplete', key, `lacks ${missing.join(', ')}`);
  if (record.id !== undefined && record.id !== jobId) violate('record_incomplete', key, `names job ${record.id}`);
  if (workspaceId !== undefined && record.workspace_id !== undefined && record.workspace_id !== workspaceId) {
    violate('record_incomplete', key, `names workspace ${record.workspace_id}`);
  }
  if (record.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(record.status)) {
    violate('record_incomplete', key, `status ${record.status}`);
  }
}

type Value =
  | { type: 'hash'; value: Record<string, string>; ttl: number }
  | { type: 'list'; value: string[]; ttl: number }
  | { type: 'zset'; value: [string, number][]; ttl: number }
  | { type: 'string'; value: string; ttl: number }
  | { type: 'other'; value: string; ttl: number };

const isHash = (value: Value): value is Extract<Value, { type: 'hash' }> => value.type === 'hash';

/** Every key with its value, read in pipelined batches so a soak-sized database reads in seconds. */
async function readAll(redis: Redis, ignore: (key: string) => boolean): Promise<Map<string, Value>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch.filter((key) => !ignore(key)));
    cursor = next;
  } while (cursor !== '0');
  keys.sort();
  const values = new Map<string, Value>();
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const types = (await redis.pipeline(batch.map((key) => ['type', key])).exec())!.map(([, type]) => String(type));
    const reads = batch.map((key, j) => {
      switch (types[j]) {
        case 'hash':
          return ['hgetall', key];
        case 'list':
          return ['lrange', key, '0', '-1'];
        case 'zset':
          return ['zrange', key, '0', '-1', 'WITHSCORES'];
        case 'string':
          return ['get', key];
        default:
          return ['type', key];
      }
    });
    const replies = (await redis.pipeline(reads).exec())!;
    const ttls = (await redis.pipeline(batch.map((key) => ['ttl', key])).exec())!;
    batch.forEach((key, j) => {
      const [error, reply] = replies[j];
      if (error) throw error;
      const ttl = Number(ttls[j][1]);
      const type = types[j];
      if (type === 'hash') values.set(key, { type, value: reply as Record<string, string>, ttl });
      else if (type === 'list') values.set(key, { type, value: reply as string[], ttl });
      else if (type === 'string') values.set(key, { type, value: String(reply), ttl });
      else if (type === 'zset') {
        const flat = reply as string[];
        const pairs: [string, number][] = [];
        for (let k = 0; k < flat.length; k += 2) pairs.push([flat[k], Number(flat[k + 1])]);
        values.set(key, { type, value: pairs, ttl });
      } else if (type !== 'none') values.set(key, { type: 'other', value: type, ttl });
    });
  }
  return values;
}
