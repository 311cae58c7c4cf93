import { ValidationError } from './errors';

/**
 * Ids become parts of key names, so they are checked against a whitelist first: ':' could make two
 * keys collide, '{' '}' would move a key to another cluster slot, '* ? [ ] \' are SCAN MATCH globs.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Job ids also take '.', which many legacy stores put in their ids ("order.1042"): it is neither a
 * separator of the layout (':'), nor a hash tag brace, nor a SCAN MATCH glob.
 */
export const JOB_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
export const JOB_TYPE_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Braces are allowed so a prefix like "{jobs}:" can pin every key to one cluster slot. */
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9._:{}-]{0,64}$/;

export function checkPattern(field: string, value: unknown, pattern: RegExp): string {
  if (typeof value !== 'string') {
    throw new ValidationError(field, 'type', `must be a string, got ${describe(value)}`);
  }
  if (!pattern.test(value)) {
    throw new ValidationError(field, 'format', `must match ${pattern.source}`);
  }
  return value;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/** Where each record lives. Builders receive validated ids only. */
export interface KeyLayout {
  legacyJob(jobId: string): string;
  newJob(workspaceId: string, jobId: string): string;
  queue(queueName: string): string;
  idempotency(workspaceId: string, idempotencyKey: string): string;
  workspaceIndex(workspaceId: string): string;
  /** Claimed entries of a queue, scored by claim deadline (ms). */
  processing(queueName: string): string;
  /** Who claimed each processing entry, and when. */
  claims(queueName: string): string;
  /** Entries whose job record was missing, moved aside for an operator to inspect. */
  orphans(queueName: string): string;
  /**
   * Entries the package cannot place (an id outside the whitelist, a legacy record without a valid
   * workspace_id), set aside so they never block the queue's head; the legacy service can take them.
   */
  unsupported(queueName: string): string;
  /** When retention removes each finished job of a queue: "<workspaceId>:<jobId>" by time (ms). */
  expiries(queueName: string): string;
  /** Where an interrupted backfill of a queue keeps its place: a hash. */
  checkpoint(queueName: string): string;
  /** The layout's stage record (managed mode): a hash every script of the layout reads. */
  stage(): string;
  /** The last transitions of the stage record, newest first: a list. */
  stageHistory(): string;
  /** Service instances by their last heartbeat (ms): a sorted set. */
  instances(): string;
  /** What each instance said in its last heartbeat (JSON by instance id): a hash. */
  instanceInfo(): string;
}

export function defaultLayout(keyPrefix: string): KeyLayout {
  return {
    legacyJob: (jobId) => `${keyPrefix}job:${jobId}`,
    newJob: (workspaceId, jobId) => `${keyPrefix}ws:${workspaceId}:job:${jobId}`,
    queue: (queueName) => `${keyPrefix}queue:${queueName}`,
    idempotency: (workspaceId, key) => `${keyPrefix}ws:${workspaceId}:idem:${key}`,
    workspaceIndex: (workspaceId) => `${keyPrefix}ws:${workspaceId}:jobs`,
    processing: (queueName) => `${keyPrefix}queue:${queueName}:processing`,
    claims: (queueName) => `${keyPrefix}queue:${queueName}:claims`,
    orphans: (queueName) => `${keyPrefix}queue:${queueName}:orphans`,
    unsupported: (queueName) => `${keyPrefix}queue:${queueName}:unsupported`,
    expiries: (queueName) => `${keyPrefix}queue:${queueName}:expiries`,
    checkpoint: (queueName) => `${keyPrefix}dualwrite:backfill:${queueName}`,
    stage: () => `${keyPrefix}dualwrite:stage`,
    stageHistory: () => `${keyPrefix}dualwrite:stage:history`,
    instances: () => `${keyPrefix}dualwrite:instances`,
    instanceInfo: () => `${keyPrefix}dualwrite:instances:info`,
  };
}

/** A cluster hash tag: what goes between the braces. */
export const HASH_TAG_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The cluster-ready preset: the default layout with every key behind one hash tag, `{<tag>}:job:<id>`,
 * `{<tag>}:ws:<workspaceId>:job:<id>`, `{<tag>}:queue:<name>`, ... so every key of every operation of
 * a queue lands in one slot. Use one tag per queue (its name, say): claim, recoverStalled and
 * enqueueMany put the queue's keys and jobs of any workspace in one script, and a legacy key is found
 * from a bare jobId, so a tag per workspace could not hold them together. One queue lives on one
 * master; run several queues (each its own tag) to spread load over masters. See README "Cluster".
 */
export function clusterLayout(tag: string): KeyLayout {
  return defaultLayout(`{${checkPattern('tag', tag, HASH_TAG_PATTERN)}}:`);
}

/**
 * A queue entry is the bare jobId while the legacy layout is written, so consumers of the legacy
 * layout keep working. Once it is not (stage complete), the entry is "<workspaceId>:<jobId>": ids
 * never contain ':', so a consumer tells the two forms apart and finds the new record from either.
 */
export function queueEntry(writeLegacy: boolean, workspaceId: string, jobId: string): string {
  return writeLegacy ? jobId : `${workspaceId}:${jobId}`;
}

/**
 * The ids a queue entry names: both for "<workspaceId>:<jobId>", the jobId alone for a bare entry.
 * Entries come from Redis, possibly from the legacy service: anything else is undefined.
 */
export function parseQueueEntry(entry: string): { workspaceId?: string; jobId: string } | undefined {
  const [first, second, ...rest] = entry.split(':');
  if (rest.length > 0) return undefined;
  if (second === undefined) return JOB_ID_PATTERN.test(first) ? { jobId: first } : undefined;
  return ID_PATTERN.test(first) && JOB_ID_PATTERN.test(second) ? { workspaceId: first, jobId: second } : undefined;
}
