import type Redis from 'ioredis';

/**
 * One key as the tests see it: its type, its whole value, and when it expires (absolute ms, from
 * PEXPIRETIME) if it does. An absolute time stays equal between two snapshots however slow the
 * machine; a remaining TTL would tick down between them.
 */
export type KeyState =
  | { type: 'string'; value: string; expiresAt?: number }
  | { type: 'hash'; value: Record<string, string>; expiresAt?: number }
  | { type: 'list'; value: string[]; expiresAt?: number }
  | { type: 'zset'; value: [string, number][]; expiresAt?: number }
  | { type: 'set'; value: string[]; expiresAt?: number };

/**
 * Every key in the database with its whole value: tests compare it to the full state they expect,
 * so a stray or half-written key fails them.
 */
export async function redisState(redis: Redis): Promise<Record<string, KeyState>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const state: Record<string, KeyState> = {};
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    let entry: KeyState;
    switch (type) {
      case 'string':
        entry = { type, value: (await redis.get(key)) ?? '' };
        break;
      case 'hash':
        entry = { type, value: await redis.hgetall(key) };
        break;
      case 'list':
        entry = { type, value: await redis.lrange(key, 0, -1) };
        break;
      case 'zset': {
        const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
        const pairs: [string, number][] = [];
        for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], Number(flat[i + 1])]);
        entry = { type, value: pairs };
        break;
      }
      case 'set':
        entry = { type, value: (await redis.smembers(key)).sort() };
        break;
      default:
        throw new Error(`redisState: key ${key} has type ${type}, which the tests do not expect`);
    }
    const expiresAt = Number(await redis.call('PEXPIRETIME', key));
    if (expiresAt >= 0) entry.expiresAt = expiresAt;
    state[key] = entry;
  }
  return state;
}

export const hash = (value: Record<string, string>): KeyState => ({ type: 'hash', value });
export const list = (...value: string[]): KeyState => ({ type: 'list', value });
export const zset = (...value: [string, number][]): KeyState => ({ type: 'zset', value });
export const str = (value: string): KeyState => ({ type: 'string', value });

/** A job record as the tests arrange or expect it, before it becomes hash fields. */
export interface JobRecord {
  id: string;
  workspaceId: string;
  type: string;
  payload: unknown;
  status: string;
  createdAt: number;
  updatedAt: number;
  /** Claims so far; a record holds the field once a claim counted one (0 means no field). */
  attempts?: number;
  error?: string;
  /** Stored as JSON. */
  result?: unknown;
  /** The idempotency key the job was made with, kept on it. */
  idempotencyKey?: string;
}

/** The hash fields a job record holds, as the scripts write them. */
export function jobFields(job: JobRecord): Record<string, string> {
  return {
    id: job.id,
    workspace_id: job.workspaceId,
    type: job.type,
    payload: JSON.stringify(job.payload),
    status: job.status,
    created_at: String(job.createdAt),
    updated_at: String(job.updatedAt),
    ...(job.attempts ? { attempts: String(job.attempts) } : {}),
    ...(job.error !== undefined ? { error: job.error } : {}),
    ...(job.result !== undefined ? { result: JSON.stringify(job.result) } : {}),
    ...(job.idempotencyKey !== undefined ? { idempotency_key: job.idempotencyKey } : {}),
  };
}

export const jobHash = (job: JobRecord): KeyState => hash(jobFields(job));

/** Writes a job record straight into Redis, as a pre-package or half-migrated deployment left it. */
export async function putJob(redis: Redis, key: string, job: JobRecord): Promise<void> {
  await redis.hset(key, jobFields(job));
}
