import { KeyTypeError, PermissionError } from '../errors';
import { translateRedisError } from '../scripts/replies';
import type { RedisClient } from '../scripts/registry';

/** Where an interrupted backfill stands, kept in Redis so the next run continues from there. */
export interface Checkpoint {
  /** The SCAN cursor of the next page to copy. */
  cursor: string;
  mode: string;
  /**
   * The stage record's epoch the run that wrote it ran in ('' in static mode, and in a checkpoint
   * from before epochs were kept): a run resumes only a checkpoint of its own epoch.
   */
  epoch: string;
  /** A SCAN cursor is only valid on the server process that issued it (Redis seeds its hash per start). */
  serverRunId: string;
  /** On a Cluster: run_ids of the masters whose walk is over (the cursor is on `serverRunId`'s). */
  done: string[];
  startedAt: number;
  /** The counts of the run so far, so the resumed run's report covers the whole run. */
  counts: Record<string, number>;
}

export async function readCheckpoint(redis: RedisClient, key: string): Promise<Checkpoint | null> {
  const type = String(await redis.type(key));
  if (type === 'none') return null;
  if (type !== 'hash') throw new KeyTypeError(key, 'hash', type);
  const fields = await redis.hgetall(key);
  let counts: Record<string, number> = {};
  try {
    counts = JSON.parse(fields.counts ?? '{}') as Record<string, number>;
  } catch {
    // A damaged count only makes the report smaller; the cursor is what matters.
  }
  return {
    cursor: fields.cursor ?? '0',
    mode: fields.mode ?? '',
    epoch: fields.epoch ?? '',
    serverRunId: fields.server_run_id ?? '',
    done: (fields.done ?? '').split(',').filter(Boolean),
    startedAt: Number(fields.started_at ?? 0),
    counts,
  };
}

export async function writeCheckpoint(redis: RedisClient, key: string, checkpoint: Checkpoint): Promise<void> {
  await redis.hset(key, {
    cursor: checkpoint.cursor,
    mode: checkpoint.mode,
    epoch: checkpoint.epoch,
    server_run_id: checkpoint.serverRunId,
    done: checkpoint.done.join(','),
    started_at: String(checkpoint.startedAt),
    counts: JSON.stringify(checkpoint.counts),
  });
}

export async function clearCheckpoint(redis: RedisClient, key: string): Promise<void> {
  await redis.del(key);
}

/** The server process's run_id, or '' when this user may not run INFO (resuming then trusts the cursor). */
export async function serverRunId(redis: RedisClient): Promise<string> {
  try {
    return /run_id:([0-9a-f]+)/.exec(String(await redis.call('INFO', 'server')))?.[1] ?? '';
  } catch (error) {
    if (translateRedisError(error) instanceof PermissionError) return '';
    throw error;
  }
}
