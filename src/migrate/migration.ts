import type { Registry } from 'prom-client';
import type { KeyLayoutOption } from '../custom-layout';
import { checkPattern, KEY_PREFIX_PATTERN } from '../keys';
import { checkLogger, type Logger } from '../logger';
import { DualWriteQueue, DEFAULTS } from '../queue';
import type { ReadyOptions } from '../types';
import { ScriptRegistry, type PreloadedScript, type RedisClient } from '../scripts/registry';
import { StageSource } from '../stage-control/source';
import { recordRun } from '../stage-control/runs';
import {
  initStage,
  setStage,
  type InitStageOptions,
  type SetStageOptions,
  type TransitionResult,
} from '../stage-control/transition';
import { stageStatus, type StageStatus, type StatusOptions } from '../stage-control/status';
import { configureStage, type StageSettingsInput, type StageSettingsResult } from '../stage-control/configure';
import type { Stage, StageOption } from '../stages';
import { metricsFromOption, migrationMetricsFromOption } from '../telemetry';
import { checkObject, rejectUnknownFields } from '../validation';
import { backfill, backfillSummary, type BackfillOptions, type BackfillReport } from './backfill';
import { cleanup, cleanupSummary, type CleanupOptions, type CleanupReport } from './cleanup';
import { beginRun, type MigrationBase, type MigrationContext } from './context';
import { excludeMatcher } from './exclude';
import { migrationLayout } from './layout';
import { verify, verifySummary, type VerifyOptions, type VerifyReport } from './verify';
import { StageChangedError } from '../errors';
import type { RunKind } from '../stage-control/record';

export interface MigrationOptions {
  /** An ioredis client the caller owns; on a Cluster every walk scans each master in turn. */
  redis: RedisClient;
  /**
   * 'managed': the stage lives in the layout's stage record; every step reads it when it starts,
   * pins its batches to that epoch, and writes its result into the record for the transition
   * guards. A stage name: the stage the service runs in now (static mode), nothing recorded.
   */
  stage: StageOption;
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
 * The operator's side of a migration: backfill the jobs written before dual writes, verify the
 * layouts are equal, clean up the legacy keys once complete, and (managed mode) move the whole
 * fleet from stage to stage through the layout's stage record. Options mean what they mean for
 * DualWriteQueue, and are checked the same way.
 */
export class Migration {
  /** 'managed', or the static stage this migration was built for. */
  readonly stage: StageOption;
  readonly queueName: string;
  readonly keyPrefix: string;
  private readonly queue: DualWriteQueue;
  private readonly base: MigrationBase;

  constructor(options: MigrationOptions) {
    rejectUnknownFields('options', checkObject('options', options), [
      'redis', 'stage', 'queueName', 'keyPrefix', 'keys', 'metrics', 'logger', 'exclude',
    ]);
    const isExcluded = excludeMatcher(options.exclude);
    // The queue validates the shared options (on a Cluster, that the layout keeps each operation in
    // one slot) and knows how to check the server and preload scripts. It never beats: the
    // migration is no service instance.
    const { exclude: _exclude, ...queueOptions } = options;
    this.queue = new DualWriteQueue({ ...queueOptions, heartbeat: false });
    this.stage = options.stage;
    this.queueName = this.queue.queueName;
    this.keyPrefix = checkPattern('keyPrefix', options.keyPrefix ?? DEFAULTS.keyPrefix, KEY_PREFIX_PATTERN);
    const logger = checkLogger(options.logger);
    const keys = migrationLayout(this.queue.keys, this.queueName);
    this.base = {
      redis: options.redis,
      queueName: this.queueName,
      keys,
      scripts: new ScriptRegistry(options.redis, metricsFromOption(options.metrics), logger),
      metrics: migrationMetricsFromOption(options.metrics),
      logger,
      isExcluded,
      stages: new StageSource(options.stage, keys.stage()),
      stageKey: keys.stage(),
    };
  }

  /** Checks the server (Redis 7+, eviction policy) and preloads every script, as the queue does. */
  ready(options?: ReadyOptions): Promise<PreloadedScript[]> {
    return this.queue.serverReady(options);
  }

  /** Where an interrupted backfill of this queue keeps its place. */
  get checkpointKey(): string {
    return this.base.keys.checkpoint(this.queueName);
  }

  /** Copies legacy jobs missing from the new layout; resumable, rate-limited, never overwrites. */
  backfill(options?: BackfillOptions): Promise<BackfillReport> {
    return this.recorded('backfill', (run) => backfill(run, options), backfillSummary);
  }

  /** Compares the layouts, the indexes and the queue; reads only. */
  verify(options?: VerifyOptions): Promise<VerifyReport> {
    return this.recorded('verify', (run) => verify(run, options), verifySummary);
  }

  /** In stage complete, after a clean verify of its own: deletes legacy job keys (with yes: true). */
  cleanup(options?: CleanupOptions): Promise<CleanupReport> {
    return this.recorded('cleanup', (run) => cleanup(run, options), cleanupSummary, (report) => (report.dryRun ? 0 : report.results.deleted));
  }

  /** Creates the layout's stage record at `stage`; refused when one exists. */
  initStage(stage: Stage, options: InitStageOptions): Promise<TransitionResult> {
    return initStage(this.base, stage, options);
  }

  /** Moves the whole fleet to `to`, through the transition guards (see README "Stage control"). */
  setStage(to: Stage, options: SetStageOptions): Promise<TransitionResult> {
    return setStage(this.base, to, options);
  }

  /**
   * Changes the settings every managed instance shares, in the stage record: how long a clean verify
   * counts, and retention (how long finished jobs stay). Not a transition: the stage stays.
   */
  configure(settings: StageSettingsInput): Promise<StageSettingsResult> {
    return configureStage(this.base, settings);
  }

  /** Where the migration stands: the record, its history, the last runs, the instances, the next step. */
  status(options?: StatusOptions): Promise<StageStatus> {
    return stageStatus(this.base, options);
  }

  /**
   * One run of a step under one stage: in managed mode its result goes into the stage record as it
   * finishes, or as the stage changing under it stops it.
   */
  private async recorded<R>(
    kind: RunKind,
    step: (run: MigrationContext) => Promise<R>,
    summary: (report: R) => Record<string, unknown>,
    deleted: (report: R) => number = () => 0,
  ): Promise<R> {
    const run = await beginRun(this.base, kind);
    const startedAt = Date.now();
    let report: R;
    try {
      report = await step(run);
    } catch (error) {
      if (error instanceof StageChangedError) await recordRun(run, kind, { completed: false, stoppedBy: 'stage_changed', startedAt });
      throw error;
    }
    await recordRun(run, kind, { ...summary(report), startedAt }, deleted(report));
    return report;
  }
}
