import { hostname, userInfo } from 'node:os';
import type { Redis } from 'ioredis';
import { isCluster } from '../cluster/nodes';
import { keySlot } from '../cluster/slot';
import { KeyTypeError, PermissionError, TransitionRefusedError, ValidationError } from '../errors';
import type { MigrationBase } from '../migrate/context';
import { translateRedisError } from '../scripts/replies';
import { assertStage, planCode, type Stage } from '../stages';
import { checkInteger, checkObject, optional, rejectUnknownFields } from '../validation';
import { bookkeeping, refusalOf } from './guards';
import { DEFAULT_MAX_VERIFY_AGE_MS, readStageRecord } from './record';

export interface SetStageOptions {
  /** Why: kept in the record and its history. Required. */
  reason: string;
  /** Refuse unless the record is at this epoch (what `status` showed you). */
  expectedEpoch?: number;
  /** Override a refused guard; the record keeps that it was forced. */
  force?: boolean;
  /** Who: default user@host of this process. */
  by?: string;
  /** How long to wait for a replica to acknowledge (WAIT), default 1000 ms; 0 skips it. */
  replicaWaitMs?: number;
}

export interface InitStageOptions {
  reason: string;
  by?: string;
  /** How long a clean verify counts for the guards (ms), default 24 h. */
  maxVerifyAgeMs?: number;
  replicaWaitMs?: number;
}

export interface TransitionResult {
  from: Stage | null;
  to: Stage;
  epoch: number;
  changedAt: number;
  forced: boolean;
  /**
   * Whether a replica acknowledged the change (WAIT): null when the layout's master has no replica
   * (or this user may not ask), false when none acknowledged in time: then an automatic failover
   * could lose the transition, and it is logged at warn.
   */
  replicated: boolean | null;
}

const MAX_REASON = 500;

/** Creates the layout's stage record; refused when one exists. */
export async function initStage(base: MigrationBase, stage: Stage, options: InitStageOptions): Promise<TransitionResult> {
  const { to, reason, by, maxVerifyAgeMs, waitMs } = checkInitStage(stage, options);
  const fields = { ...bookkeeping(undefined, to, 1), max_verify_age_ms: String(maxVerifyAgeMs), needs_resync: '0', cleanup_deleted: '0' };
  const reply = await runSetStage(base, 'init', '', to, by, reason, false, fields);
  if (reply[0] === 'EXISTS') {
    throw new TransitionRefusedError('(none)', to, 'exists', `${base.stageKey} exists already: use \`redis-dual-write stage set\``);
  }
  return finish(base, reply, null, to, false, waitMs);
}

/**
 * Moves the layout to `to`: the guards are checked against the record as read, and the script sets
 * the stage only if nothing wrote the record since, so of two racing callers exactly one wins.
 */
export async function setStage(base: MigrationBase, stage: Stage, options: SetStageOptions): Promise<TransitionResult> {
  const { to, reason, by, expectedEpoch, force, waitMs } = checkSetStage(stage, options);
  const record = await readStageRecord(base.redis, base.stageKey).catch(rethrow);
  if (!record) {
    throw new TransitionRefusedError('(none)', to, 'unset', `there is no stage record at ${base.stageKey}: create it with \`redis-dual-write stage init <stage>\``);
  }
  if (expectedEpoch !== undefined && expectedEpoch !== record.epoch) {
    throw new TransitionRefusedError(record.stage, to, 'expected_epoch', `the record is at epoch ${record.epoch}, not ${expectedEpoch}: look at \`redis-dual-write status\` again`);
  }
  const refusal = refusalOf(record, to, Date.now());
  if (refusal && (!force || refusal.rule === 'same_stage')) throw new TransitionRefusedError(record.stage, to, refusal.rule, `${refusal.remedy}${refusal.rule === 'same_stage' ? '' : ', or --force with a reason'}`);
  const forced = refusal !== null;
  if (forced) base.logger.warn('redis-dual-write: stage transition forced past a guard', { from: record.stage, to, rule: refusal.rule, reason });

  const fields = bookkeeping(record.stage, to, record.epoch + 1);
  const reply = await runSetStage(base, 'set', String(record.revision), to, by, reason, forced, fields);
  if (reply[0] === 'REVISION_CHANGED' || reply[0] === 'UNSET') {
    throw new TransitionRefusedError(record.stage, to, 'concurrent_change', 'the stage record changed while this transition was checked (another transition or a step recording its result): look at `redis-dual-write status` and try again');
  }
  return finish(base, reply, record.stage, to, forced, waitMs);
}

/**
 * initStage's arguments, checked before anything is sent. Exported so the command checks its flags
 * with the same rules before it connects: a usage error (exit 2) sends nothing.
 */
export function checkInitStage(stage: unknown, options: unknown) {
  const o = checkObject('options', options);
  rejectUnknownFields('options', o, ['reason', 'by', 'maxVerifyAgeMs', 'replicaWaitMs']);
  return {
    to: assertStage(stage),
    reason: checkReason(o.reason),
    by: checkBy(o.by),
    maxVerifyAgeMs: checkInteger('maxVerifyAgeMs', o.maxVerifyAgeMs ?? DEFAULT_MAX_VERIFY_AGE_MS, 1, 365 * 24 * 3600_000),
    waitMs: checkWait(o.replicaWaitMs),
  };
}

/** setStage's arguments, checked before anything is sent (and by the command before it connects). */
export function checkSetStage(stage: unknown, options: unknown) {
  const o = checkObject('options', options);
  rejectUnknownFields('options', o, ['reason', 'expectedEpoch', 'force', 'by', 'replicaWaitMs']);
  return {
    to: assertStage(stage),
    reason: checkReason(o.reason),
    by: checkBy(o.by),
    expectedEpoch: optional(o.expectedEpoch, (v) => checkInteger('expectedEpoch', v, 0, Number.MAX_SAFE_INTEGER)),
    force: checkForce(o.force),
    waitMs: checkWait(o.replicaWaitMs),
  };
}

async function runSetStage(
  base: MigrationBase,
  mode: 'init' | 'set',
  revision: string,
  to: Stage,
  by: string,
  reason: string,
  forced: boolean,
  fields: Record<string, string>,
): Promise<unknown[]> {
  const reply = await base.scripts.run(
    'set_stage.v1',
    [base.stageKey, base.keys.stageHistory()],
    [mode, revision, to, planCode(to), by, reason, forced ? '1' : '0', ...Object.entries(fields).flat()],
  );
  if (reply[0] === 'WRONGTYPE') throw new KeyTypeError(String(reply[1]), String(reply[2]), String(reply[3]));
  if (reply[0] === 'NO_PERMISSION') throw new PermissionError(String(reply[1]), `the Redis user may not run ${String(reply[1])} on ${String(reply[2])}; nothing was written`);
  return reply;
}

async function finish(base: MigrationBase, reply: unknown[], from: Stage | null, to: Stage, forced: boolean, waitMs: number): Promise<TransitionResult> {
  const epoch = Number(reply[1]);
  const replicated = await waitForReplica(base, waitMs);
  base.logger.info('redis-dual-write: stage changed', { from, to, epoch, forced });
  if (replicated === false) {
    base.logger.warn('redis-dual-write: no replica acknowledged the stage change in time; an automatic failover now could lose it', { epoch, waitMs });
  }
  return { from, to, epoch, changedAt: Number(reply[2]), forced, replicated };
}

/**
 * WAIT 1 on the master holding the stage record (scripts cannot WAIT), when it has replicas: null
 * when it has none or this user may not ask, else whether one acknowledged within `waitMs`.
 */
async function waitForReplica(base: MigrationBase, waitMs: number): Promise<boolean | null> {
  if (waitMs === 0) return null;
  const master = masterOf(base);
  if (!master) return null;
  try {
    const info = String(await master.call('INFO', 'replication'));
    if (Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0) === 0) return null;
    return Number(await master.call('WAIT', '1', String(waitMs))) >= 1;
  } catch (error) {
    if (translateRedisError(error) instanceof PermissionError) return null;
    throw translateRedisError(error);
  }
}

/** The node the stage record lives on: the client itself, or the Cluster's master of its slot. */
function masterOf(base: MigrationBase): Redis | undefined {
  const { redis } = base;
  if (!isCluster(redis)) return redis;
  const owner = (redis as unknown as { slots: string[][] }).slots[keySlot(base.stageKey)]?.[0];
  return redis.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === owner);
}

function checkReason(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_REASON) {
    throw new ValidationError('reason', 'format', `must say why, in 1 to ${MAX_REASON} characters`);
  }
  return value;
}

function checkBy(value: unknown): string {
  if (value === undefined) {
    let user = 'unknown';
    try {
      user = userInfo().username;
    } catch {
      // no user name on this system: say so
    }
    return `${user}@${hostname()}`;
  }
  if (typeof value !== 'string' || value === '' || value.length > 200) throw new ValidationError('by', 'format', 'must be 1 to 200 characters');
  return value;
}

function checkForce(value: unknown): boolean {
  if (value !== undefined && typeof value !== 'boolean') throw new ValidationError('force', 'type', 'must be a boolean');
  return value === true;
}

function checkWait(value: unknown): number {
  return checkInteger('replicaWaitMs', value ?? 1000, 0, 60_000);
}

function rethrow(error: unknown): never {
  throw translateRedisError(error);
}
