import { isCluster } from '../cluster/nodes';
import { groupBySlot } from '../cluster/single-slot';
import { StageChangedError, StageUnsetError } from '../errors';
import type { Logger } from '../logger';
import { errorForReply } from '../scripts/replies';
import type { RedisClient } from '../scripts/registry';
import { readStageRecord } from '../stage-control/record';
import { runStaged, type StagedScripts } from '../stage-control/run';
import { EpochChanged } from '../stage-control/source';
import type { Stage } from '../stages';
import type { MigrationMetrics } from '../telemetry';
import type { MigrationLayout } from './layout';

/** What every migration step works with; built once by Migration. */
export interface MigrationBase extends StagedScripts {
  redis: RedisClient;
  queueName: string;
  keys: MigrationLayout;
  metrics: MigrationMetrics;
  logger: Logger;
  /** The exclude option: keys under a walked pattern that are no part of the layout. */
  isExcluded: (key: string) => boolean;
}

/** One run of a step: the stage it works under, pinned for all its batches. */
export interface MigrationContext extends MigrationBase {
  stage: Stage;
  /** The stage record's epoch the run started in (managed mode), '' in static mode. */
  epoch: string;
  /** The step, for messages: 'backfill', 'verify' or 'cleanup'. */
  step: string;
}

/**
 * The stage a run works under: the static one, or the stage record's as it is now (managed). Every
 * batch of the run is then pinned to that epoch, so a run never mixes two stages.
 */
export async function beginRun(base: MigrationBase, step: string): Promise<MigrationContext> {
  if (base.stages.mode === 'static') return { ...base, stage: base.stages.stage!, epoch: '', step };
  const record = await readStageRecord(base.redis, base.stageKey);
  if (!record) throw new StageUnsetError(base.stageKey);
  return { ...base, stage: record.stage, epoch: String(record.epoch), step };
}

export const SCRIPT = {
  backfill: 'backfill_batch.v3',
  compare: 'compare_layouts.v3',
  cleanup: 'cleanup_legacy_batch.v3',
  claimConsistency: 'claim_consistency_page.v2',
  confirmOrphans: 'confirm_orphans.v2',
} as const;

/**
 * Runs one of the run's scripts, pinned to the run's epoch: when the stage changed since the run
 * began, nothing of the script was written and the run stops with StageChangedError.
 */
export async function runScript(context: MigrationContext, script: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown[]> {
  try {
    return (await runStaged(context, script, keys, args, context.epoch || undefined)).reply;
  } catch (error) {
    if (error instanceof EpochChanged) throw new StageChangedError(context.step, error.startedEpoch, error.currentEpoch);
    throw error;
  }
}

/** Runs a batch script and returns its per-job results; a refusal becomes its typed error. */
export async function runBatch<T>(
  context: MigrationContext,
  script: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<T[]> {
  const reply = await runScript(context, script, keys, args);
  if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId: '', jobId: '' });
  return reply[1] as T[];
}

/**
 * Runs `read` on the keys, at once on one server; on a Cluster once per slot (a Cluster pipeline
 * goes to one node), its answers put back in the keys' order.
 */
export async function perSlot<T>(
  redis: RedisClient,
  keys: readonly string[],
  read: (keys: readonly string[]) => Promise<T[]>,
): Promise<T[]> {
  if (keys.length === 0) return [];
  if (!isCluster(redis)) return read(keys);
  const answers: T[] = [];
  const positions = keys.map((key, at) => ({ key, at }));
  for (const group of groupBySlot(positions, (p) => p.key)) {
    const groupAnswers = await read(group.map((p) => p.key));
    group.forEach((p, i) => (answers[p.at] = groupAnswers[i]));
  }
  return answers;
}

/**
 * Batches of at most `size` items for one script call each. On a Cluster, items are first grouped
 * by the slot of their key (a call's keys must share one), keeping their order within a group.
 */
export function slotBatches<T>(context: MigrationContext, items: readonly T[], keyOf: (item: T) => string, size: number): T[][] {
  const groups = isCluster(context.redis) ? groupBySlot(items, keyOf) : [items];
  return groups.flatMap((group) => chunks(group, size));
}

/** Splits a list into runs of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
