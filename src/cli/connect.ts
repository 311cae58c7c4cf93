import Redis from 'ioredis';
import { RedisUnavailableError } from '../errors';
import { DEFAULT_URL } from './commands';

/** --url, else $REDIS_URL, else the local default. */
export function redisUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env.REDIS_URL ?? DEFAULT_URL;
}

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

/**
 * A client for one command run: not connected until `connect()`, giving up after a few quick
 * retries (a command should fail, not hang, when Redis is away).
 */
export function createClient(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt) => (attempt > 3 ? null : attempt * 200),
    // disconnect() arms this timer even for a socket that never opened: keep it short so a
    // failed command does not linger.
    disconnectTimeout: 100,
  });
  // Errors reach the caller through the rejected command; the event would only be logged twice.
  redis.on('error', () => {});
  return redis;
}

export async function connect(redis: Redis, url: string): Promise<void> {
  try {
    await redis.connect();
  } catch (error) {
    throw new RedisUnavailableError(`cannot reach Redis at ${redactUrl(url)}: ${(error as Error).message}`, error);
  }
}
