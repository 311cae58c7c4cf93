import type { Registry } from 'prom-client';
import type { KeyLayoutOption } from '../custom-layout';
import { checkPattern, KEY_PREFIX_PATTERN } from '../keys';
import { checkLogger, type Logger } from '../logger';
import { DualWriteQueue, DEFAULTS } from '../queue';
import type { ReadyOptions } from '../types';
import { ScriptRegistry, type PreloadedScript, type RedisClient } from '../scripts/registry';
import type { Stage } from '../stages';
import { metricsFromOption, migrationMetricsFromOption } from '../telemetry';
import { checkObject, rejectUnknownFields } from '../validation';
import { backfill, type BackfillOptions, type BackfillReport } from './backfill';
import { cleanup, type CleanupOptions, type CleanupReport } from './cleanup';
import type { MigrationContext } from './context';
import { excludeMatcher } from './exclude';
import { migrationLayout } from './layout';
import { verify, type VerifyOptions, type VerifyReport } from './verify';

export interface MigrationOptions {
  /** An ioredis client the caller owns; on a Cluster every walk scans each master in turn. */
  redis: RedisClient;
  /** The stage the service runs in now: it decides what each step may do and what verify checks. */
  stage: Stage;
  queueName?: string;
  keyPrefix?: string;
  /**
   * The service's key layout, as given to DualWriteQueue. The walks read keys backwards, so each
   * builder must put each id into its key once, unchanged, between fixed text (the default layout
   * and clusterLayout do).
   */
  keys?: KeyLayoutOption;
  metrics?: { registry: Registry } | false;
  logger?: Logger;
  /**
   * Redis glob patterns, matched against the whole key (prefix included), of keys under the
   * layout's patterns that are not part of it: a legacy service's `job:<id>:meta` hashes, say.
   * Backfill, verify and cleanup pass them over, and count them in their reports.
   */
  exclude?: string[];
}

/**
 * The operator's steps of a migration: backfill the jobs written before dual writes, verify the
 * layouts are equal, and clean up the legacy keys once complete. Options mean what they mean for
 * DualWriteQueue, and are checked the same way.
 */
export class Migration {
  readonly stage: Stage;
  readonly queueName: string;
  readonly keyPrefix: string;
  private readonly queue: DualWriteQueue;
  private readonly context: MigrationContext;

  constructor(options: MigrationOptions) {
    rejectUnknownFields('options', checkObject('options', options), [
      'redis', 'stage', 'queueName', 'keyPrefix', 'keys', 'metrics', 'logger', 'exclude',
    ]);
    const isExcluded = excludeMatcher(options.exclude);
    // The queue validates the shared options (on a Cluster, that the layout keeps each operation in
    // one slot) and knows how to check the server and preload scripts.
    const { exclude: _exclude, ...queueOptions } = options;
    this.queue = new DualWriteQueue(queueOptions);
    this.stage = this.queue.stage;
    this.queueName = this.queue.queueName;
    this.keyPrefix = checkPattern('keyPrefix', options.keyPrefix ?? DEFAULTS.keyPrefix, KEY_PREFIX_PATTERN);
    const logger = checkLogger(options.logger);
    this.context = {
      redis: options.redis,
      stage: this.stage,
      queueName: this.queueName,
      keys: migrationLayout(this.queue.keys, this.queueName),
      scripts: new ScriptRegistry(options.redis, metricsFromOption(options.metrics), logger),
      metrics: migrationMetricsFromOption(options.metrics),
      logger,
      isExcluded,
    };
  }

  /** Checks the server (Redis 7+, eviction policy) and preloads every script, as the queue does. */
  ready(options?: ReadyOptions): Promise<PreloadedScript[]> {
    return this.queue.ready(options);
  }

  /** Copies legacy jobs missing from the new layout; resumable, rate-limited, never overwrites. */
  backfill(options?: BackfillOptions): Promise<BackfillReport> {
    return backfill(this.context, options);
  }

  /** Compares the layouts, the indexes and the queue; reads only. */
  verify(options?: VerifyOptions): Promise<VerifyReport> {
    return verify(this.context, options);
  }

  /** In stage complete, after a clean verify of its own: deletes legacy job keys (with yes: true). */
  cleanup(options?: CleanupOptions): Promise<CleanupReport> {
    return cleanup(this.context, options);
  }
}
