import type { Registry } from 'prom-client';
import {
  KeyTypeError,
  NotFoundError,
  StatusConflictError,
  ValidationError,
  type JobStatus,
  type Logger,
  type Stage,
} from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { jobHash, list, putJob as putJobIn, redisState, str, zset, type JobRecord, type KeyState } from '../support/state';

const putJob = (key: string, job: JobRecord) => putJobIn(ctx.redis, key, job);

const ctx = useRedis();

// The stage table of DESIGN.md, written out here rather than taken from src/stages.ts, so the tests
// check the package against the design and not against itself.
const ALL_STAGES: Stage[] = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'];
const BOTH_WRITE: Stage[] = ['dualwrite', 'shadow', 'live', 'rampdown'];
const WRITES_LEGACY: Stage[] = ['off', ...BOTH_WRITE];
/** Where an update writes the job's legacy record when it has one: complete writes no new legacy record, but a twin follows the job. */
const UPDATES_LEGACY_TWIN: Stage[] = [...WRITES_LEGACY, 'complete'];
const WRITES_NEW: Stage[] = [...BOTH_WRITE, 'complete'];
const AUTHORITY: Record<Stage, 'legacy' | 'new'> = {
  off: 'legacy',
  dualwrite: 'legacy',
  shadow: 'legacy',
  live: 'new',
  rampdown: 'new',
  complete: 'new',
};

const LEGACY = 'job:j1';
const NEW = 'ws:acme:job:j1';
const INDEX = 'ws:acme:jobs';
const QUEUE = 'queue:default';
/** created_at and updated_at of the arranged records: long past, so a fresh updated_at stands out. */
const CREATED = 1_700_000_000_000;
const UPDATED = CREATED + 5_000;

function record(overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    id: 'j1',
    workspaceId: 'acme',
    type: 'email.send',
    payload: { to: 'a@example.com', tags: ['x', 'ü'], n: 1 },
    status: 'queued',
    createdAt: CREATED,
    updatedAt: UPDATED,
    ...overrides,
  };
}

/** The queue and the index as enqueue leaves them for j1 (and a neighbour), so we see they stay put. */
async function putQueueAndIndex(): Promise<void> {
  await ctx.redis.rpush(QUEUE, 'j0', 'j1');
  await ctx.redis.zadd(INDEX, CREATED - 1_000, 'j0', CREATED, 'j1');
}
/** `left`: whether j1's entry is still waiting (an update that takes j1 off 'queued' removes it). */
const queueAndIndex = (left = true): Record<string, KeyState> => ({
  [QUEUE]: left ? list('j0', 'j1') : list('j0'),
  [INDEX]: zset(['j0', CREATED - 1_000], ['j1', CREATED]),
});

/**
 * The updated_at the script wrote into `key`: Redis' clock, in ms, taken during the call. Returned
 * as the number the expected records then carry.
 */
function freshUpdatedAt(state: Record<string, KeyState>, key: string, before: number, after: number): number {
  const entry = state[key];
  expect(entry?.type).toBe('hash');
  const text = (entry.value as Record<string, string>).updated_at;
  expect(text).toMatch(/^[0-9]{13}$/);
  const ms = Number(text);
  // Redis and Node read the same system clock; a second of slack keeps this from being flaky.
  expect(ms).toBeGreaterThanOrEqual(before - 1_000);
  expect(ms).toBeLessThanOrEqual(after + 1_000);
  return ms;
}

const OUTCOMES = ['ok', 'not_found', 'status_conflict', 'key_type', 'validation', 'error'] as const;
type Counts = Record<(typeof OUTCOMES)[number] | 'repairedNew' | 'repairedLegacy', number>;
const NO_COUNTS: Counts = {
  ok: 0,
  not_found: 0,
  status_conflict: 0,
  key_type: 0,
  validation: 0,
  error: 0,
  repairedNew: 0,
  repairedLegacy: 0,
};

/** update_status outcomes and repairs as the queue's own registry counted them. */
async function counts(registry: Registry): Promise<Counts> {
  const result = { ...NO_COUNTS };
  for (const outcome of OUTCOMES) {
    result[outcome] = await metricValue(registry, 'dualwrite_operations_total', { operation: 'update_status', outcome });
  }
  result.repairedNew = await metricValue(registry, 'dualwrite_repairs_total', { target: 'new' });
  result.repairedLegacy = await metricValue(registry, 'dualwrite_repairs_total', { target: 'legacy' });
  return result;
}

function recordingLogger(): Logger & { warn: jest.Mock } {
  return { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
}

describe('updateStatus', () => {
  describe('writes exactly the layouts the stage writes', () => {
    it.each<[Stage, boolean, boolean]>([
      ['off', true, false],
      ['dualwrite', true, true],
      ['shadow', true, true],
      ['live', true, true],
      ['rampdown', true, true],
      ['complete', true, true], // complete writes the new layout, and the legacy twin follows
    ])(
      'in %s (legacy written=%s, new written=%s) changes status and updated_at there, takes the entry off the queue, and nothing else',
      async (stage, writesLegacy, writesNew) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, record());
        await putJob(NEW, record());
        await putQueueAndIndex();

        const before = Date.now();
        const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' });
        const after = Date.now();

        expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'running', repaired: 'none', expiresAt: null });
        const state = await redisState(ctx.redis);
        const now = freshUpdatedAt(state, writesLegacy ? LEGACY : NEW, before, after);
        const updated = jobHash(record({ status: 'running', updatedAt: now }));
        const untouched = jobHash(record());
        expect(state).toEqual({
          [LEGACY]: writesLegacy ? updated : untouched,
          [NEW]: writesNew ? updated : untouched,
          ...queueAndIndex(false),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
      },
    );
  });

  describe('repairs in the stages that write both layouts', () => {
    it.each(BOTH_WRITE)(
      'in %s a legacy-only job is copied whole into the new layout, indexed at its created_at, then updated (repaired: new)',
      async (stage) => {
        const logger = recordingLogger();
        const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
        await putJob(LEGACY, record({ status: 'running' }));
        // Jobs older and newer than j1 already indexed: j1 must land between them, at its created_at.
        await ctx.redis.zadd(INDEX, CREATED - 1_000, 'older', CREATED + 1_000, 'newer');
        await ctx.redis.rpush(QUEUE, 'j1');

        const before = Date.now();
        const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'succeeded' });
        const after = Date.now();

        expect(result).toEqual({ jobId: 'j1', previousStatus: 'running', status: 'succeeded', repaired: 'new', expiresAt: null });
        const state = await redisState(ctx.redis);
        const now = freshUpdatedAt(state, LEGACY, before, after);
        const updated = jobHash(record({ status: 'succeeded', updatedAt: now }));
        expect(state).toEqual({
          [LEGACY]: updated,
          [NEW]: updated,
          [INDEX]: zset(['older', CREATED - 1_000], ['j1', CREATED], ['newer', CREATED + 1_000]),
          [QUEUE]: list('j1'),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1, repairedNew: 1 });
        expect(logger.warn).toHaveBeenCalledTimes(1);
        expect(logger.warn.mock.calls[0][1]).toMatchObject({ target: 'new', stage });
      },
    );

    it.each(BOTH_WRITE)(
      'in %s a new-only job is copied whole back into the legacy layout, then updated (repaired: legacy)',
      async (stage) => {
        const logger = recordingLogger();
        const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
        await putJob(NEW, record({ status: 'running' }));
        await putQueueAndIndex();

        const before = Date.now();
        const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'failed' });
        const after = Date.now();

        expect(result).toEqual({ jobId: 'j1', previousStatus: 'running', status: 'failed', repaired: 'legacy', expiresAt: null });
        const state = await redisState(ctx.redis);
        const now = freshUpdatedAt(state, NEW, before, after);
        const updated = jobHash(record({ status: 'failed', updatedAt: now }));
        expect(state).toEqual({ [LEGACY]: updated, [NEW]: updated, ...queueAndIndex() });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1, repairedLegacy: 1 });
        expect(logger.warn).toHaveBeenCalledTimes(1);
        expect(logger.warn.mock.calls[0][1]).toMatchObject({ target: 'legacy', stage });
      },
    );

    it.each<[string, string, string]>([
      ['legacy-only', LEGACY, NEW],
      ['new-only', NEW, LEGACY],
    ])('a repair of a %s job copies its absolute expiry: both copies expire at the same millisecond', async (_what, from, to) => {
      const { queue } = await makeQueue(ctx.redis, 'live');
      await putJob(from, record({ status: 'running' }));
      const expiresAt = Date.now() + 3_600_123;
      await ctx.redis.pexpireat(from, expiresAt);

      await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'succeeded' });

      const state = await redisState(ctx.redis);
      expect([state[from].expiresAt, state[to].expiresAt]).toEqual([expiresAt, expiresAt]);
    });

    it('does not count, log or report a repair when both layouts already hold the job', async () => {
      const logger = recordingLogger();
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite', { logger });
      await putJob(LEGACY, record());
      await putJob(NEW, record());

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'cancelled' });
      const after = Date.now();

      expect(result.repaired).toBe('none');
      const state = await redisState(ctx.redis);
      const now = freshUpdatedAt(state, NEW, before, after);
      const updated = jobHash(record({ status: 'cancelled', updatedAt: now }));
      expect(state).toEqual({ [LEGACY]: updated, [NEW]: updated });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
      expect(logger.warn).not.toHaveBeenCalled();
    });
  });

  describe('no repair in the stages that write one layout', () => {
    it.each<[Stage, string, string]>([
      ['complete', 'legacy-only', LEGACY],
      ['off', 'new-only', NEW],
    ])('in %s a %s job is a NotFoundError and nothing is copied or written', async (stage, _, key) => {
      const logger = recordingLogger();
      const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
      await putJob(key, record());
      await putQueueAndIndex();

      const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ code: 'NOT_FOUND', workspaceId: 'acme', jobId: 'j1' });
      expect(await redisState(ctx.redis)).toEqual({ [key]: jobHash(record()), ...queueAndIndex() });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, not_found: 1 });
      expect(logger.warn).not.toHaveBeenCalled();
    });
  });

  describe('expectedStatus (compare-and-set)', () => {
    it('writes both layouts when the status matches, and reports the status it replaced', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await putJob(LEGACY, record({ status: 'running' }));
      await putJob(NEW, record({ status: 'running' }));

      const before = Date.now();
      const result = await queue.updateStatus({
        workspaceId: 'acme',
        jobId: 'j1',
        status: 'succeeded',
        expectedStatus: 'running',
      });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'running', status: 'succeeded', repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const now = freshUpdatedAt(state, LEGACY, before, after);
      const updated = jobHash(record({ status: 'succeeded', updatedAt: now }));
      expect(state).toEqual({ [LEGACY]: updated, [NEW]: updated });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
    });

    it('refuses a mismatch with a StatusConflictError carrying expected and actual, writing nothing', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await putJob(LEGACY, record({ status: 'queued' }));
      await putJob(NEW, record({ status: 'queued' }));
      await putQueueAndIndex();

      const error = await queue
        .updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'succeeded', expectedStatus: 'running' })
        .catch((e) => e);

      expect(error).toBeInstanceOf(StatusConflictError);
      expect(error).toMatchObject({ code: 'STATUS_CONFLICT', jobId: 'j1', expected: 'running', actual: 'queued' });
      expect(await redisState(ctx.redis)).toEqual({
        [LEGACY]: jobHash(record({ status: 'queued' })),
        [NEW]: jobHash(record({ status: 'queued' })),
        ...queueAndIndex(),
      });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, status_conflict: 1 });
    });

    it('compares a repair against the only record there is: a legacy-only job that mismatches is neither copied nor updated', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'live');
      await putJob(LEGACY, record({ status: 'succeeded' }));

      const error = await queue
        .updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running', expectedStatus: 'queued' })
        .catch((e) => e);

      expect(error).toBeInstanceOf(StatusConflictError);
      expect(error).toMatchObject({ expected: 'queued', actual: 'succeeded' });
      expect(await redisState(ctx.redis)).toEqual({ [LEGACY]: jobHash(record({ status: 'succeeded' })) });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, status_conflict: 1 });
    });

    // The layouts disagree: legacy says running, new says queued. Only the stage's authoritative
    // layout (its read origin) decides whether the expected status holds.
    const legacySays: JobStatus = 'running';
    const newSays: JobStatus = 'queued';
    const authoritative = (stage: Stage): JobStatus => (AUTHORITY[stage] === 'legacy' ? legacySays : newSays);
    const otherLayout = (stage: Stage): JobStatus => (AUTHORITY[stage] === 'legacy' ? newSays : legacySays);

    it.each(ALL_STAGES)(
      'in %s, with the layouts disagreeing, an expectedStatus matching the authoritative layout writes',
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, record({ status: legacySays }));
        await putJob(NEW, record({ status: newSays }));

        const before = Date.now();
        const result = await queue.updateStatus({
          workspaceId: 'acme',
          jobId: 'j1',
          status: 'cancelled',
          expectedStatus: authoritative(stage),
        });
        const after = Date.now();

        expect(result).toEqual({ jobId: 'j1', previousStatus: authoritative(stage), status: 'cancelled', repaired: 'none', expiresAt: null });
        const state = await redisState(ctx.redis);
        const writesLegacy = UPDATES_LEGACY_TWIN.includes(stage);
        const writesNew = WRITES_NEW.includes(stage);
        const now = freshUpdatedAt(state, writesLegacy ? LEGACY : NEW, before, after);
        const updated = jobHash(record({ status: 'cancelled', updatedAt: now }));
        expect(state).toEqual({
          [LEGACY]: writesLegacy ? updated : jobHash(record({ status: legacySays })),
          [NEW]: writesNew ? updated : jobHash(record({ status: newSays })),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
      },
    );

    it.each(ALL_STAGES)(
      'in %s, with the layouts disagreeing, an expectedStatus matching only the other layout is a StatusConflictError',
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, record({ status: legacySays }));
        await putJob(NEW, record({ status: newSays }));

        const error = await queue
          .updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'cancelled', expectedStatus: otherLayout(stage) })
          .catch((e) => e);

        expect(error).toBeInstanceOf(StatusConflictError);
        expect(error).toMatchObject({
          code: 'STATUS_CONFLICT',
          jobId: 'j1',
          expected: otherLayout(stage),
          actual: authoritative(stage),
        });
        expect(await redisState(ctx.redis)).toEqual({
          [LEGACY]: jobHash(record({ status: legacySays })),
          [NEW]: jobHash(record({ status: newSays })),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, status_conflict: 1 });
      },
    );
  });

  describe("status 'queued' (no queue entry goes with it)", () => {
    it.each(ALL_STAGES.flatMap((stage) => (['running', 'succeeded', 'failed', 'cancelled'] as const).map((from) => [stage, from] as const)))(
      'in %s a %s job is refused with a StatusConflictError, nothing written: it would be stranded',
      async (stage, from) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        if (WRITES_LEGACY.includes(stage)) await putJob(LEGACY, record({ status: from }));
        if (WRITES_NEW.includes(stage)) await putJob(NEW, record({ status: from }));
        await putQueueAndIndex();
        const before = await redisState(ctx.redis);

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'queued' }).catch((e) => e);

        expect(error).toBeInstanceOf(StatusConflictError);
        expect(error).toMatchObject({ code: 'STATUS_CONFLICT', jobId: 'j1', expected: 'queued', actual: from });
        expect(error.message).toContain('only a queued job');
        expect(await redisState(ctx.redis)).toEqual(before);
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, status_conflict: 1 });
      },
    );

    it('a matching expectedStatus does not lift the rule', async () => {
      const { queue } = await makeQueue(ctx.redis, 'live');
      await putJob(LEGACY, record({ status: 'failed' }));
      await putJob(NEW, record({ status: 'failed' }));
      const before = await redisState(ctx.redis);

      const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'queued', expectedStatus: 'failed' }).catch((e) => e);

      expect(error).toMatchObject({ code: 'STATUS_CONFLICT', expected: 'queued', actual: 'failed' });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    // A stay in off (or complete) leaves the layout it did not write behind: there the job still
    // says 'queued' while the written one says it left the queue (and its entry went with it). The
    // read origin may be the copy left behind; writing 'queued' into both would strand the job.
    it.each(BOTH_WRITE.flatMap((stage) => (['legacy', 'new'] as const).map((behind) => [stage, behind] as const)))(
      'in %s a job still queued in the %s layout but running in the other is refused, nothing written: it left the queue',
      async (stage, behind) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, record({ status: behind === 'legacy' ? 'queued' : 'running', updatedAt: behind === 'legacy' ? UPDATED : UPDATED + 1 }));
        await putJob(NEW, record({ status: behind === 'new' ? 'queued' : 'running', updatedAt: behind === 'new' ? UPDATED : UPDATED + 1 }));
        await ctx.redis.rpush(QUEUE, 'j0');
        await ctx.redis.zadd(INDEX, CREATED - 1_000, 'j0', CREATED, 'j1');
        const before = await redisState(ctx.redis);

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'queued' }).catch((e) => e);

        expect(error).toBeInstanceOf(StatusConflictError);
        expect(error).toMatchObject({ code: 'STATUS_CONFLICT', jobId: 'j1', expected: 'queued', actual: 'running' });
        expect(await redisState(ctx.redis)).toEqual(before);
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, status_conflict: 1 });
      },
    );

    it('a queued job may still be set to queued (it keeps its entry)', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await putJob(LEGACY, record());
      await putJob(NEW, record());

      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'queued' });

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'queued', repaired: 'none', expiresAt: null });
    });
  });

  describe('unknown jobs', () => {
    it.each(ALL_STAGES)('in %s an unknown jobId is a NotFoundError and nothing is written', async (stage) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      // Another job of the same workspace in both layouts, plus its queue and index entries.
      await putJob('job:j0', record({ id: 'j0' }));
      await putJob('ws:acme:job:j0', record({ id: 'j0' }));
      await putQueueAndIndex();

      const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ code: 'NOT_FOUND', workspaceId: 'acme', jobId: 'j1' });
      expect(await redisState(ctx.redis)).toEqual({
        'job:j0': jobHash(record({ id: 'j0' })),
        'ws:acme:job:j0': jobHash(record({ id: 'j0' })),
        ...queueAndIndex(),
      });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, not_found: 1 });
    });
  });

  describe('tenancy', () => {
    const foreignLegacy = () => record({ workspaceId: 'other', status: 'running' });

    it.each(ALL_STAGES)(
      "in %s another workspace's legacy record under job:<id> is not found and is never overwritten",
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, foreignLegacy());
        await ctx.redis.zadd('ws:other:jobs', CREATED, 'j1');

        const error = await queue
          .updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'cancelled' })
          .catch((e) => e);

        expect(error).toBeInstanceOf(NotFoundError);
        expect(error).toMatchObject({ code: 'NOT_FOUND', workspaceId: 'acme', jobId: 'j1' });
        // No repair copied the foreign record into acme's layout or index, and its status stands.
        expect(await redisState(ctx.redis)).toEqual({
          [LEGACY]: jobHash(foreignLegacy()),
          'ws:other:jobs': zset(['j1', CREATED]),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, not_found: 1 });
      },
    );

    it.each(BOTH_WRITE)(
      "in %s updates our new record whose job:<id> belongs to another workspace, never that key, and counts the collision",
      async (stage) => {
        // A job made in complete, then a rollback, then another workspace took the legacy key: the
        // job can have no legacy twin, but it must not be stranded either.
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, foreignLegacy());
        await putJob(NEW, record());
        await putQueueAndIndex();

        const before = Date.now();
        const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'succeeded' });
        const after = Date.now();

        expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'succeeded', repaired: 'none', expiresAt: null });
        const state = await redisState(ctx.redis);
        const now = freshUpdatedAt(state, NEW, before, after);
        expect(state).toEqual({
          [LEGACY]: jobHash(foreignLegacy()),
          [NEW]: jobHash(record({ status: 'succeeded', updatedAt: now })),
          ...queueAndIndex(),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
        expect(await metricValue(registry, 'dualwrite_divergences_total', { kind: 'job_id_collision' })).toBe(1);
      },
    );

    it("in complete updates our new record and leaves another workspace's job:<id> alone (that layout is not written)", async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'complete');
      await putJob(LEGACY, foreignLegacy());
      await putJob(NEW, record());

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'succeeded' });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'succeeded', repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const now = freshUpdatedAt(state, NEW, before, after);
      expect(state).toEqual({
        [LEGACY]: jobHash(foreignLegacy()),
        [NEW]: jobHash(record({ status: 'succeeded', updatedAt: now })),
      });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
    });

    it.each(ALL_STAGES)(
      "in %s a new record under another workspace's key is out of reach: NotFoundError, nothing written",
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        const theirs = record({ workspaceId: 'other' });
        await putJob('ws:other:job:j1', theirs);
        await ctx.redis.zadd('ws:other:jobs', CREATED, 'j1');

        const error = await queue
          .updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'cancelled' })
          .catch((e) => e);

        expect(error).toBeInstanceOf(NotFoundError);
        expect(error).toMatchObject({ code: 'NOT_FOUND', workspaceId: 'acme', jobId: 'j1' });
        expect(await redisState(ctx.redis)).toEqual({
          'ws:other:job:j1': jobHash(theirs),
          'ws:other:jobs': zset(['j1', CREATED]),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, not_found: 1 });
      },
    );
  });

  describe('wrong key types', () => {
    it.each(WRITES_LEGACY)(
      'in %s a legacy key holding a string is a KeyTypeError naming it, and nothing is written',
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await ctx.redis.set(LEGACY, 'not a hash');
        await putJob(NEW, record());
        await putQueueAndIndex();

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

        expect(error).toBeInstanceOf(KeyTypeError);
        expect(error).toMatchObject({ code: 'KEY_TYPE', key: LEGACY, expectedType: 'hash', actualType: 'string' });
        expect(await redisState(ctx.redis)).toEqual({
          [LEGACY]: str('not a hash'),
          [NEW]: jobHash(record()),
          ...queueAndIndex(),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, key_type: 1 });
      },
    );

    it.each(WRITES_NEW)(
      'in %s a new-layout key holding a list is a KeyTypeError naming it, and nothing is written',
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        await putJob(LEGACY, record());
        await ctx.redis.rpush(NEW, 'not', 'a', 'hash');
        await putQueueAndIndex();

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

        expect(error).toBeInstanceOf(KeyTypeError);
        expect(error).toMatchObject({ code: 'KEY_TYPE', key: NEW, expectedType: 'hash', actualType: 'list' });
        expect(await redisState(ctx.redis)).toEqual({
          [LEGACY]: jobHash(record()),
          [NEW]: list('not', 'a', 'hash'),
          ...queueAndIndex(),
        });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, key_type: 1 });
      },
    );

    it.each(BOTH_WRITE)(
      'in %s a workspace index holding a list is a KeyTypeError before a repair writes anything',
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        // A legacy-only job: the update would copy it into the new layout and index it.
        await putJob(LEGACY, record());
        await ctx.redis.rpush(INDEX, 'j0');

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

        expect(error).toBeInstanceOf(KeyTypeError);
        expect(error).toMatchObject({ code: 'KEY_TYPE', key: INDEX, expectedType: 'zset', actualType: 'list' });
        // Neither the new record nor the legacy status change was left behind.
        expect(await redisState(ctx.redis)).toEqual({ [LEGACY]: jobHash(record()), [INDEX]: list('j0') });
        expect(await counts(registry)).toEqual({ ...NO_COUNTS, key_type: 1 });
      },
    );

    it.each<[Stage, string, string, KeyState, () => Promise<unknown>]>([
      ['off', 'a new-layout key holding a list', LEGACY, list('x'), () => ctx.redis.rpush(NEW, 'x')],
      ['complete', 'a legacy key holding a string', NEW, str('x'), () => ctx.redis.set(LEGACY, 'x')],
    ])('in %s %s is ignored, as that layout is neither read nor written', async (stage, _, jobKey, junk, arrange) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      await putJob(jobKey, record());
      await arrange();
      const junkKey = jobKey === LEGACY ? NEW : LEGACY;

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'running', repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const now = freshUpdatedAt(state, jobKey, before, after);
      expect(state).toEqual({ [jobKey]: jobHash(record({ status: 'running', updatedAt: now })), [junkKey]: junk });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
    });
  });

  describe('previousStatus', () => {
    it.each<[Stage, JobStatus, JobStatus]>([
      ['off', 'failed', 'cancelled'],
      ['shadow', 'succeeded', 'running'],
      ['rampdown', 'queued', 'cancelled'],
      ['complete', 'running', 'failed'],
    ])('in %s reports the %s status the update replaced with %s', async (stage, previous, next) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      if (WRITES_LEGACY.includes(stage)) await putJob(LEGACY, record({ status: previous }));
      if (WRITES_NEW.includes(stage)) await putJob(NEW, record({ status: previous }));

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: next });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: previous, status: next, repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const key = WRITES_LEGACY.includes(stage) ? LEGACY : NEW;
      const now = freshUpdatedAt(state, key, before, after);
      const updated = jobHash(record({ status: next, updatedAt: now }));
      const expected: Record<string, KeyState> = {};
      if (WRITES_LEGACY.includes(stage)) expected[LEGACY] = updated;
      if (WRITES_NEW.includes(stage)) expected[NEW] = updated;
      expect(state).toEqual(expected);
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, ok: 1 });
    });
  });

  describe('bad input', () => {
    it.each<[string, Record<string, unknown>, string, string]>([
      ['a status outside the five', { status: 'done' }, 'status', 'status'],
      ['an expectedStatus outside the five', { status: 'running', expectedStatus: 'Queued' }, 'expectedStatus', 'status'],
      ['a misspelt option', { status: 'running', expectStatus: 'queued' }, 'input.expectStatus', 'unknown-field'],
      ['a jobId with a colon', { status: 'running', jobId: 'j1:x' }, 'jobId', 'format'],
    ])('refuses %s with a ValidationError before touching Redis', async (_, change, field, rule) => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await putJob(LEGACY, record());
      await putJob(NEW, record());

      const input = { workspaceId: 'acme', jobId: 'j1', ...change } as unknown as Parameters<typeof queue.updateStatus>[0];
      await ctx.redis.config('RESETSTAT');
      const error = await queue.updateStatus(input).catch((e) => e);

      // No script ran: the input was refused before anything was sent.
      expect(String(await ctx.redis.info('commandstats'))).not.toMatch(/^cmdstat_eval/m);
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', field, rule });
      expect(await redisState(ctx.redis)).toEqual({ [LEGACY]: jobHash(record()), [NEW]: jobHash(record()) });
      expect(await counts(registry)).toEqual({ ...NO_COUNTS, validation: 1 });
    });
  });
});
