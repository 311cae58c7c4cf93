import { Counter, Gauge, Histogram, Registry, register as globalRegistry } from 'prom-client';
import { ValidationError } from './errors';

/** Every value of the `operation` label (README "Metrics" lists them; a test keeps it so). */
export const OPERATIONS = [
  'enqueue',
  'enqueue_many',
  'update_status',
  'get_job',
  'list_jobs',
  'claim',
  'recover_stalled',
  'extend_claim',
  'requeue',
  'delete_job',
  'maintain',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Label values come from small fixed sets only: never a workspace or job id. */
export interface Metrics {
  operations: Counter<'operation' | 'outcome'>;
  duration: Histogram<'operation'>;
  readFallbacks: Counter<'operation'>;
  divergences: Counter<'kind'>;
  repairs: Counter<'target'>;
  scriptReloads: Counter<'script'>;
  claims: Counter<'outcome'>;
  finishes: Counter<'status'>;
  stalledRecoveries: Counter;
  orphanedEntries: Counter<'operation'>;
  unsupportedEntries: Counter<'operation'>;
  stage: Gauge<'queue' | 'stage'>;
  stageEpoch: Gauge<'queue'>;
  stageRestarts: Counter<'operation'>;
  requeues: Counter<'from'>;
  deletions: Counter<'forced'>;
  retentionRemovals: Counter;
}

/** Redis calls on loopback take tens of microseconds, so the buckets start at 100 µs. */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const created = new WeakMap<Registry, Metrics>();

/**
 * The metrics on one registry, created on first use and shared by every queue on that registry.
 * A metric another copy of this package already registered is reused, not registered twice.
 */
export function metricsFor(registry: Registry = globalRegistry): Metrics {
  let metrics = created.get(registry);
  if (!metrics) {
    metrics = createMetrics(registry);
    created.set(registry, metrics);
  }
  return metrics;
}

/** The `metrics` option: a registry, prom-client's global one when not given, or none with `false`. */
export type MetricsOption = { registry: Registry } | false | undefined;

/** The queue's metrics for a `metrics` option; with `false`, metrics nobody collects (one code path). */
export function metricsFromOption(option: MetricsOption): Metrics {
  return option === false ? createMetrics(new Registry()) : metricsFor(checkRegistry(option));
}

/** The migration's metrics for the same option. */
export function migrationMetricsFromOption(option: MetricsOption): MigrationMetrics {
  return option === false ? createMigrationMetrics(new Registry()) : migrationMetricsFor(checkRegistry(option));
}

function checkRegistry(option: { registry: Registry } | undefined): Registry | undefined {
  if (option === undefined) return undefined;
  if (typeof option?.registry?.getSingleMetric !== 'function') {
    throw new ValidationError('metrics', 'type', 'must be { registry: Registry } from prom-client, or false');
  }
  return option.registry;
}

function createMetrics(registry: Registry): Metrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] });
  const durationName = 'dualwrite_operation_duration_seconds';
  return {
    operations: counter(
      'dualwrite_operations_total',
      'Queue operations by outcome: ok, replay, not_found, an error code in lower case, or error',
      ['operation', 'outcome'],
    ),
    duration:
      (registry.getSingleMetric(durationName) as Histogram<'operation'> | undefined) ??
      new Histogram({
        name: durationName,
        help: 'Time from call to answer, Redis round trips included',
        labelNames: ['operation'],
        buckets: DURATION_BUCKETS,
        registers: [registry],
      }),
    readFallbacks: counter(
      'dualwrite_read_fallbacks_total',
      'Reads served from the legacy layout because the new record was absent',
      ['operation'],
    ),
    divergences: counter(
      'dualwrite_divergences_total',
      'Differences between the layouts seen by reads and writes: missing_new, missing_legacy, field_mismatch, index_orphan, corrupt_record, job_id_collision',
      ['kind'],
    ),
    repairs: counter(
      'dualwrite_repairs_total',
      'Records an update copied into the layout that lacked them, by target layout',
      ['target'],
    ),
    scriptReloads: counter(
      'dualwrite_script_reloads_total',
      'NOSCRIPT answers recovered by resending the script body (restart, failover, SCRIPT FLUSH)',
      ['script'],
    ),
    claims: counter(
      'dualwrite_claims_total',
      'Claims by outcome: claimed, empty (a claim call that found nothing queued, however long it waited), skipped (an entry of a job not queued, dropped)',
      ['outcome'],
    ),
    finishes: counter(
      'dualwrite_finishes_total',
      'Claimed jobs finished by an update to a terminal status',
      ['status'],
    ),
    stalledRecoveries: counter(
      'dualwrite_stalled_recoveries_total',
      'Claimed jobs put back on the queue because their visibility timeout passed',
      [],
    ),
    orphanedEntries: counter(
      'dualwrite_orphaned_entries_total',
      'Queue or processing entries whose job record is missing, moved to the orphans list',
      ['operation'],
    ),
    unsupportedEntries: counter(
      'dualwrite_unsupported_entries_total',
      'Queue or processing entries the package cannot place (an id or workspace_id outside the whitelist), set aside',
      ['operation'],
    ),
    stage:
      (registry.getSingleMetric('dualwrite_stage') as Gauge<'queue' | 'stage'> | undefined) ??
      new Gauge({
        name: 'dualwrite_stage',
        help: 'The migration stage each queue runs in: 1 for the current stage, 0 for the others',
        labelNames: ['queue', 'stage'],
        registers: [registry],
      }),
    stageEpoch:
      (registry.getSingleMetric('dualwrite_stage_epoch') as Gauge<'queue'> | undefined) ??
      new Gauge({
        name: 'dualwrite_stage_epoch',
        help: "The stage record's epoch each managed queue last ran under: instances that disagree for long are on a stale view",
        labelNames: ['queue'],
        registers: [registry],
      }),
    stageRestarts: counter(
      'dualwrite_stage_restarts_total',
      'Calls spanning several scripts that started over because the stage changed under them (managed mode)',
      ['operation'],
    ),
    requeues: counter('dualwrite_requeues_total', 'Jobs put back on the queue, by the status they had: failed, cancelled, running', ['from']),
    deletions: counter('dualwrite_deletions_total', 'Jobs deleted whole, forced past a worker holding them or not', ['forced']),
    retentionRemovals: counter(
      'dualwrite_retention_removals_total',
      "Finished jobs retention removed whose index and side entries maintain() then swept",
      [],
    ),
  };
}

/**
 * What backfill, verify and cleanup report, on the same registry as the queue's metrics. Kept apart
 * from Metrics so a service that only runs the queue exports no idle migration series.
 */
export interface MigrationMetrics {
  backfillJobs: Counter<'result'>;
  cleanupJobs: Counter<'result'>;
  verifyDivergences: Gauge<'kind'>;
  progress: Gauge<'operation'>;
}

const createdMigration = new WeakMap<Registry, MigrationMetrics>();

/** Created on first use per registry, like metricsFor; reused when already registered. */
export function migrationMetricsFor(registry: Registry = globalRegistry): MigrationMetrics {
  let metrics = createdMigration.get(registry);
  if (!metrics) {
    metrics = createMigrationMetrics(registry);
    createdMigration.set(registry, metrics);
  }
  return metrics;
}


function createMigrationMetrics(registry: Registry): MigrationMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
    (registry.getSingleMetric(name) as Gauge<L> | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] });
  return {
    backfillJobs: counter(
      'dualwrite_backfill_jobs_total',
      'Legacy jobs a backfill examined, by result: copied, resynced, same, conflict, skipped, gone',
      ['result'],
    ),
    cleanupJobs: counter(
      'dualwrite_cleanup_jobs_total',
      'Legacy jobs a cleanup examined, by result: deleted, would_delete (dry run), kept',
      ['result'],
    ),
    verifyDivergences: gauge(
      'dualwrite_verify_divergences',
      'Divergences the last completed verify found, by kind (0 when clean)',
      ['kind'],
    ),
    progress: gauge(
      'dualwrite_migration_progress_ratio',
      'Estimated share of the keyspace a running backfill, verify or cleanup has walked (0 to 1)',
      ['operation'],
    ),
  };
}
