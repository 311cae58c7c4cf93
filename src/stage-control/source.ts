import { StageUnsetError, ValidationError } from '../errors';
import { planCode, planFor, STAGES, type Stage, type StageOption, type StagePlan } from '../stages';

/** What a script ran under, and its own reply (see open). */
export interface Staged {
  reply: unknown[];
  /** The stage record's epoch; '' in static mode. */
  epoch: string;
  stage: Stage;
  plan: StagePlan;
}

/**
 * Thrown inside one call when a script found another epoch than the call started under: nothing of
 * that script was written, and the call restarts under the new stage (see withOneStage).
 */
export class EpochChanged extends Error {
  constructor(
    readonly startedEpoch: string,
    readonly currentEpoch: string,
  ) {
    super(`epoch changed from ${startedEpoch} to ${currentEpoch}`);
  }
}

/**
 * Where a queue's or a migration's stage comes from. Static: one stage for this process, sent to
 * each script as its plan. Managed: each script reads the layout's stage record itself, in the
 * same atomic step as its work, so every call of every instance runs under the stage the record
 * holds at that moment; this object only remembers what the scripts said last.
 */
export class StageSource {
  readonly mode: 'static' | 'managed';
  private staticStage: Stage | undefined;
  /** Static mode's first two ARGV, built when the stage is set rather than at every call. */
  private staticArgs: readonly [string, string] = ['', ''];
  private lastStage: Stage | undefined;
  private lastEpoch = '';

  constructor(
    option: StageOption,
    private readonly stageKey: string,
    /** Told of every stage a script ran under that differs from the last one (and of the first). */
    private readonly onSeen: (stage: Stage, epoch: string, previous: Stage | undefined) => void = () => {},
  ) {
    this.mode = option === 'managed' ? 'managed' : 'static';
    if (option !== 'managed') {
      this.staticStage = this.lastStage = option;
      this.staticArgs = ['', planCode(option)];
    }
  }

  /** The stage calls run under: the static one, or the one scripts last reported (undefined before any). */
  get stage(): Stage | undefined {
    return this.lastStage;
  }

  /** The epoch scripts last reported; '' in static mode or before any call. */
  get epoch(): string {
    return this.lastEpoch;
  }

  setStatic(stage: Stage): void {
    if (this.mode === 'managed') {
      throw new ValidationError(
        'stage',
        'managed',
        'the stage of a managed queue lives in Redis: change it with Migration.setStage or `redis-dual-write stage set`',
      );
    }
    const previous = this.staticStage;
    this.staticStage = this.lastStage = stage;
    this.staticArgs = ['', planCode(stage)];
    if (previous !== stage) this.onSeen(stage, '', previous);
  }

  /** The first two ARGV of a stage-aware script: the selector and, in static mode, the plan. */
  args(epoch?: string): readonly [string, string] {
    if (this.mode === 'static') return this.staticArgs;
    return [epoch || '*', ''];
  }

  /**
   * A script's reply and what it ran under: static mode replies as it is; managed mode appends the
   * epoch and the stage's name. Refuses a missing record and a changed epoch (nothing was written).
   */
  open(answer: unknown[], expectedEpoch?: string): Staged {
    if (this.mode === 'static') return { reply: answer, epoch: '', stage: this.staticStage!, plan: planFor(this.staticStage!) };
    const reply = answer.slice(0, -2);
    const [epoch, stageName] = answer.slice(-2) as [string, string];
    if (reply[0] === 'STAGE_UNSET') throw new StageUnsetError(this.stageKey);
    if (reply[0] === 'EPOCH_CHANGED') throw new EpochChanged(expectedEpoch ?? '', String(epoch));
    const stage = String(stageName);
    if (!(STAGES as readonly string[]).includes(stage)) throw new Error(`the stage record names an unknown stage ${JSON.stringify(stage)}`);
    this.note(stage as Stage, String(epoch));
    return { reply, epoch: String(epoch), stage: stage as Stage, plan: planFor(stage as Stage) };
  }

  /** Remembers a stage and epoch read from the record (scripts report theirs through open()). */
  note(stage: Stage, epoch: string): void {
    // Replies of calls in flight on several connections may come back out of order: keep the newest.
    if (Number(epoch) <= Number(this.lastEpoch || '0') && this.lastStage !== undefined) return;
    const previous = this.lastStage;
    this.lastStage = stage;
    this.lastEpoch = epoch;
    this.onSeen(stage, epoch, previous);
  }
}
