export { DualWriteQueue, DEFAULTS, MAX_LIST_LIMIT } from './queue';
export type {
  ClaimInput,
  DualWriteQueueOptions,
  EnqueueInput,
  EnqueueResult,
  GetJobInput,
  ListJobsInput,
  ListJobsResult,
  Logger,
  ReadyOptions,
  RecoverStalledInput,
  RecoverStalledResult,
  UpdateStatusInput,
  UpdateStatusResult,
} from './queue';
export type { Job } from './job';
export { STAGES, planFor } from './stages';
export type { Stage, StagePlan, Layout } from './stages';
export { JOB_STATUSES } from './validation';
export type { JobStatus } from './validation';
export { defaultLayout, parseQueueEntry, queueEntry, ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, JOB_TYPE_PATTERN } from './keys';
export type { KeyLayout } from './keys';
export * from './errors';
export type { PreloadedScript, RedisClient } from './scripts/registry';
export { SERVICE_COMMANDS, serviceAclRules, serviceKeyPatterns } from './acl';
