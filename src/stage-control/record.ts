import { KeyTypeError } from '../errors';
import type { RedisClient } from '../scripts/registry';
import { STAGES, type Stage } from '../stages';
import type { Retention } from '../types';
import { RETENTION_STATUSES, type RetentionStatus } from '../validation';

/** A migration step's result, as the step wrote it into the record when it finished. */
export interface RecordedRun {
  /** What the step reported (its summary), as it wrote it. */
  summary: Record<string, unknown>;
  /** The epoch it started and ended in: a run that spanned a transition satisfies no guard. */
  startedEpoch: number;
  endedEpoch: number;
  /** Server time (ms) when it ended. */
  endedAt: number;
}

/**
 * The layout's stage record: what every managed script reads (stage, plan, epoch) and what the
 * transition guards need. One hash per key layout (keys.stage()); see README "Stage control".
 */
export interface StageRecord {
  stage: Stage;
  /** The stage's plan as the scripts read it (stages.ts planCode), written by each transition. */
  plan: string;
  /** +1 on every transition. */
  epoch: number;
  /** +1 on every write to the record (transitions and recorded runs): what a transition compares and sets on. */
  revision: number;
  changedAt: number;
  changedBy: string;
  reason: string;
  forced: boolean;
  /** How long a clean verify counts (ms): older is stale. */
  maxVerifyAgeMs: number;
  /** The epoch the record last entered dualwrite in. */
  enteredDualwriteEpoch: number;
  /** The new layout went stale in off: the next backfill out of dualwrite must be a resync. */
  needsResync: boolean;
  /** Legacy records cleanup has deleted, in all: once above 0, no stage that reads the legacy layout. */
  cleanupDeleted: number;
  /** How long finished jobs stay, by status, in seconds (Migration.configure); a status left out keeps them for good. */
  retention: Retention;
  backfill?: RecordedRun;
  verify?: RecordedRun;
  cleanup?: RecordedRun;
}

/** The record's hash fields, by what they hold. */
export const FIELD = {
  stage: 'stage',
  plan: 'plan',
  epoch: 'epoch',
  revision: 'revision',
  changedAt: 'changed_at',
  changedBy: 'changed_by',
  reason: 'reason',
  forced: 'forced',
  maxVerifyAgeMs: 'max_verify_age_ms',
  enteredDualwriteEpoch: 'entered_dualwrite_epoch',
  needsResync: 'needs_resync',
  cleanupDeleted: 'cleanup_deleted',
} as const;

export const RUN_KINDS = ['backfill', 'verify', 'cleanup'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export const DEFAULT_MAX_VERIFY_AGE_MS = 24 * 60 * 60 * 1000;

/** The record, or null when the layout has none. */
export async function readStageRecord(redis: RedisClient, key: string): Promise<StageRecord | null> {
  const type = String(await redis.type(key));
  if (type === 'none') return null;
  if (type !== 'hash') throw new KeyTypeError(key, 'hash', type);
  return parseStageRecord(await redis.hgetall(key));
}

export function parseStageRecord(fields: Record<string, string>): StageRecord | null {
  const stage = fields[FIELD.stage];
  if (!(STAGES as readonly string[]).includes(stage)) return null;
  const number = (field: string, fallback = 0) => (fields[field] === undefined ? fallback : Number(fields[field]));
  const run = (kind: RunKind): RecordedRun | undefined => {
    const summary = fields[`last_${kind}`];
    if (summary === undefined) return undefined;
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(summary) as Record<string, unknown>;
    } catch {
      // A damaged summary is shown as empty; its epochs still decide the guards.
    }
    return {
      summary: parsed,
      startedEpoch: number(`last_${kind}_started_epoch`, -1),
      endedEpoch: number(`last_${kind}_ended_epoch`, -1),
      endedAt: number(`last_${kind}_ended_at`),
    };
  };
  return {
    stage: stage as Stage,
    plan: fields[FIELD.plan] ?? '',
    epoch: number(FIELD.epoch),
    revision: number(FIELD.revision),
    changedAt: number(FIELD.changedAt),
    changedBy: fields[FIELD.changedBy] ?? '',
    reason: fields[FIELD.reason] ?? '',
    forced: fields[FIELD.forced] === '1',
    maxVerifyAgeMs: number(FIELD.maxVerifyAgeMs, DEFAULT_MAX_VERIFY_AGE_MS),
    enteredDualwriteEpoch: number(FIELD.enteredDualwriteEpoch, -1),
    needsResync: fields[FIELD.needsResync] === '1',
    cleanupDeleted: number(FIELD.cleanupDeleted),
    retention: recordRetention(fields),
    backfill: run('backfill'),
    verify: run('verify'),
    cleanup: run('cleanup'),
  };
}

/** The record's field for a status's retention (seconds), as the scripts read it. */
export function retentionField(status: RetentionStatus): string {
  return `retention_${status}`;
}

/** The retention a record holds. */
export function recordRetention(fields: Record<string, string>): Retention {
  const retention: Retention = {};
  for (const status of RETENTION_STATUSES) {
    const seconds = Number(fields[retentionField(status)]);
    if (seconds > 0) retention[status] = seconds;
  }
  return retention;
}
