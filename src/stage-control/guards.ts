import { planFor, STAGES, type Stage } from '../stages';
import type { RecordedRun, StageRecord } from './record';

/** A refused transition: the guard's stable name and what would satisfy it. */
export interface Refusal {
  rule: 'same_stage' | 'one_step' | 'backfill_needed' | 'resync_needed' | 'verify_needed' | 'verify_stale' | 'legacy_deleted';
  remedy: string;
}

/**
 * The rules a transition must pass (README "Stage control"). Forward moves go one stage at a time,
 * each behind the proof it needs; backward moves (rollbacks) go any distance at once, because a
 * rollback must be fast while a fault goes on, except into a stage that reads the legacy layout
 * once cleanup has deleted from it.
 */
export function refusalOf(record: StageRecord, to: Stage, now: number): Refusal | null {
  const from = record.stage;
  const step = STAGES.indexOf(to) - STAGES.indexOf(from);
  if (step === 0) return { rule: 'same_stage', remedy: `the layout is in ${to} already` };
  if (step < 0) {
    if (record.cleanupDeleted > 0 && planFor(to).readFrom === 'legacy') {
      return {
        rule: 'legacy_deleted',
        remedy: `cleanup has deleted ${record.cleanupDeleted} legacy records, so ${to}, which reads the legacy layout, would lose jobs: step back to rampdown at most`,
      };
    }
    return null;
  }
  if (step > 1) return { rule: 'one_step', remedy: `move forward one stage at a time: ${STAGES[STAGES.indexOf(from) + 1]} next` };

  if (from === 'dualwrite') {
    const backfill = record.backfill;
    const mode = record.needsResync ? 'resync' : 'copy';
    const command = `redis-dual-write backfill${record.needsResync ? ' --resync' : ''}`;
    if (!withinEpoch(backfill, record.epoch) || backfill!.summary.completed !== true) {
      return { rule: 'backfill_needed', remedy: `run \`${command}\` to its end while the layout is in dualwrite (epoch ${record.epoch})` };
    }
    if (mode === 'resync' && backfill!.summary.mode !== 'resync') {
      return { rule: 'resync_needed', remedy: `the new layout went stale in off: run \`${command}\` to its end` };
    }
  }
  if (to === 'live' || to === 'complete') {
    const verify = record.verify;
    if (!withinEpoch(verify, record.epoch) || verify!.summary.completed !== true || verify!.summary.clean !== true) {
      return { rule: 'verify_needed', remedy: `run \`redis-dual-write verify\` in ${from} (epoch ${record.epoch}); it must come back clean` };
    }
    if (now - verify!.endedAt > record.maxVerifyAgeMs) {
      return { rule: 'verify_stale', remedy: `the last clean verify is older than ${record.maxVerifyAgeMs} ms: run \`redis-dual-write verify\` again` };
    }
  }
  return null;
}

/** A run that started and ended in this epoch: one that spanned a transition proves nothing. */
function withinEpoch(run: RecordedRun | undefined, epoch: number): boolean {
  return run !== undefined && run.startedEpoch === epoch && run.endedEpoch === epoch;
}

/** The guards' bookkeeping a transition writes beside the new stage. */
export function bookkeeping(from: Stage | undefined, to: Stage, newEpoch: number): Record<string, string> {
  const fields: Record<string, string> = {};
  if (to === 'dualwrite') fields.entered_dualwrite_epoch = String(newEpoch);
  // In off the new layout is no longer written: it goes stale, and only a resync brings it level.
  if (to === 'off' && from !== undefined && from !== 'off') fields.needs_resync = '1';
  if (from === 'dualwrite' && STAGES.indexOf(to) > STAGES.indexOf(from)) fields.needs_resync = '0';
  return fields;
}
