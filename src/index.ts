export { DualWriteQueue, DEFAULTS, MAX_LIST_LIMIT } from './queue';
export type {
  ClaimInput,
  DeleteJobInput,
  DeleteJobResult,
  DualWriteQueueOptions,
  ExtendClaimInput,
  ExtendClaimResult,
  MaintainInput,
  MaintainResult,
  RequeueInput,
  RequeueResult,
  Retention,
  EnqueueInput,
  EnqueueResult,
  GetJobInput,
  ListJobsInput,
  ListJobsResult,
  ReadyOptions,
  RecoverStalledInput,
  RecoverStalledResult,
  UpdateStatusInput,
  UpdateStatusResult,
} from './types';
export type { Job } from './job';
export type { Logger } from './logger';
export { STAGES, planFor } from './stages';
export type { Stage, StagePlan, Layout } from './stages';
export { JOB_STATUSES } from './validation';
export type { JobStatus } from './validation';
export { defaultLayout, parseQueueEntry, queueEntry, ID_PATTERN, JOB_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, JOB_TYPE_PATTERN } from './keys';
export type { KeyLayout } from './keys';
export { clusterLayout, HASH_TAG_PATTERN } from './keys';
export { KEY_BUILDERS } from './custom-layout';
export type { KeyBuilderName, KeyLayoutOption } from './custom-layout';
export { keySlot, SLOT_COUNT } from './cluster/slot';
export * from './errors';
export type { PreloadedScript, RedisClient } from './scripts/registry';
export { Migration } from './migrate/migration';
export type { MigrationOptions } from './migrate/migration';
export type { InitStageOptions, SetStageOptions, TransitionResult } from './stage-control/transition';
export type { StageStatus, StatusOptions } from './stage-control/status';
export type { StageRecord, RecordedRun } from './stage-control/record';
export type { StageSettingsInput, StageSettingsResult } from './stage-control/configure';
export { BACKFILL_RESULTS, SKIP_REASONS } from './migrate/backfill';
export type { BackfillMode, BackfillOptions, BackfillReport, BackfillResult, SkipReason } from './migrate/backfill';
export { DIVERGENCE_KINDS } from './migrate/verify';
export type { DivergenceKind, VerifyOptions, VerifyReport } from './migrate/verify';
export { CLEANUP_RESULTS } from './migrate/cleanup';
export type { CleanupOptions, CleanupReport, CleanupResult } from './migrate/cleanup';
export type { MigrationProgress, RunOptions } from './migrate/options';
export type { Sample } from './migrate/tally';
export type { AclRuleOptions } from './acl';
export {
  clientCommandsFor,
  IOREDIS_DEFAULT_COMMANDS,
  IOREDIS_SETINFO_COMMAND,
  MIGRATION_COMMANDS,
  migrationAclRules,
  migrationKeyPatterns,
  SERVICE_COMMANDS,
  serviceAclRules,
  serviceKeyPatterns,
} from './acl';
