import { hash, randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import {
  ClaimContentionError,
  DualWriteError,
  EvictionPolicyError,
  PermissionError,
  RedisUnavailableError,
  UnsupportedRedisError,
  ValidationError,
} from './errors';
import { decodeJob, type Job } from './job';
import { isCluster, serversOf } from './cluster/nodes';
import { checkClusterLayout } from './cluster/single-slot';
import { resolveLayout, type KeyLayoutOption } from './custom-layout';
import {
  checkPattern,
  ID_PATTERN,
  IDEMPOTENCY_KEY_PATTERN,
  JOB_TYPE_PATTERN,
  KEY_PREFIX_PATTERN,
  parseQueueEntry,
  QUEUE_NAME_PATTERN,
  queueEntry,
  type KeyLayout,
} from './keys';
import { errorForReply, translateRedisError } from './scripts/replies';
import { ScriptRegistry, type PreloadedScript, type RedisClient } from './scripts/registry';
import { assertStage, planFor, STAGES, type Stage, type StagePlan } from './stages';
import { metricsFromOption, type Metrics, type Operation } from './telemetry';
import { checkLogger, type Logger } from './logger';
import {
  canonicalJson,
  checkInteger,
  checkObject,
  checkStatus,
  optional,
  rejectUnknownFields,
  serialisePayload,
  type JobStatus,
} from './validation';

export interface DualWriteQueueOptions {
  /** An ioredis client (Redis or Cluster) the caller owns: the queue never closes it. */
  redis: RedisClient;
  queueName?: string;
  stage: Stage;
  /** Prepended to every key, whoever builds it. */
  keyPrefix?: string;
  /**
   * Where each record lives: builders for any key of KeyLayout (they receive validated ids only);
   * the default layout builds the rest. On a Cluster use `clusterLayout(tag)`: every key of one
   * operation must share a hash slot, which the constructor checks.
   */
  keys?: KeyLayoutOption;
  idempotencyTtlSeconds?: number;
  maxPayloadBytes?: number;
  metrics?: { registry: Registry } | false;
  logger?: Logger;
}

export interface EnqueueInput {
  workspaceId: string;
  type: string;
  payload: unknown;
  idempotencyKey?: string;
  jobId?: string;
}
export interface EnqueueResult {
  jobId: string;
  /** false when an idempotent replay returned the original job and nothing was written. */
  created: boolean;
}

export interface UpdateStatusInput {
  workspaceId: string;
  jobId: string;
  status: JobStatus;
  expectedStatus?: JobStatus;
  /** Only the worker holding the job's claim may update it (ClaimConflictError otherwise). */
  workerId?: string;
}
export interface UpdateStatusResult {
  jobId: string;
  previousStatus: JobStatus;
  status: JobStatus;
  /** The layout an update had to restore the job into first, if any. */
  repaired: 'none' | 'new' | 'legacy';
}

export interface ClaimInput {
  /** Who takes the job; pass it to updateStatus to finish only jobs this worker holds. */
  workerId: string;
  /** How long the claim holds before recoverStalled may give the job to another worker. */
  visibilityTimeoutMs?: number;
  /** Wait up to this long for a job when the queue is empty (default 0: answer at once). */
  waitMs?: number;
}

export interface RecoverStalledInput {
  /** At most this many stalled jobs per call (default and maximum 100). */
  limit?: number;
}
export interface RecoverStalledResult {
  /** Jobs put back on the queue. */
  recovered: number;
  /** Stalled entries whose job record was gone, moved to the orphans list. */
  orphaned: number;
}

export interface GetJobInput {
  workspaceId: string;
  jobId: string;
}

export interface ListJobsInput {
  workspaceId: string;
  status?: JobStatus;
  limit?: number;
  cursor?: string | null;
}
export interface ListJobsResult {
  jobs: Job[];
  /** Pass it back to get the next page; null when the index holds nothing further. */
  nextCursor: string | null;
}

export interface ReadyOptions {
  /** How long to wait for Redis to answer before failing with RedisUnavailableError. */
  timeoutMs?: number;
  /**
   * What to do when maxmemory-policy is not noeviction (eviction silently deletes jobs):
   * 'warn' logs at warn (the default), 'throw' fails with EvictionPolicyError.
   */
  evictionPolicy?: 'warn' | 'throw';
}

export const DEFAULTS = {
  queueName: 'default',
  keyPrefix: '',
  idempotencyTtlSeconds: 86_400,
  maxPayloadBytes: 1024 * 1024,
  listLimit: 50,
  readyTimeoutMs: 5_000,
  visibilityTimeoutMs: 30_000,
} as const;
export const MAX_LIST_LIMIT = 1000;
/** listJobs examines at most this many index pages per call, so a status filter stays bounded. */
const LIST_PAGES_PER_CALL = 5;

const MAX_RECOVER_LIMIT = 100;
export const MAX_BATCH_JOBS = 1000;
/** All payloads of one enqueueMany together: a bound on what one script call carries. */
const MAX_BATCH_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** How deep in the queue a claim may reach, and how often it retries after losing a race. */
const CLAIM_DEPTH = 16;
const CLAIM_ATTEMPTS = 50;
const CLAIM_POLL_MS = { first: 10, max: 200 };

const SCRIPT = {
  enqueueMany: 'enqueue_many_dual.v1',
  claim: 'claim_job.v1',
  recoverStalled: 'recover_stalled.v1',
  enqueue: 'enqueue_dual.v1',
  updateStatus: 'update_status_dual.v1',
  read: 'read_with_fallback.v1',
  listPage: 'list_index_page.v1',
} as const;

/**
 * The service-facing API. Each call validates its input, builds the keys, takes the current
 * stage's plan, and runs one script: nothing below this class knows about stages.
 */
export class DualWriteQueue {
  readonly queueName: string;
  private currentStage: Stage;
  private readonly redis: RedisClient;
  /** Where this queue's records live (the layout's key builders, with ids already validated). */
  readonly keys: KeyLayout;
  private readonly idempotencyTtlSeconds: number;
  private readonly maxPayloadBytes: number;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly scripts: ScriptRegistry;

  constructor(options: DualWriteQueueOptions) {
    const o = checkObject('options', options);
    rejectUnknownFields('options', o, [
      'redis', 'queueName', 'stage', 'keyPrefix', 'keys', 'idempotencyTtlSeconds', 'maxPayloadBytes', 'metrics', 'logger',
    ]);
    if (typeof (o.redis as RedisClient | undefined)?.evalsha !== 'function') {
      throw new ValidationError('redis', 'type', 'must be an ioredis Redis or Cluster client');
    }
    this.redis = o.redis as RedisClient;
    this.queueName = checkPattern('queueName', o.queueName ?? DEFAULTS.queueName, QUEUE_NAME_PATTERN);
    this.currentStage = assertStage(o.stage);
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
    this.showStage();
    this.scripts = new ScriptRegistry(this.redis, this.metrics, this.logger);
  }

  get stage(): Stage {
    return this.currentStage;
  }

  /** Takes effect for calls made from now on; a call in flight keeps the stage it started with. */
  setStage(stage: Stage): void {
    const next = assertStage(stage);
    if (next !== this.currentStage) {
      this.logger.info('redis-dual-write: stage changed', { from: this.currentStage, to: next });
      this.currentStage = next;
      this.showStage();
    }
  }

  /** dualwrite_stage lets dashboards and alerts tell the stages apart. */
  private showStage(): void {
    for (const stage of STAGES) {
      this.metrics.stage.set({ queue: this.queueName, stage }, stage === this.currentStage ? 1 : 0);
    }
  }

  /**
   * Checks the server is Redis 7.0 or later and will not evict jobs, then preloads every script,
   * proving each sha1.
   */
  async ready(options: ReadyOptions = {}): Promise<PreloadedScript[]> {
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
      return await Promise.race([this.checkServer(evictionPolicy), timeout]);
    } catch (error) {
      if (error instanceof DualWriteError) throw error;
      throw new RedisUnavailableError(`Redis refused the readiness check: ${(error as Error).message}`, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkServer(evictionPolicy: 'warn' | 'throw'): Promise<PreloadedScript[]> {
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
    return this.scripts.preload();
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
    return this.observe(
      'enqueue',
      async () => {
        const job = this.prepareJob(input);
        const plan = this.plan();
        const reply = await this.scripts.run(
          SCRIPT.enqueue,
          [job.idempotencyKeyOrStandIn, job.legacyKey, job.newKey, this.keys.queue(this.queueName), job.indexKey],
          [
            job.jobId,
            job.workspaceId,
            job.type,
            job.payload,
            job.fingerprint,
            this.idempotencyTtlSeconds,
            flag(plan.writeLegacy),
            flag(plan.writeNew),
            queueEntry(plan.writeLegacy, job.workspaceId, job.jobId),
          ],
        );
        if (reply[0] === 'CREATED') return { jobId: job.jobId, created: true };
        // A random UUID can only be taken by this very call: ioredis resent it after its reply was
        // lost, and the first run made the job.
        if (reply[0] === 'DUPLICATE' && job.generatedJobId) {
          this.logger.debug('redis-dual-write: enqueue was resent after its reply was lost; the job exists', {});
          return { jobId: job.jobId, created: false };
        }
        if (reply[0] === 'REPLAY') return { jobId: String(reply[1]), created: false };
        throw errorForReply(reply, job);
      },
      (result) => (result.created ? 'ok' : 'replay'),
    );
  }

  /**
   * Enqueues up to 1000 jobs in one script, all or nothing: a refused job (invalid, duplicate,
   * idempotency conflict, wrong-typed key) fails the call with an error whose `index` names it, and
   * nothing of the batch is written. Results come in input order; replays as in enqueue.
   */
  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<EnqueueResult[]> {
    return this.observe('enqueue_many', async () => {
      if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > MAX_BATCH_JOBS) {
        throw new ValidationError('jobs', 'range', `must be an array of 1 to ${MAX_BATCH_JOBS} jobs`);
      }
      const jobs = inputs.map((input, index) => {
        try {
          return this.prepareJob(input, `jobs[${index}]`);
        } catch (error) {
          throw atIndex(error, index);
        }
      });
      const bytes = jobs.reduce((sum, job) => sum + Buffer.byteLength(job.payload), 0);
      if (bytes > MAX_BATCH_PAYLOAD_BYTES) {
        throw new ValidationError('jobs', 'max-bytes', `hold ${bytes} bytes of payload, a batch takes at most ${MAX_BATCH_PAYLOAD_BYTES}`);
      }
      const plan = this.plan();
      const keys = [this.keys.queue(this.queueName)];
      const args: (string | number)[] = [flag(plan.writeLegacy), flag(plan.writeNew), this.idempotencyTtlSeconds];
      for (const job of jobs) {
        keys.push(job.idempotencyKeyOrStandIn, job.legacyKey, job.newKey, job.indexKey);
        args.push(job.jobId, job.workspaceId, job.type, job.payload, job.fingerprint, queueEntry(plan.writeLegacy, job.workspaceId, job.jobId));
      }
      const reply = await this.scripts.run(SCRIPT.enqueueMany, keys, args);
      if (reply[0] === 'AT') {
        const index = Number(reply[1]) - 1;
        throw atIndex(errorForReply(reply[2] as unknown[], jobs[index]), index);
      }
      const flat = reply[1] as (string | number)[];
      return jobs.map((_, i) => ({ jobId: String(flat[2 * i]), created: Number(flat[2 * i + 1]) === 1 }));
    });
  }

  /** Validates one job and derives what its script call needs; nothing is sent yet. */
  private prepareJob(input: unknown, at?: string): PreparedJob {
    const name = (field: string) => (at ? `${at}.${field}` : field);
    const request = checkObject(at ?? 'input', input);
    rejectUnknownFields(at ?? 'input', request, ['workspaceId', 'type', 'payload', 'idempotencyKey', 'jobId']);
    const workspaceId = checkPattern(name('workspaceId'), request.workspaceId, ID_PATTERN);
    const type = checkPattern(name('type'), request.type, JOB_TYPE_PATTERN);
    const givenJobId = optional(request.jobId, (v) => checkPattern(name('jobId'), v, ID_PATTERN));
    const idempotencyKey = optional(request.idempotencyKey, (v) =>
      checkPattern(name('idempotencyKey'), v, IDEMPOTENCY_KEY_PATTERN),
    );
    const payload = serialisePayload(request.payload, this.maxPayloadBytes, name('payload'));
    const jobId = givenJobId ?? randomUUID();
    const indexKey = this.keys.workspaceIndex(workspaceId);
    return {
      workspaceId,
      jobId,
      generatedJobId: givenJobId === undefined,
      type,
      payload,
      idempotencyKey,
      fingerprint: idempotencyKey ? fingerprint(type, givenJobId, canonicalJson(request.payload)) : '',
      // Without an idempotency key the script never touches that key; the index key stands in so
      // every key of the call still belongs to this workspace (and its cluster slot).
      idempotencyKeyOrStandIn: idempotencyKey ? this.keys.idempotency(workspaceId, idempotencyKey) : indexKey,
      legacyKey: this.keys.legacyJob(jobId),
      newKey: this.keys.newJob(workspaceId, jobId),
      indexKey,
    };
  }

  async updateStatus(input: UpdateStatusInput): Promise<UpdateStatusResult> {
    return this.observe('update_status', async () => {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'jobId', 'status', 'expectedStatus', 'workerId']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const jobId = checkPattern('jobId', request.jobId, ID_PATTERN);
      const status = checkStatus('status', request.status);
      const expectedStatus = optional(request.expectedStatus, (v) => checkStatus('expectedStatus', v));
      const workerId = optional(request.workerId, (v) => checkPattern('workerId', v, ID_PATTERN));
      const plan = this.plan();

      const reply = await this.scripts.run(
        SCRIPT.updateStatus,
        [
          this.keys.legacyJob(jobId),
          this.keys.newJob(workspaceId, jobId),
          this.keys.workspaceIndex(workspaceId),
          this.keys.processing(this.queueName),
          this.keys.claims(this.queueName),
        ],
        [
          workspaceId,
          jobId,
          status,
          expectedStatus ?? '',
          flag(plan.writeLegacy),
          flag(plan.writeNew),
          plan.readFrom,
          workerId ?? '',
          queueEntry(true, workspaceId, jobId),
          queueEntry(false, workspaceId, jobId),
        ],
      );
      if (reply[0] !== 'UPDATED') throw errorForReply(reply, { workspaceId, jobId, expectedStatus, workerId });
      const repaired = String(reply[2]) as UpdateStatusResult['repaired'];
      this.countRepair(repaired, 'update_status');
      if (reply[4] === '1') this.metrics.finishes.inc({ status });
      return { jobId, previousStatus: String(reply[1]) as JobStatus, status, repaired };
    });
  }

  /**
   * Takes the next queued job for a worker: its entry leaves the queue, the claim is recorded with a
   * deadline, and the job is 'running' in every layout the stage writes, all in one script. Returns
   * null when nothing is queued (after waiting up to `waitMs`, polling outside any script).
   */
  async claim(input: ClaimInput): Promise<Job | null> {
    return this.observe(
      'claim',
      async () => {
        const request = checkObject('input', input);
        rejectUnknownFields('input', request, ['workerId', 'visibilityTimeoutMs', 'waitMs']);
        const workerId = checkPattern('workerId', request.workerId, ID_PATTERN);
        const visibilityMs = checkInteger(
          'visibilityTimeoutMs', request.visibilityTimeoutMs ?? DEFAULTS.visibilityTimeoutMs, 1, 2 ** 31 - 1,
        );
        const waitMs = checkInteger('waitMs', request.waitMs ?? 0, 0, 3_600_000);
        const giveUpAt = Date.now() + waitMs;
        for (let pause = CLAIM_POLL_MS.first; ; pause = Math.min(pause * 2, CLAIM_POLL_MS.max)) {
          const job = await this.claimOnce(workerId, visibilityMs);
          const left = giveUpAt - Date.now();
          if (job || left <= 0) return job;
          await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
        }
      },
      (job) => (job ? 'ok' : 'empty'),
    );
  }

  private async claimOnce(workerId: string, visibilityMs: number): Promise<Job | null> {
    const plan = this.plan();
    const queueKey = this.keys.queue(this.queueName);
    // A claim takes the head, so one worker sees FIFO order; after losing the head to another
    // worker it picks among the first few entries, so many workers rarely collide twice. Orphaned
    // and skipped entries leave the queue, so only lost races count against the attempts.
    for (let lostRaces = 0; lostRaces < CLAIM_ATTEMPTS; ) {
      const head = await this.redis.lrange(queueKey, 0, CLAIM_DEPTH - 1).catch(rethrowTranslated);
      if (head.length === 0) {
        this.metrics.claims.inc({ outcome: 'empty' });
        return null;
      }
      const entry = lostRaces === 0 ? head[0] : head[Math.floor(Math.random() * head.length)];
      const target = await this.locate(entry);
      const reply = await this.scripts.run(
        SCRIPT.claim,
        [
          queueKey,
          this.keys.processing(this.queueName),
          this.keys.claims(this.queueName),
          this.keys.orphans(this.queueName),
          ...this.jobKeys(target),
        ],
        [
          entry,
          target.workspaceId,
          target.jobId,
          workerId,
          flag(plan.writeLegacy),
          flag(plan.writeNew),
          plan.readFrom,
          CLAIM_DEPTH,
          visibilityMs,
        ],
      );
      switch (reply[0]) {
        case 'CLAIMED': {
          this.metrics.claims.inc({ outcome: 'claimed' });
          this.countRepair(String(reply[1]) as UpdateStatusResult['repaired'], 'claim');
          return decodeJob({ jobId: target.jobId, source: plan.readFrom, fields: reply[2] as string[] }).job;
        }
        case 'ORPHANED':
          this.countOrphans('claim', 1);
          break;
        case 'SKIPPED':
          this.metrics.claims.inc({ outcome: 'skipped' });
          this.logger.info('redis-dual-write: dropped a queue entry of a job that is not queued', {
            status: String(reply[1]),
          });
          break;
        case 'MOVED':
          lostRaces++;
          break;
        default:
          throw errorForReply(reply, { workspaceId: target.workspaceId, jobId: target.jobId, workerId });
      }
    }
    throw new ClaimContentionError(CLAIM_ATTEMPTS);
  }

  /**
   * Puts jobs whose claim outlived its visibility timeout back on the queue ('queued' again), at
   * most `limit` per call; call it periodically. Entries whose job record is gone are moved aside.
   */
  async recoverStalled(input: RecoverStalledInput = {}): Promise<RecoverStalledResult> {
    return this.observe('recover_stalled', async () => {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['limit']);
      const limit = checkInteger('limit', request.limit ?? MAX_RECOVER_LIMIT, 1, MAX_RECOVER_LIMIT);
      const plan = this.plan();
      // Candidates by the client's clock; the script decides by the server's.
      const stalled = await this.redis.zrangebyscore(
        this.keys.processing(this.queueName), '-inf', Date.now(), 'LIMIT', 0, limit,
      ).catch(rethrowTranslated);
      if (stalled.length === 0) return { recovered: 0, orphaned: 0 };
      const targets = await Promise.all(stalled.map((entry) => this.locate(entry)));
      const reply = await this.scripts.run(
        SCRIPT.recoverStalled,
        [
          this.keys.queue(this.queueName),
          this.keys.processing(this.queueName),
          this.keys.claims(this.queueName),
          this.keys.orphans(this.queueName),
          ...targets.flatMap((target) => this.jobKeys(target).slice(0, 2)),
        ],
        [flag(plan.writeLegacy), flag(plan.writeNew), ...stalled.flatMap((entry, i) => [entry, targets[i].workspaceId])],
      );
      if (reply[0] !== 'RECOVERED') throw errorForReply(reply, { workspaceId: '', jobId: '' });
      const [recovered, orphaned] = [Number(reply[1]), Number(reply[2])];
      if (recovered > 0) {
        this.metrics.stalledRecoveries.inc(recovered);
        this.logger.warn('redis-dual-write: claims outlived their visibility timeout; jobs queued again', {
          recovered,
        });
      }
      this.countOrphans('recover_stalled', orphaned);
      return { recovered, orphaned };
    });
  }

  /**
   * The ids behind a queue entry. A bare entry names the jobId only; its workspace comes from the
   * legacy record, the one place that says it (in complete too: read as a locator, never as data).
   * workspaceId is '' when no valid one is found: the scripts then treat the entry as an orphan.
   */
  private async locate(entry: string): Promise<{ workspaceId: string; jobId: string }> {
    const ids = parseQueueEntry(entry);
    if (!ids) return { workspaceId: '', jobId: '' };
    if (ids.workspaceId) return { workspaceId: ids.workspaceId, jobId: ids.jobId };
    // Only "no record" (or a key that is no hash) makes an orphan; a connection error or timeout
    // must fail the call, or a healthy job would be moved aside.
    const named = await this.redis.hget(this.keys.legacyJob(ids.jobId), 'workspace_id').catch((error: Error) => {
      if (error.message?.startsWith('WRONGTYPE')) return null;
      throw translateRedisError(error);
    });
    return { workspaceId: named && ID_PATTERN.test(named) ? named : '', jobId: ids.jobId };
  }

  /** legacyKey, newKey and indexKey of a located job; the queue key stands in for unknown ids. */
  private jobKeys(target: { workspaceId: string; jobId: string }): [string, string, string] {
    if (!target.workspaceId) {
      const unused = this.keys.queue(this.queueName);
      return [unused, unused, unused];
    }
    return [
      this.keys.legacyJob(target.jobId),
      this.keys.newJob(target.workspaceId, target.jobId),
      this.keys.workspaceIndex(target.workspaceId),
    ];
  }

  private countRepair(repaired: UpdateStatusResult['repaired'], operation: Operation): void {
    if (repaired === 'none') return;
    this.metrics.repairs.inc({ target: repaired });
    this.logger.warn('redis-dual-write: job existed in one layout only; restored it', {
      operation,
      target: repaired,
      stage: this.currentStage,
    });
  }

  private countOrphans(operation: Operation, count: number): void {
    if (count === 0) return;
    this.metrics.orphanedEntries.inc({ operation }, count);
    this.logger.warn('redis-dual-write: entries without a job record moved to the orphans list', {
      operation,
      count,
      orphansKey: this.keys.orphans(this.queueName),
    });
  }

  async getJob(input: GetJobInput): Promise<Job | null> {
    return this.observe(
      'get_job',
      async () => {
        const request = checkObject('input', input);
        rejectUnknownFields('input', request, ['workspaceId', 'jobId']);
        const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
        const jobId = checkPattern('jobId', request.jobId, ID_PATTERN);
        const [job] = await this.readJobs('get_job', workspaceId, [jobId], this.plan());
        return job;
      },
      (job) => (job ? 'ok' : 'not_found'),
    );
  }

  /**
   * Newest first, from the workspace index. Each call reads at most LIST_PAGES_PER_CALL index pages
   * of `limit` entries, so with a status filter a page can hold fewer than `limit` jobs while
   * nextCursor is still set: keep paging until nextCursor is null.
   */
  async listJobs(input: ListJobsInput): Promise<ListJobsResult> {
    return this.observe('list_jobs', async () => {
      const request = checkObject('input', input);
      rejectUnknownFields('input', request, ['workspaceId', 'status', 'limit', 'cursor']);
      const workspaceId = checkPattern('workspaceId', request.workspaceId, ID_PATTERN);
      const status = optional(request.status, (v) => checkStatus('status', v));
      const limit = checkInteger('limit', request.limit ?? DEFAULTS.listLimit, 1, MAX_LIST_LIMIT);
      let cursor = optional(request.cursor, decodeCursor);
      const plan = this.plan();
      const indexKey = this.keys.workspaceIndex(workspaceId);
      const jobs: Job[] = [];

      for (let page = 0; page < LIST_PAGES_PER_CALL; page++) {
        const entries = await this.indexPage(indexKey, cursor, limit + 1);
        const more = entries.length > limit;
        const examined = entries.slice(0, limit);
        const records = await this.readJobs('list_jobs', workspaceId, examined.map((e) => e.jobId), plan);
        for (let i = 0; i < examined.length; i++) {
          cursor = examined[i];
          const job = records[i];
          if (!job) {
            this.metrics.divergences.inc({ kind: 'index_orphan' });
            this.logger.warn('redis-dual-write: index entry without a readable job record', {
              stage: this.currentStage,
              layout: plan.readFrom,
            });
            continue;
          }
          if (status && job.status !== status) continue;
          jobs.push(job);
          if (jobs.length === limit) {
            return { jobs, nextCursor: more || i < examined.length - 1 ? encodeCursor(cursor) : null };
          }
        }
        if (!more) return { jobs, nextCursor: null };
      }
      return { jobs, nextCursor: cursor ? encodeCursor(cursor) : null };
    });
  }

  private plan(): StagePlan {
    return planFor(this.currentStage);
  }

  private async indexPage(indexKey: string, cursor: IndexEntry | undefined, count: number): Promise<IndexEntry[]> {
    const reply = await this.scripts.run(
      SCRIPT.listPage,
      [indexKey],
      [count, cursor?.score ?? '', cursor?.jobId ?? ''],
    );
    if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId: '', jobId: '' });
    const flat = reply[1] as string[];
    const entries: IndexEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) entries.push({ jobId: flat[i], score: flat[i + 1] });
    return entries;
  }

  /** Reads jobs through the stage's plan, counting and logging every fallback and divergence. */
  private async readJobs(
    operation: Operation,
    workspaceId: string,
    jobIds: readonly string[],
    plan: StagePlan,
  ): Promise<(Job | null)[]> {
    if (jobIds.length === 0) return [];
    const keys: string[] = [];
    for (const jobId of jobIds) keys.push(this.keys.legacyJob(jobId), this.keys.newJob(workspaceId, jobId));
    const reply = await this.scripts.run(SCRIPT.read, keys, [
      workspaceId,
      plan.readFrom,
      flag(plan.fallback),
      flag(plan.compare),
    ]);
    if (reply[0] !== 'OK') throw errorForReply(reply, { workspaceId, jobId: '' });

    return (reply[1] as [string, string[], string, string[]][]).map(([source, fields, divergence, differing], i) => {
      if (divergence) {
        this.metrics.divergences.inc({ kind: divergence });
        this.logger.warn('redis-dual-write: layouts differ', {
          operation,
          kind: divergence,
          differingFields: differing,
          stage: this.currentStage,
        });
      }
      if (!source) return null;
      if (source === 'legacy' && plan.readFrom === 'new') {
        this.metrics.readFallbacks.inc({ operation });
        this.logger.info('redis-dual-write: read fell back to the legacy layout', { operation, stage: this.currentStage });
      }
      const { job, corrupt } = decodeJob({ jobId: jobIds[i], source: source as Job['source'], fields });
      if (corrupt) {
        this.metrics.divergences.inc({ kind: 'corrupt_record' });
        this.logger.warn('redis-dual-write: job payload is not JSON; returned as text', { operation, source });
      }
      return job;
    });
  }

  /** Counts and times one operation; the outcome is 'ok', a result-specific label, or an error code. */
  private async observe<T>(operation: Operation, work: () => Promise<T>, outcomeOf: (result: T) => string = () => 'ok'): Promise<T> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const result = await work();
      outcome = outcomeOf(result);
      return result;
    } catch (error) {
      if (error instanceof DualWriteError) outcome = error.code.toLowerCase();
      throw error;
    } finally {
      this.metrics.operations.inc({ operation, outcome });
      this.metrics.duration.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}

interface PreparedJob {
  workspaceId: string;
  jobId: string;
  /** The package made the jobId (a random UUID), the caller gave none. */
  generatedJobId: boolean;
  type: string;
  /** The payload's JSON text. */
  payload: string;
  idempotencyKey?: string;
  /** '' without an idempotency key. */
  fingerprint: string;
  idempotencyKeyOrStandIn: string;
  legacyKey: string;
  newKey: string;
  indexKey: string;
}

/** Marks an error as being about job `index` of an enqueueMany batch. */
function atIndex(error: unknown, index: number): unknown {
  if (error instanceof DualWriteError) error.index = index;
  return error;
}

interface IndexEntry {
  jobId: string;
  score: string;
}

function rethrowTranslated(error: unknown): never {
  throw translateRedisError(error);
}

function flag(value: boolean): string {
  return value ? '1' : '0';
}
/** A misspelt option (say `expectStatus`) would silently drop a guarantee, so it is refused. */
/** Same key, same request: the request is the type, the caller's jobId, and the canonical payload. */
function fingerprint(type: string, givenJobId: string | undefined, canonicalPayload: string): string {
  return hash('sha256', `${type}\n${givenJobId ?? ''}\n${canonicalPayload}`).slice(0, 32);
}

const CURSOR = /^(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?):([A-Za-z0-9_-]{1,64})$/;

function encodeCursor(entry: IndexEntry): string {
  return Buffer.from(`${entry.score}:${entry.jobId}`, 'utf8').toString('base64url');
}

function decodeCursor(value: unknown): IndexEntry {
  const text = typeof value === 'string' ? Buffer.from(value, 'base64url').toString('utf8') : '';
  const match = CURSOR.exec(text);
  if (!match) throw new ValidationError('cursor', 'format', 'must be a nextCursor that listJobs returned');
  return { score: match[1], jobId: match[2] };
}
