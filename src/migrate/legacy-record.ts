import { ID_PATTERN } from '../keys';
import type { RedisClient } from '../scripts/registry';
import { perSlot } from './context';

/**
 * One definition of a legacy record the package can migrate, shared by backfill, verify and cleanup,
 * so that what backfill skips is exactly what verify reports as bad_legacy_record and cleanup keeps:
 * an operator is never sent from one to the other in circles. backfill_batch re-checks created_at
 * with the same rule inside its script.
 */
export const LEGACY_RECORD_PROBLEMS = ['bad_job_id', 'bad_workspace_id', 'bad_created_at', 'wrong_type'] as const;
export type LegacyRecordProblem = (typeof LEGACY_RECORD_PROBLEMS)[number];

/** created_at becomes the job's index score: a decimal number of milliseconds. */
export const CREATED_AT_PATTERN = /^[0-9]+(\.[0-9]+)?$/;

/** The key itself holds no id the package can place. */
export const BAD_JOB_ID_DETAIL = 'the key holds no valid job id';

/** What a legacy key held when read. */
export type LegacyRecord =
  | { state: 'ok'; workspaceId: string }
  | { state: 'gone' }
  /** workspaceId: the valid one it names, when that is not its problem (a consumer still finds the job). */
  | { state: 'bad'; problem: LegacyRecordProblem; detail: string; workspaceId?: string };

/**
 * Each legacy key's record, read in one round trip per slot and judged by the one definition. The
 * batch scripts check again before acting, so a record that changes in between is never copied or
 * deleted by mistake.
 */
export async function readLegacyRecords(redis: RedisClient, legacyKeys: readonly string[]): Promise<LegacyRecord[]> {
  return perSlot(redis, legacyKeys, async (keys) => {
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.exists(key).hmget(key, 'workspace_id', 'created_at');
    const replies = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => {
      const [[, exists], [error, fields]] = [replies[2 * i], replies[2 * i + 1]];
      if (exists === 0) return { state: 'gone' };
      if (error) return { state: 'bad', problem: 'wrong_type', detail: 'the key holds no hash' };
      const [workspaceId, createdAt] = fields as (string | null)[];
      return judge(workspaceId, createdAt);
    });
  });
}

function judge(workspaceId: string | null, createdAt: string | null): LegacyRecord {
  if (workspaceId === null) return { state: 'bad', problem: 'bad_workspace_id', detail: 'no workspace_id field' };
  if (!ID_PATTERN.test(workspaceId)) {
    return { state: 'bad', problem: 'bad_workspace_id', detail: `workspace_id ${shown(workspaceId)} is not a valid id` };
  }
  if (createdAt === null || !CREATED_AT_PATTERN.test(createdAt)) {
    const detail = `created_at ${createdAt === null ? 'is missing' : `${shown(createdAt)} is not a number of ms`}`;
    return { state: 'bad', problem: 'bad_created_at', detail, workspaceId };
  }
  return { state: 'ok', workspaceId };
}

/** A bad value for a report: enough to recognise it, never a wall of text. */
function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}
