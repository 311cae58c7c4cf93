import { StageChangedError } from '../errors';
import type { ScriptRegistry } from '../scripts/registry';
import { EpochChanged, type Staged, type StageSource } from './source';

/** What running a stage-aware script needs: the registry, the layout's stage key, the stage source. */
export interface StagedScripts {
  readonly scripts: ScriptRegistry;
  readonly stageKey: string;
  readonly stages: StageSource;
}

/**
 * Runs a stage-aware script: its first KEY is the stage record and its first two ARGV the stage
 * selector and static plan. `epoch` pins the call to one epoch (managed mode): a script that finds
 * another throws EpochChanged with nothing written.
 */
export async function runStaged(
  ctx: StagedScripts,
  id: string,
  keys: readonly string[],
  args: readonly (string | number)[],
  epoch?: string,
): Promise<Staged> {
  const answer = await ctx.scripts.run(id, [ctx.stageKey, ...keys], [...ctx.stages.args(epoch), ...args]);
  return ctx.stages.open(answer, epoch);
}

/** How often a call that spans several scripts restarts when the stage keeps changing under it. */
export const MAX_STAGE_RESTARTS = 5;

/**
 * One stage per call: `body` runs its scripts pinned to the epoch of its first one; when a later one
 * finds another epoch, nothing of it was written and the whole call starts again under the new
 * stage, at most MAX_STAGE_RESTARTS times (then StageChangedError).
 */
export async function withOneStage<T>(operation: string, onRestart: () => void, body: () => Promise<T>): Promise<T> {
  for (let restarts = 0; ; restarts++) {
    try {
      return await body();
    } catch (error) {
      if (!(error instanceof EpochChanged)) throw error;
      if (restarts >= MAX_STAGE_RESTARTS) throw new StageChangedError(operation, error.startedEpoch, error.currentEpoch);
      onRestart();
    }
  }
}
