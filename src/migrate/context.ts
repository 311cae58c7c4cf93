import { isCluster } from '../cluster/nodes';
import { groupBySlot } from '../cluster/single-slot';
import type { Logger } from '../logger';
import { errorForReply } from '../scripts/replies';
import type { RedisClient, ScriptRegistry } from '../scripts/registry';
import type { Stage } from '../stages';
import type { MigrationMetrics } from '../telemetry';
import type { MigrationLayout } from './layout';

/** What every migration step works with; built once by Migration. */
export interface MigrationContext {
  redis: RedisClient;
  stage: Stage;
  queueName: string;
  keys: MigrationLayout;
  scripts: ScriptRegistry;
  metrics: MigrationMetrics;
  logger: Logger;
  /** The exclude option: keys under a walked pattern that are no part of the layout. */
  isExcluded: (key: string) => boolean;
}

export const SCRIPT = {
  backfill: 'backfill_batch.v2',
  compare: 'compare_layouts.v2',
  cleanup: 'cleanup_legacy_batch.v1',
  claimConsistency: 'claim_consistency_page.v1',
  confirmOrphans: 'confirm_orphans.v1',
} as const;

/** Runs a batch script and returns its per-job results; a refusal becomes its typed error. */
export async function runBatch<T>(
  context: MigrationContext,
  script: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<T[]> {
  const reply = await context.scripts.run(script, keys, args);
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
