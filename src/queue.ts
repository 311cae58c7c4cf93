import { isCluster, serversOf } from './cluster/nodes';
import { checkClusterLayout } from './cluster/single-slot';
import { claimNext, recoverStalledJobs } from './consumer';
import { resolveLayout } from './custom-layout';
import {
  DualWriteError,
  EvictionPolicyError,
  PermissionError,
  StageUnsetError,
  RedisUnavailableError,
  UnsupportedRedisError,
  ValidationError,
} from './errors';
import type { Job } from './job';
import { atIndex, prepareJob, type PreparedJob } from './job-input';
import { checkPattern, ID_PATTERN, JOB_ID_PATTERN, KEY_PREFIX_PATTERN, QUEUE_NAME_PATTERN, type KeyLayout } from './keys';
import { deleteJob, extendClaim, maintain, requeueJob } from './lifecycle';
import { checkLogger, type Logger } from './logger';
import { countForeignLegacy, countRepair, SCRIPT, type QueueContext } from './queue-context';
import { decodeCursor, listJobPage, readJobs } from './reads';
import { errorForReply, translateRedisError } from './scripts/replies';
import { ScriptRegistry, type PreloadedScript, type RedisClient } from './scripts/registry';
import { defaultInstanceId, Heartbeat } from './stage-control/heartbeat';
import { readStageRecord } from './stage-control/record';
import { StageSource } from './stage-control/source';
import { runStaged } from './stage-control/run';
import { assertStage, assertStageOption, STAGES, type Stage } from './stages';
import { metricsFromOption, type Metrics, type Operation } from './telemetry';
import type {
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
import {
  checkInteger,
  checkObject,
  checkRetention,
  checkStatus,
  checkText,
  optional,
  rejectUnknownFields,
  RETENTION_STATUSES,
  serialisePayload,
  type JobStatus,
} from './validation';

export const DEFAULTS = {
  queueName: 'default',
  keyPrefix: '',
  idempotencyTtlSeconds: 86_400,
  maxPayloadBytes: 1024 * 1024,
  listLimit: 50,
  readyTimeoutMs: 5_000,
  visibilityTimeoutMs: 30_000,
  heartbeatMs: 5_000,
} as const;
export const MAX_LIST_LIMIT = 1000;

const MAX_RECOVER_LIMIT = 100;
/** A worker's error (and a requeue's reason) is stored on the job: bounded like an id, not like a payload. */
const MAX_ERROR_CHARS = 4096;
export const MAX_BATCH_JOBS = 1000;
/** All payloads of one enqueueMany together: a bound on what one script call carries. */
const MAX_BATCH_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** How often claim looks again while it waits for a job: from 10 ms, doubling, to 200 ms. */
const CLAIM_POLL_MS = { first: 10, max: 200 };
const UPDATE_STATUS_FIELDS = ['workspaceId', 'jobId', 'status', 'expectedStatus', 'workerId', 'error', 'result'] as const;
const GET_JOB_FIELDS = ['workspaceId', 'jobId'] as const;
/** The outcome label of an operation that went through; a failed one is labelled by its error. */
type Outcome = 'ok' | 'replay' | 'not_found' | 'empty';

export class DualWriteQueue {
  readonly queueName: string;
  private readonly stages: StageSource;
  private readonly redis: RedisClient;
  /** Where this queue's records live (the layout's key builders, with ids already validated). */
  readonly keys: KeyLayout;
  private readonly idempotencyTtlSeconds: number;
  private readonly maxPayloadBytes: number;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly scripts: ScriptRegistry;
  private readonly context: QueueContext;
  private readonly heartbeat: Heartbeat | undefined;

  constructor(options: DualWriteQueueOptions) {
    const o = checkObject('options', options);
    rejectUnknownFields('options', o, [
      'redis', 'queueName', 'stage', 'keyPrefix', 'keys', 'idempotencyTtlSeconds', 'maxPayloadBytes', 'metrics', 'logger',
      'heartbeat', 'instanceId', 'retention',
    ]);
    if (typeof (o.redis as RedisClient | undefined)?.evalsha !== 'function') {
      throw new ValidationError('redis', 'type', 'must be an ioredis Redis or Cluster client');
    }
    this.redis = o.redis as RedisClient;
    this.queueName = checkPattern('queueName', o.queueName ?? DEFAULTS.queueName, QUEUE_NAME_PATTERN);
    const stageOption = assertStageOption(o.stage);
    const keyPrefix = checkPattern('keyPrefix', o.keyPrefix ?? DEFAULTS.keyPrefix, KEY_PREFIX_PATTERN);
    this.keys = resolveLayout(o.keys, keyPrefix, this.queueName);
    // Refused now, not at the first enqueue: on a Cluster a layout that splits an operation over
    // slots could never run it atomically.
    if (isCluster(this.redis)) checkClusterLayout(this.keys, this.queueName);
    this.idempotencyTtlSeconds = checkInteger(
      'idempotencyTtlSeconds', o.idempotencyTtlSeconds ?? DEFAULTS.idempotencyTtlSeconds, 1, 2 ** 31 - 1,
    );
    this.maxPayloadBytes = checkInteger(
      'maxPayloadBytes', o.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes, 2, 512 * 1024 * 1024,
    );
    this.metrics = metricsFromOption(options.metrics);
    this.logger = checkLogger(options.logger);
    this.stages = new StageSource(stageOption, this.keys.stage(), (stage, epoch, previous) => this.seeStage(stage, epoch, previous));
    if (stageOption !== 'managed') this.seeStage(stageOption, '', undefined);
    this.scripts = new ScriptRegistry(this.redis, this.metrics, this.logger);
    const retention = optional(o.retention, (v) => checkRetention('retention', v)) ?? {};
    if (stageOption === 'managed' && o.retention !== undefined) {
      throw new ValidationError('retention', 'managed', 'a managed queue reads retention from the stage record: set it with Migration.configure or `redis-dual-write stage config`');
    }
    const heartbeat = checkHeartbeat(o.heartbeat);
    const instanceId = optional(o.instanceId, (v) => checkPattern('instanceId', v, ID_PATTERN)) ?? defaultInstanceId();
    this.heartbeat = heartbeat
      ? new Heartbeat(this.scripts, this.keys, instanceId, this.queueName, this.stages, heartbeat.intervalMs, this.logger)
      : undefined;
    this.context = {
      redis: this.redis,
      queueName: this.queueName,
      keys: this.keys,
      scripts: this.scripts,
      metrics: this.metrics,
      logger: this.logger,
      stages: this.stages,
      stageKey: this.keys.stage(),
      queueKey: this.keys.queue(this.queueName),
      processingKey: this.keys.processing(this.queueName),
      claimsKey: this.keys.claims(this.queueName),
      expiriesKey: this.keys.expiries(this.queueName),
      staticRetention: RETENTION_STATUSES.map((status) => String(retention[status] ?? '')),
    };
  }

  /**
   * The stage calls run under: in static mode the one given; in managed mode the one the last
   * script read from the stage record (undefined until the first call or ready()).
   */
  get stage(): Stage | undefined {
    return this.stages.stage;
  }

  /** 'managed' when the stage lives in the layout's stage record, else 'static'. */
  get stageMode(): 'static' | 'managed' {
    return this.stages.mode;
  }

  /** The stage record's epoch the last script ran under; '' in static mode. */
  get epoch(): string {
    return this.stages.epoch;
  }

  /**
   * Static mode only: takes effect for calls made from now on; a call in flight keeps the stage it
   * started with. A managed queue's stage lives in Redis: this is then a ValidationError.
   */
  setStage(stage: Stage): void {
    this.stages.setStatic(assertStage(stage));
  }

  /** dualwrite_stage and dualwrite_stage_epoch let dashboards and alerts tell the stages apart. */
  private seeStage(current: Stage, epoch: string, previous: Stage | undefined): void {
    if (previous !== undefined) this.logger.info('redis-dual-write: stage changed', { from: previous, to: current, epoch });
    for (const stage of STAGES) this.metrics.stage.set({ queue: this.queueName, stage }, stage === current ? 1 : 0);
    if (epoch !== '') this.metrics.stageEpoch.set({ queue: this.queueName }, Number(epoch));
  }

  /**
   * Checks the server is Redis 7.0 or later and will not evict jobs, then preloads every script,
   * proving each sha1. A managed queue also reads the stage record, so a missing one is a
   * StageUnsetError at startup rather than at the first call.
   */
  async ready(options: ReadyOptions = {}): Promise<PreloadedScript[]> {
    return this.prepare(options, true);
  }

  /** ready() without reading the stage record: what Migration needs, which may be about to create it. */
  serverReady(options: ReadyOptions = {}): Promise<PreloadedScript[]> {
    return this.prepare(options, false);
  }

  private async prepare(options: ReadyOptions, withStage: boolean): Promise<PreloadedScript[]> {
    const o = checkObject('options', options);
    rejectUnknownFields('options', o, ['timeoutMs', 'evictionPolicy']);
    const timeoutMs = checkInteger('timeoutMs', o.timeoutMs ?? DEFAULTS.readyTimeoutMs, 1, 3_600_000);
    const evictionPolicy = o.evictionPolicy ?? 'warn';
    if (evictionPolicy !== 'warn' && evictionPolicy !== 'throw') {
      throw new ValidationError('evictionPolicy', 'one-of', "must be 'warn' or 'throw'");
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms (client status: ${this.redis.status})`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.checkServer(evictionPolicy, withStage), timeout]);
    } catch (error) {
      if (error instanceof DualWriteError) throw error;
      throw new RedisUnavailableError(`Redis refused the readiness check: ${(error as Error).message}`, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkServer(evictionPolicy: 'warn' | 'throw', withStage: boolean): Promise<PreloadedScript[]> {
    // Each master of a Cluster holds jobs of its own slots: every one must run scripts and keep jobs.
    for (const server of await serversOf(this.redis)) {
      const info = await this.serverInfo(server.redis);
      if (!info) break;
      const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
      if (!(Number(version.split('.')[0]) >= 7)) throw new UnsupportedRedisError(version);
      const policy = /maxmemory_policy:([^\r\n]+)/.exec(info)?.[1] ?? 'noeviction';
      if (policy !== 'noeviction') {
        if (evictionPolicy === 'throw') throw new EvictionPolicyError(policy);
        this.logger.warn('redis-dual-write: maxmemory-policy lets Redis evict job keys; set it to noeviction', {
          policy,
          ...(server.name ? { node: server.name } : {}),
        });
      }
    }
    const preloaded = await this.scripts.preload();
    if (withStage && this.stages.mode === 'managed') {
      const record = await readStageRecord(this.redis, this.keys.stage());
      if (!record) throw new StageUnsetError(this.keys.stage());
      this.stages.note(record.stage, String(record.epoch));
    }
    return preloaded;
  }

  /** INFO server and memory, or undefined when the ACL user may not run INFO (checks are skipped, loudly). */
  private async serverInfo(server: RedisClient): Promise<string | undefined> {
    try {
      return String(await server.call('INFO', 'server', 'memory'));
    } catch (error) {
      if (!(translateRedisError(error) instanceof PermissionError)) throw error;
      this.logger.warn('redis-dual-write: this Redis user may not run INFO; version and maxmemory-policy not checked');
      return undefined;
    }
  }

  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    const started = process.hrtime.bigint();
    try {
      const job = prepareJob(this.keys, this.maxPayloadBytes, input);
      const { reply } = await runStaged(
        this.context,
        SCRIPT.enqueue,
        [job.idempotencyKeyOrStandIn, job.legacyKey, job.newKey, this.context.queueKey, job.indexKey],
        [job.jobId, job.workspaceId, job.type, job.payload, job.fingerprint, this.idempotencyTtlSeconds, job.idempotencyKey ?? ''],
      );
      if (reply[0] === 'CREATED') return this.done('enqueue', started, 'ok', { jobId: job.jobId, created: true });
      // A random UUID can only be taken by this very call: ioredis resent it after its reply was
      // lost, and the first run made the job.
      if (reply[0] === 'DUPLICATE' && job.generatedJobId) {
        this.logger.debug('redis-dual-write: enqueue was resent after its reply was lost; the job exists', {});
        return this.done('enqueue', started, 'replay', { jobId: job.jobId, created: false });
      }
      if (reply[0] === 'REPLAY') return this.done('enqueue', started, 'replay', { jobId: String(reply[1]), created: false });
      throw errorForReply(reply, job);
    } catch (error) {
      throw this.failed('enqueue', started, error);
    }
  }

  /**
   * Enqueues up to 1000 jobs in one script, all or nothing: a refused job (invalid, duplicate,
   * idempotency conflict, wrong-typed key) fails the call with an error whose `index` names it, and
   * nothing of the batch is written. Results come in input order; replays as in enqueue.
   */
  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<EnqueueResult[]> {
    const started = process.hrtime.bigint();
    try {
      if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > MAX_BATCH_JOBS) {
        throw new ValidationError('jobs', 'range', `must be an array of 1 to ${MAX_BATCH_JOBS} jobs`);
      }
      const jobs: PreparedJob[] = new Array(inputs.length);
      const keys = [this.context.queueKey];
      const args: (string | number)[] = [this.idempotencyTtlSeconds];
      let payloadChars = 0;
      for (let index = 0; index < inputs.length; index++) {
        let job: PreparedJob;
        try {
          job = prepareJob(this.keys, this.maxPayloadBytes, inputs[index], `jobs[${index}]`);
        } catch (error) {
          throw atIndex(error, index);
        }
        jobs[index] = job;
        payloadChars += job.payload.length;
        keys.push(job.idempotencyKeyOrStandIn, job.legacyKey, job.newKey, job.indexKey);
        args.push(job.jobId, job.workspaceId, job.type, job.payload, job.fingerprint, job.idempotencyKey ?? '');
      }
      // A UTF-16 code unit takes at most 3 bytes of UTF-8: most batches need no exact count.
      if (payloadChars * 3 > MAX_BATCH_PAYLOAD_BYTES) {
        const bytes = jobs.reduce((sum, job) => sum + Buffer.byteLength(job.payload), 0);
        if (bytes > MAX_BATCH_PAYLOAD_BYTES) {
          throw new ValidationError('jobs', 'max-bytes', `hold ${bytes} bytes of payload, a batch takes at most ${MAX_BATCH_PAYLOAD_BYTES}`);
        }
      }
      const { reply } = await runStaged(this.context, SCRIPT.enqueueMany, keys, args);
      if (reply[0] === 'AT') {
        const index = Number(reply[1]) - 1;
        throw atIndex(errorForReply(reply[2] as unknown[], jobs[index]), index);
      }
      const flat = reply[1] as (string | number)[];
      const results: EnqueueResult[] = new Array(jobs.length);
      for (let i = 0; i < jobs.length; i++) results[i] = { jobId: String(flat[2 * i]), created: Number(flat[2 * i + 1]) === 1 };
      return this.done('enqueue_many', started, 'ok', results);
    } catch (error) {
      throw this.failed('enqueue_many', started, error);
    }
  }

  async updateStatus(input: UpdateStatusInput): Promise<UpdateStatusResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, UPDATE_STATUS_FIELDS);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, JOB_ID_PATTERN);
      const status = checkStatus('status', request.status);
      // null means not given, as with optional().
      const expectedStatus = request.expectedStatus == null ? undefined : checkStatus('expectedStatus', request.expectedStatus);
      const workerId = request.workerId == null ? undefined : checkPattern('workerId', request.workerId, ID_PATTERN);
      const args = [workspaceId, jobId, status, expectedStatus ?? '', workerId ?? '', ...this.context.staticRetention];
      // What the worker says about the job: stored beside the status, in every layout.
      if (request.error !== undefined) args.push('error', checkText('error', request.error, MAX_ERROR_CHARS));
      if (request.result !== undefined) args.push('result', serialisePayload(request.result, this.maxPayloadBytes, 'result'));

      const { reply } = await runStaged(
        this.context,
        SCRIPT.updateStatus,
        [
          this.keys.legacyJob(jobId),
          this.keys.newJob(workspaceId, jobId),
          this.keys.workspaceIndex(workspaceId),
          this.context.processingKey,
          this.context.claimsKey,
          this.context.expiriesKey,
          this.context.queueKey,
        ],
        args,
      );
      if (reply[0] !== 'UPDATED') throw errorForReply(reply, { workspaceId, jobId, expectedStatus, workerId });
      const repaired = String(reply[2]) as UpdateStatusResult['repaired'];
      countRepair(this.context, repaired, 'update_status');
      countForeignLegacy(this.context, reply[5], 'update_status');
      if (reply[4] === '1') this.metrics.finishes.inc({ status });
      return this.done('update_status', started, 'ok', {
        jobId,
        previousStatus: String(reply[1]) as JobStatus,
        status,
        repaired,
        expiresAt: reply[6] ? Number(reply[6]) : null,
      });
    } catch (error) {
      throw this.failed('update_status', started, error);
    }
  }

  /**
   * Takes the next queued job for a worker: its entry leaves the queue, the claim is recorded with a
   * deadline, and the job is 'running' in every layout the stage writes, all in one script. Returns
   * null when nothing is queued (after waiting up to `waitMs`, polling outside any script).
   */
  async claim(input: ClaimInput): Promise<Job | null> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workerId', 'visibilityTimeoutMs', 'waitMs']);
      const workerId = checkPattern('workerId', request.workerId, ID_PATTERN);
      const visibilityMs = checkInteger(
        'visibilityTimeoutMs', request.visibilityTimeoutMs ?? DEFAULTS.visibilityTimeoutMs, 1, 2 ** 31 - 1,
      );
      const waitMs = checkInteger('waitMs', request.waitMs ?? 0, 0, 3_600_000);
      const giveUpAt = Date.now() + waitMs;
      for (let pause = CLAIM_POLL_MS.first; ; pause = Math.min(pause * 2, CLAIM_POLL_MS.max)) {
        const job = await claimNext(this.context, workerId, visibilityMs);
        const left = giveUpAt - Date.now();
        if (job) return this.done('claim', started, 'ok', job);
        if (left <= 0) {
          // One claim call is one outcome, however many times it looked while it waited.
          this.metrics.claims.inc({ outcome: 'empty' });
          return this.done('claim', started, 'empty', null);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      }
    } catch (error) {
      throw this.failed('claim', started, error);
    }
  }

  /**
   * Puts jobs whose claim outlived its visibility timeout back on the queue ('queued' again), at
   * most `limit` per call; call it periodically. Entries whose job record is gone are moved aside.
   */
  async recoverStalled(input: RecoverStalledInput = {}): Promise<RecoverStalledResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['limit']);
      const limit = checkInteger('limit', request.limit ?? MAX_RECOVER_LIMIT, 1, MAX_RECOVER_LIMIT);
      return this.done('recover_stalled', started, 'ok', await recoverStalledJobs(this.context, limit));
    } catch (error) {
      throw this.failed('recover_stalled', started, error);
    }
  }

  /**
   * Pushes a claim's deadline to the server's now plus `visibilityTimeoutMs`: a worker's heartbeat
   * while its handler runs, so a long job is not recovered and run twice. Only the worker holding
   * the claim may (ClaimConflictError otherwise), also past its deadline until recoverStalled runs.
   */
  async extendClaim(input: ExtendClaimInput): Promise<ExtendClaimResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'jobId', 'workerId', 'visibilityTimeoutMs']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, JOB_ID_PATTERN);
      const workerId = checkPattern('workerId', request.workerId, ID_PATTERN);
      const visibilityMs = checkInteger('visibilityTimeoutMs', request.visibilityTimeoutMs ?? DEFAULTS.visibilityTimeoutMs, 1, 2 ** 31 - 1);
      return this.done('extend_claim', started, 'ok', await extendClaim(this.context, workspaceId, jobId, workerId, visibilityMs));
    } catch (error) {
      throw this.failed('extend_claim', started, error);
    }
  }

  /**
   * Puts a job back on the queue as 'queued', in the stage's entry form, ending any claim and taking
   * away any retention expiry: a failed or cancelled job, or a running one whose claim `workerId`
   * holds. attempts stays (claims count it): the caller decides the retry budget from it.
   */
  async requeue(input: RequeueInput): Promise<RequeueResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'jobId', 'workerId', 'reason']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, JOB_ID_PATTERN);
      const workerId = optional(request.workerId, (v) => checkPattern('workerId', v, ID_PATTERN));
      const reason = optional(request.reason, (v) => checkText('reason', v, MAX_ERROR_CHARS));
      return this.done('requeue', started, 'ok', await requeueJob(this.context, workspaceId, jobId, workerId, reason));
    } catch (error) {
      throw this.failed('requeue', started, error);
    }
  }

  /**
   * Deletes a job whole, in one script: its record in every layout (a legacy record only when it is
   * this workspace's), its index entry, any queue, processing, claim and expiry entry, and its
   * idempotency key. Refused (ClaimConflictError) while a worker holds it, unless `force`.
   */
  async deleteJob(input: DeleteJobInput): Promise<DeleteJobResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'jobId', 'force']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, JOB_ID_PATTERN);
      if (request.force !== undefined && typeof request.force !== 'boolean') throw new ValidationError('force', 'type', 'must be a boolean');
      return this.done('delete_job', started, 'ok', await deleteJob(this.context, workspaceId, jobId, request.force === true));
    } catch (error) {
      throw this.failed('delete_job', started, error);
    }
  }

  /**
   * Retention's sweep: removes what still names finished jobs whose expiry passed (their index
   * entry, any side entry), at most `limit` (default and maximum 100) per call. Run it every few
   * seconds beside recoverStalled; several processes may.
   */
  async maintain(input: MaintainInput = {}): Promise<MaintainResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['limit']);
      const limit = checkInteger('limit', request.limit ?? MAX_RECOVER_LIMIT, 1, MAX_RECOVER_LIMIT);
      return this.done('maintain', started, 'ok', await maintain(this.context, limit));
    } catch (error) {
      throw this.failed('maintain', started, error);
    }
  }

  async getJob(input: GetJobInput): Promise<Job | null> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, GET_JOB_FIELDS);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, JOB_ID_PATTERN);
      const [job] = await readJobs(this.context, 'get_job', workspaceId, [jobId]);
      return this.done('get_job', started, job ? 'ok' : 'not_found', job);
    } catch (error) {
      throw this.failed('get_job', started, error);
    }
  }

  /**
   * Newest first, from the workspace index. Each call reads at most LIST_PAGES_PER_CALL index pages
   * of `limit` entries, so with a status filter a page can hold fewer than `limit` jobs while
   * nextCursor is still set: keep paging until nextCursor is null.
   */
  async listJobs(input: ListJobsInput): Promise<ListJobsResult> {
    const started = process.hrtime.bigint();
    try {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'status', 'limit', 'cursor']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const status = optional(request.status, (v) => checkStatus('status', v));
      const limit = checkInteger('limit', request.limit ?? DEFAULTS.listLimit, 1, MAX_LIST_LIMIT);
      const page = await listJobPage(this.context, workspaceId, status, limit, optional(request.cursor, decodeCursor));
      return this.done('list_jobs', started, 'ok', page);
    } catch (error) {
      throw this.failed('list_jobs', started, error);
    }
  }

  /*
   * Every operation is counted and timed the same way, written out in each (try, done, failed)
   * rather than wrapped in a closure: no closure and no extra await per call. The outcome is 'ok',
   * a result-specific label, or the error's code in lower case ('error' for any other error).
   */

  /** Counts and times an operation that went through, and returns its result. */
  private done<T>(operation: Operation, started: bigint, outcome: Outcome, result: T): T {
    this.record(operation, outcome, started);
    // Only after a call that went through: a refused call leaves Redis exactly as it was.
    this.heartbeat?.maybeBeat();
    return result;
  }

  /** Counts and times an operation that failed, and returns its error for the caller to throw. */
  private failed(operation: Operation, started: bigint, error: unknown): unknown {
    this.record(operation, error instanceof DualWriteError ? error.code.toLowerCase() : 'error', started);
    return error;
  }

  private record(operation: Operation, outcome: string, started: bigint): void {
    this.metrics.operations.inc({ operation, outcome });
    this.metrics.duration.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/** The heartbeat option: on by default, every DEFAULTS.heartbeatMs; false turns it off. */
function checkHeartbeat(value: unknown): { intervalMs: number } | undefined {
  if (value === false) return undefined;
  const o = checkObject('heartbeat', value ?? {});
  rejectUnknownFields('heartbeat', o, ['intervalMs']);
  return { intervalMs: checkInteger('heartbeat.intervalMs', o.intervalMs ?? DEFAULTS.heartbeatMs, 1000, 3_600_000) };
}

