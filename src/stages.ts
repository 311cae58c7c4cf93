import { ValidationError } from './errors';

/** The migration stages, in order. Moving back one stage is the rollback. */
export const STAGES = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'] as const;
export type Stage = (typeof STAGES)[number];

export type Layout = 'legacy' | 'new';

/** What a stage means for one call: which layouts are written, where reads come from. */
export interface StagePlan {
  readonly writeLegacy: boolean;
  readonly writeNew: boolean;
  /** The read origin, also the authoritative layout for expectedStatus. */
  readonly readFrom: Layout;
  /** Read the legacy layout when the new record is absent (counted as a fallback). */
  readonly fallback: boolean;
  /** Read both layouts and count what differs; the caller still gets readFrom's answer. */
  readonly compare: boolean;
}

const PLANS: Record<Stage, StagePlan> = {
  off: { writeLegacy: true, writeNew: false, readFrom: 'legacy', fallback: false, compare: false },
  dualwrite: { writeLegacy: true, writeNew: true, readFrom: 'legacy', fallback: false, compare: false },
  shadow: { writeLegacy: true, writeNew: true, readFrom: 'legacy', fallback: false, compare: true },
  live: { writeLegacy: true, writeNew: true, readFrom: 'new', fallback: true, compare: true },
  rampdown: { writeLegacy: true, writeNew: true, readFrom: 'new', fallback: true, compare: false },
  complete: { writeLegacy: false, writeNew: true, readFrom: 'new', fallback: false, compare: false },
};

export function planFor(stage: Stage): StagePlan {
  return PLANS[stage];
}

export function assertStage(stage: unknown, field = 'stage'): Stage {
  if (typeof stage !== 'string' || !(STAGES as readonly string[]).includes(stage)) {
    throw new ValidationError(field, 'stage', `must be one of ${STAGES.join(', ')}`);
  }
  return stage as Stage;
}
