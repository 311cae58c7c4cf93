import { ValidationError } from '../errors';
import { checkInteger, checkObject } from '../validation';

/** Where a long run stands, for progress bars and logs. */
export interface MigrationProgress {
  operation: 'backfill' | 'verify' | 'cleanup';
  /** The structure being walked: 'legacy' and 'new' job layouts, the workspace 'index'es, the 'queue'. */
  phase: 'legacy' | 'new' | 'index' | 'queue';
  /** Items of this phase examined so far. */
  done: number;
  /** Estimated share of this phase done (0 to 1), or null when unknown. */
  fraction: number | null;
}

/** What backfill, verify and cleanup all take. */
export interface RunOptions {
  /** Stops the run after the batch in flight; the report then says completed: false. */
  signal?: AbortSignal;
  onProgress?: (progress: MigrationProgress) => void;
  /** Jobs per script call (1 to 500, default 200): bounds how long one call holds the server. */
  batchSize?: number;
  /** At most this many jobs per second on average (default: no limit). */
  rateLimit?: number;
  /** Samples kept per kind in the report (0 to 1000, default 10). */
  sampleLimit?: number;
}

export interface CheckedRunOptions {
  signal?: AbortSignal;
  onProgress: (progress: MigrationProgress) => void;
  batchSize: number;
  rateLimit?: number;
  sampleLimit: number;
}

export const RUN_DEFAULTS = { batchSize: 200, sampleLimit: 10 } as const;
export const MAX_BATCH_SIZE = 500;

/** Validates the shared options and any extra ones the step names; an unknown name is refused. */
export function checkRunOptions(options: unknown, extra: readonly string[] = []): CheckedRunOptions & Record<string, unknown> {
  const o = checkObject('options', options ?? {});
  const known = ['signal', 'onProgress', 'batchSize', 'rateLimit', 'sampleLimit', ...extra];
  for (const name of Object.keys(o)) {
    if (!known.includes(name)) {
      throw new ValidationError(`options.${name}`, 'unknown-field', `is not a known field (known: ${known.join(', ')})`);
    }
  }
  const signal = o.signal as AbortSignal | undefined;
  if (signal !== undefined && typeof signal?.aborted !== 'boolean') {
    throw new ValidationError('signal', 'type', 'must be an AbortSignal');
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new ValidationError('onProgress', 'type', 'must be a function');
  }
  const rateLimit = o.rateLimit;
  if (rateLimit !== undefined && (typeof rateLimit !== 'number' || !Number.isFinite(rateLimit) || rateLimit <= 0)) {
    throw new ValidationError('rateLimit', 'range', 'must be a number of jobs per second above 0');
  }
  return {
    ...o,
    signal,
    onProgress: (o.onProgress as CheckedRunOptions['onProgress'] | undefined) ?? (() => {}),
    batchSize: checkInteger('batchSize', o.batchSize ?? RUN_DEFAULTS.batchSize, 1, MAX_BATCH_SIZE),
    rateLimit: rateLimit as number | undefined,
    sampleLimit: checkInteger('sampleLimit', o.sampleLimit ?? RUN_DEFAULTS.sampleLimit, 0, 1000),
  };
}
