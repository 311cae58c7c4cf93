import type Redis from 'ioredis';

/**
 * Memory over a run, as Redis reports it: a sampler that reads INFO memory and the dataset's size
 * every few hundred ms on its own connection, and the figures the soak asserts and reports.
 */

export interface MemorySample {
  /** ms since the sampler started. */
  atMs: number;
  /** INFO memory used_memory: every byte the allocator holds for Redis. */
  usedMemory: number;
  /** INFO memory used_memory_dataset: used_memory without Redis' own overhead. */
  datasetBytes: number;
  /** INFO memory mem_clients_normal: the connections' buffers, part of used_memory. */
  clientsBytes: number;
  /** DBSIZE (keys retention expired but Redis has not reclaimed yet count too). */
  keys: number;
  /** The queue's expiries sorted set: its entries and its bytes (MEMORY USAGE, every entry counted). */
  expiriesEntries: number;
  expiriesBytes: number;
  /** Entries of the workspace indexes watched, summed. */
  indexEntries: number;
}

export interface MemorySampler {
  /** ms since the sampler started, on the samples' clock. */
  now(): number;
  /** Stops sampling, after one last sample; resolves with every sample, in order (or the error that stopped it). */
  stop(): Promise<MemorySample[]>;
}

export function sampleMemory(redis: Redis, options: { everyMs: number; expiriesKey: string; indexKeys: readonly string[] }): MemorySampler {
  const started = Date.now();
  const samples: MemorySample[] = [];
  let stopped = false;
  const take = async (): Promise<void> => {
    const atMs = Date.now() - started;
    const pipeline = redis
      .pipeline()
      .info('memory')
      .dbsize()
      .zcard(options.expiriesKey)
      .call('MEMORY', 'USAGE', options.expiriesKey, 'SAMPLES', '0');
    for (const key of options.indexKeys) pipeline.zcard(key);
    const replies = (await pipeline.exec())!.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
    const info = String(replies[0]);
    samples.push({
      atMs,
      usedMemory: infoField(info, 'used_memory'),
      datasetBytes: infoField(info, 'used_memory_dataset'),
      clientsBytes: infoField(info, 'mem_clients_normal'),
      keys: Number(replies[1]),
      expiriesEntries: Number(replies[2]),
      expiriesBytes: Number(replies[3] ?? 0),
      indexEntries: replies.slice(4).reduce<number>((sum, count) => sum + Number(count), 0),
    });
  };
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      const next = Date.now() + options.everyMs;
      await take();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
    }
  })().catch((error) => {
    failure = error;
  });
  let last: Promise<MemorySample[]> | undefined;
  return {
    now: () => Date.now() - started,
    stop: () =>
      (last ??= (async () => {
        stopped = true;
        await loop;
        if (failure) throw failure;
        await take();
        return samples;
      })()),
  };
}

/** One series over a window: its mean, extremes, and how far the farthest sample strays from the mean. */
export interface SeriesFigures {
  samples: number;
  mean: number;
  min: number;
  max: number;
  /** max |sample - mean| / mean, as a fraction (0.05 is ±5%). */
  maxDeviation: number;
  /** Least-squares slope, in units per second: a leak shows as a steady climb. */
  slopePerSecond: number;
}

export function seriesFigures(samples: readonly MemorySample[], value: (sample: MemorySample) => number): SeriesFigures {
  const values = samples.map(value);
  const n = values.length;
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  const meanT = samples.reduce((sum, s) => sum + s.atMs, 0) / n;
  let covariance = 0;
  let varianceT = 0;
  samples.forEach((sample, i) => {
    covariance += (sample.atMs - meanT) * (values[i] - mean);
    varianceT += (sample.atMs - meanT) ** 2;
  });
  return {
    samples: n,
    mean,
    min: Math.min(...values),
    max: Math.max(...values),
    maxDeviation: mean === 0 ? 0 : Math.max(...values.map((v) => Math.abs(v - mean))) / mean,
    slopePerSecond: varianceT === 0 ? 0 : (covariance / varianceT) * 1000,
  };
}

/** What the soak reports about memory: the run's halves, and where it ended. */
export interface MemoryReport {
  everyMs: number;
  /** The load phase, ms on the samples' clock: producers enqueue at a steady rate in it. */
  loadFromMs: number;
  loadToMs: number;
  /**
   * used_memory before the first job and after the final sweep. Redis 7 keeps a latency histogram
   * per command name it has run (latency-tracking), a one-time cost per name that CONFIG RESETSTAT
   * frees: the baseline is taken after one, and the end figure again after one, so the two compare
   * like with like.
   */
  usedMemoryAt: { baseline: number; final: number; finalWithoutHistograms: number };
  usedMemory: { firstHalf: SeriesFigures; secondHalf: SeriesFigures };
  keys: { firstHalf: SeriesFigures; secondHalf: SeriesFigures };
  expiriesEntries: SeriesFigures;
  expiriesBytes: SeriesFigures;
  indexEntries: SeriesFigures;
  /** Every sample, from the first to the last (the load phase, the drain, the final sweep). */
  series: MemorySample[];
}

export function memoryReport(
  samples: readonly MemorySample[],
  load: { fromMs: number; toMs: number },
  everyMs: number,
  usedMemoryAt: MemoryReport['usedMemoryAt'],
): MemoryReport {
  const middle = (load.fromMs + load.toMs) / 2;
  const firstHalf = samples.filter((s) => s.atMs >= load.fromMs && s.atMs < middle);
  const secondHalf = samples.filter((s) => s.atMs >= middle && s.atMs <= load.toMs);
  const used = (s: MemorySample) => s.usedMemory;
  const keys = (s: MemorySample) => s.keys;
  return {
    everyMs,
    loadFromMs: load.fromMs,
    loadToMs: load.toMs,
    usedMemoryAt,
    usedMemory: { firstHalf: seriesFigures(firstHalf, used), secondHalf: seriesFigures(secondHalf, used) },
    keys: { firstHalf: seriesFigures(firstHalf, keys), secondHalf: seriesFigures(secondHalf, keys) },
    expiriesEntries: seriesFigures(secondHalf, (s) => s.expiriesEntries),
    expiriesBytes: seriesFigures(secondHalf, (s) => s.expiriesBytes),
    indexEntries: seriesFigures(secondHalf, (s) => s.indexEntries),
    series: [...samples],
  };
}

export async function usedMemory(redis: Redis): Promise<number> {
  return infoField(await redis.info('memory'), 'used_memory');
}

function infoField(info: string, field: string): number {
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  if (!match) throw new Error(`INFO has no ${field}`);
  return Number(match[1]);
}
