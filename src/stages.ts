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

/**
 * A plan as the scripts read it: five characters, writeLegacy, writeNew, readFrom ('L' or 'N'),
 * fallback, compare ('1' or '0' each), e.g. live is "11N11". Static mode passes it in ARGV; a
 * transition writes it into the stage record beside the stage's name. Scripts decode the flags and
 * never map a stage name to behaviour: this table is the one place that does.
 */
export function planCode(stage: Stage): string {
  const plan = PLANS[stage];
  const bit = (flag: boolean) => (flag ? '1' : '0');
  return `${bit(plan.writeLegacy)}${bit(plan.writeNew)}${plan.readFrom === 'new' ? 'N' : 'L'}${bit(plan.fallback)}${bit(plan.compare)}`;
}

/**
 * How a queue learns its stage: 'managed' reads it from the layout's stage record inside every
 * script (what a fleet must use); a stage name fixes it for this process (static mode).
 */
export type StageOption = Stage | 'managed';

export function assertStageOption(value: unknown, field = 'stage'): StageOption {
  if (value === 'managed') return value;
  if (typeof value !== 'string' || !(STAGES as readonly string[]).includes(value)) {
    throw new ValidationError(field, 'stage', `must be 'managed' or one of ${STAGES.join(', ')}`);
  }
  return value as Stage;
}

export function assertStage(stage: unknown, field = 'stage'): Stage {
  if (typeof stage !== 'string' || !(STAGES as readonly string[]).includes(stage)) {
    throw new ValidationError(field, 'stage', `must be one of ${STAGES.join(', ')}`);
  }
  return stage as Stage;
}
