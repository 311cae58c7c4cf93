import type { Redis } from 'ioredis';

/**
 * Faults injected through the server itself: the script cache emptied on a timer, and memory
 * capped. Both take an admin connection to a private Redis on loopback (they refuse any other,
 * since they would harm a shared server), and both end by themselves.
 * Killing the server is on the handle: `RedisHandle.crash()`.
 */

export interface ScriptFlusher {
  /** SCRIPT FLUSH calls made so far. */
  readonly flushes: number;
  /** Settles with the number of flushes once the count is spent or the time is up. */
  readonly done: Promise<number>;
  /** Stops early; settles like `done`. */
  stop(): Promise<number>;
}

/** Runs SCRIPT FLUSH every `everyMs` for `forMs` (at most 10 minutes) or `maxFlushes` times. */
export function flushScriptsEvery(
  redis: Redis,
  options: { everyMs?: number; forMs: number; maxFlushes?: number },
): ScriptFlusher {
  assertLoopback(redis);
  const everyMs = options.everyMs ?? 50;
  const maxFlushes = options.maxFlushes ?? 100_000;
  if (!(everyMs >= 1 && options.forMs >= 0 && options.forMs <= 600_000 && maxFlushes >= 1)) {
    throw new RangeError('everyMs >= 1, forMs 0..600000 and maxFlushes >= 1');
  }
  let flushes = 0;
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const timer = setInterval(() => {
    flushes++;
    if (flushes >= maxFlushes) finish();
    // A flush that fails (say, the server is being restarted) is still a flush attempt: go on.
    redis.script('FLUSH').catch(() => {});
  }, everyMs);
  const deadline = setTimeout(finish, options.forMs);
  const done = ended.then(() => {
    clearInterval(timer);
    clearTimeout(deadline);
    return flushes;
  });
  return {
    get flushes() {
      return flushes;
    },
    done,
    stop() {
      finish();
      return done;
    },
  };
}

export interface MemoryCap {
  /** Puts maxmemory and maxmemory-policy back as they were; safe to call twice. */
  restore(): Promise<void>;
}

/**
 * Caps the server's memory at `bytes` under `policy` (default noeviction), and puts the previous
 * settings back after `restoreAfterMs` (default 60 s, at most 10 minutes) unless restored before.
 */
export async function setMaxMemory(
  redis: Redis,
  options: { bytes: number; policy?: string; restoreAfterMs?: number },
): Promise<MemoryCap> {
  assertLoopback(redis);
  const restoreAfterMs = options.restoreAfterMs ?? 60_000;
  if (!(Number.isInteger(options.bytes) && options.bytes >= 1 && restoreAfterMs >= 0 && restoreAfterMs <= 600_000)) {
    throw new RangeError('bytes must be a positive integer and restoreAfterMs 0..600000');
  }
  const [, previousBytes] = (await redis.config('GET', 'maxmemory')) as string[];
  const [, previousPolicy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
  await redis.config('SET', 'maxmemory-policy', options.policy ?? 'noeviction');
  await redis.config('SET', 'maxmemory', String(options.bytes));
  let restored: Promise<void> | undefined;
  const restore = () =>
    (restored ??= (async () => {
      clearTimeout(timer);
      await redis.config('SET', 'maxmemory', previousBytes);
      await redis.config('SET', 'maxmemory-policy', previousPolicy);
    })());
  const timer = setTimeout(() => void restore().catch(() => {}), restoreAfterMs);
  timer.unref();
  return { restore };
}

/** Bytes the server holds now, as INFO memory reports them (used_memory). */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function assertLoopback(redis: Redis): void {
  const { host, path } = redis.options;
  if (path || LOOPBACK.has(host ?? 'localhost')) return;
  throw new Error(`server faults are only injected into a Redis on loopback, not ${host}`);
}
