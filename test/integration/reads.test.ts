import type { Registry } from 'prom-client';
import { KeyTypeError, STAGES, ValidationError, type DualWriteQueue, type Job, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { jobFields, putJob, redisState, type JobRecord } from '../support/state';

const ctx = useRedis();

/** A fixed clock for arranged records: index scores and created_at are set by hand. */
const T0 = 1_700_000_000_000;

type StoredJob = JobRecord;

function record(id: string, overrides: Partial<StoredJob> = {}): StoredJob {
  return {
    id,
    workspaceId: 'acme',
    type: 'email.send',
    payload: { to: `${id}@example.com`, n: [1, 2] },
    status: 'queued',
    createdAt: T0,
    updatedAt: T0 + 5,
    ...overrides,
  };
}

/** A job from before dual-write: only the global legacy hash job:<jobId>. */
async function putLegacy(job: StoredJob): Promise<void> {
  await putJob(ctx.redis, `job:${job.id}`, job);
}

/** A job only the workspace-scoped layout holds: ws:<workspaceId>:job:<jobId>. */
async function putNew(job: StoredJob): Promise<void> {
  await putJob(ctx.redis, `ws:${job.workspaceId}:job:${job.id}`, job);
}

/** An entry of the workspace index ws:<workspaceId>:jobs (score: created_at in ms). */
async function putIndex(workspaceId: string, jobId: string, score: number): Promise<void> {
  await ctx.redis.zadd(`ws:${workspaceId}:jobs`, score, jobId);
}

/** What getJob/listJobs must answer for a stored record read from `source`. */
function asJob(job: StoredJob, source: 'legacy' | 'new'): Job {
  return {
    id: job.id,
    workspaceId: job.workspaceId,
    type: job.type,
    payload: job.payload,
    status: job.status as Job['status'],
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    attempts: 0,
    source,
  };
}

const KINDS = ['missing_new', 'missing_legacy', 'field_mismatch', 'index_orphan', 'corrupt_record'] as const;
type Kind = (typeof KINDS)[number];
const NO_DIVERGENCE: Record<Kind, number> = {
  missing_new: 0,
  missing_legacy: 0,
  field_mismatch: 0,
  index_orphan: 0,
  corrupt_record: 0,
};

/** Every divergence kind's count, so a test also fails on a kind it did not expect. */
async function divergences(registry: Registry): Promise<Record<Kind, number>> {
  const counts = { ...NO_DIVERGENCE };
  for (const kind of KINDS) counts[kind] = await metricValue(registry, 'dualwrite_divergences_total', { kind });
  return counts;
}

async function fallbacks(registry: Registry, operation: 'get_job' | 'list_jobs'): Promise<number> {
  return metricValue(registry, 'dualwrite_read_fallbacks_total', { operation });
}

async function operations(registry: Registry, operation: 'get_job' | 'list_jobs', outcome: string): Promise<number> {
  return metricValue(registry, 'dualwrite_operations_total', { operation, outcome });
}

/** Follows nextCursor to the end; fails rather than loop forever. */
async function allPages(
  queue: DualWriteQueue,
  input: { workspaceId: string; limit?: number; status?: Job['status'] },
): Promise<Job[][]> {
  const pages: Job[][] = [];
  let cursor: string | null = null;
  do {
    const page = await queue.listJobs({ ...input, cursor });
    pages.push(page.jobs);
    cursor = page.nextCursor;
    if (pages.length > 100) throw new Error('listJobs never returned nextCursor null');
  } while (cursor !== null);
  return pages;
}

const ids = (jobs: readonly Job[]) => jobs.map((job) => job.id);

describe('getJob', () => {
  describe('follows the stage table', () => {
    // The two layouts hold different versions of one job, so the answer shows which was returned.
    const legacy = record('j1', { status: 'queued', updatedAt: T0 + 5 });
    const fresh = record('j1', { status: 'running', updatedAt: T0 + 9 });

    it.each<[Stage, 'legacy' | 'new', Partial<Record<Kind, number>>]>([
      ['off', 'legacy', {}],
      ['dualwrite', 'legacy', {}],
      ['shadow', 'legacy', { field_mismatch: 1 }],
      ['live', 'new', { field_mismatch: 1 }],
      ['rampdown', 'new', {}],
      ['complete', 'new', {}],
    ])('in %s, with both layouts differing, returns the %s record (divergences %j)', async (stage, source, counted) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      await putLegacy(legacy);
      await putNew(fresh);
      const before = await redisState(ctx.redis);

      const job = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

      expect(job).toEqual(asJob(source === 'legacy' ? legacy : fresh, source));
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, ...counted });
      expect(await fallbacks(registry, 'get_job')).toBe(0);
      expect(await operations(registry, 'get_job', 'ok')).toBe(1);
    });

    it.each<[Stage, 'legacy' | 'new']>([
      ['off', 'legacy'],
      ['dualwrite', 'legacy'],
      ['shadow', 'legacy'],
      ['live', 'new'],
      ['rampdown', 'new'],
      ['complete', 'new'],
    ])('in %s, with both layouts equal, returns the %s record and counts no divergence', async (stage, source) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      const job = record('j1');
      await putLegacy(job);
      await putNew(job);
      const before = await redisState(ctx.redis);

      const read = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

      expect(read).toEqual(asJob(job, source));
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await divergences(registry)).toEqual(NO_DIVERGENCE);
      expect(await fallbacks(registry, 'get_job')).toBe(0);
    });

    it.each<[Stage, boolean, number, Partial<Record<Kind, number>>]>([
      ['off', true, 0, {}],
      ['dualwrite', true, 0, {}],
      ['shadow', true, 0, { missing_new: 1 }],
      ['live', true, 1, { missing_new: 1 }],
      ['rampdown', true, 1, {}],
      ['complete', false, 0, {}],
    ])('in %s, a legacy-only job is found=%s (fallbacks counted: %d, divergences %j)', async (stage, found, fellBack, counted) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      const job = record('old');
      await putLegacy(job);
      const before = await redisState(ctx.redis);

      const read = await queue.getJob({ workspaceId: 'acme', jobId: 'old' });

      expect(read).toEqual(found ? asJob(job, 'legacy') : null);
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await fallbacks(registry, 'get_job')).toBe(fellBack);
      expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, ...counted });
      expect(await operations(registry, 'get_job', found ? 'ok' : 'not_found')).toBe(1);
    });

    it.each<[Stage, boolean, Partial<Record<Kind, number>>]>([
      ['off', false, {}],
      ['dualwrite', false, {}],
      ['shadow', false, { missing_legacy: 1 }],
      ['live', true, { missing_legacy: 1 }],
      ['rampdown', true, {}],
      ['complete', true, {}],
    ])('in %s, a new-only job is found=%s (divergences %j), never counted as a fallback', async (stage, found, counted) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      const job = record('fresh');
      await putNew(job);
      const before = await redisState(ctx.redis);

      const read = await queue.getJob({ workspaceId: 'acme', jobId: 'fresh' });

      expect(read).toEqual(found ? asJob(job, 'new') : null);
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await fallbacks(registry, 'get_job')).toBe(0);
      expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, ...counted });
      expect(await operations(registry, 'get_job', found ? 'ok' : 'not_found')).toBe(1);
    });

    it.each<[Stage, string, string]>([
      ['off', 'ws:acme:job:j1', 'new'],
      ['dualwrite', 'ws:acme:job:j1', 'new'],
      ['complete', 'job:j1', 'legacy'],
      ['rampdown', 'job:j1', 'legacy'],
    ])('in %s, a wrong-typed %s is not even looked at: the %s layout is not needed', async (stage, untouchedKey) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      const job = record('j1');
      const readsLegacy = untouchedKey.startsWith('ws:');
      if (readsLegacy) await putLegacy(job);
      else await putNew(job);
      await ctx.redis.set(untouchedKey, 'not a hash');
      const before = await redisState(ctx.redis);

      const read = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

      expect(read).toEqual(asJob(job, readsLegacy ? 'legacy' : 'new'));
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it.each<[Stage, string]>([
      ['off', 'job:j1'],
      ['shadow', 'ws:acme:job:j1'],
      ['live', 'job:j1'],
      ['rampdown', 'job:j1'],
      ['complete', 'ws:acme:job:j1'],
    ])('in %s, a wrong-typed %s that the read needs is a KeyTypeError naming it', async (stage, key) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      await ctx.redis.rpush(key, 'not a hash');
      const before = await redisState(ctx.redis);

      const error = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' }).catch((e) => e);

      expect(error).toBeInstanceOf(KeyTypeError);
      expect(error).toMatchObject({ code: 'KEY_TYPE', key, expectedType: 'hash', actualType: 'list' });
      expect(await redisState(ctx.redis)).toEqual(before);
    });
  });

  describe('compares the layouts field by field in shadow and live', () => {
    const cases: [string, Partial<StoredJob> | { extra: string }][] = [
      ['status', { status: 'failed' }],
      ['payload', { payload: { to: 'someone-else@example.com', n: [1, 2] } }],
      ['type', { type: 'sms.send' }],
      ['created_at', { createdAt: T0 - 1 }],
      ['updated_at', { updatedAt: T0 + 1000 }],
      ['an extra field', { extra: 'x' }],
    ];
    for (const stage of ['shadow', 'live'] as const) {
      it.each(cases)(`in ${stage}, a record differing only in %s is a field_mismatch; the caller gets the stage's answer`, async (_, change) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        const legacy = record('j1');
        await putLegacy(legacy);
        let fresh = legacy;
        if ('extra' in change) {
          await putNew(legacy);
          await ctx.redis.hset('ws:acme:job:j1', 'extra', change.extra);
        } else {
          fresh = { ...legacy, ...change };
          await putNew(fresh);
        }
        const before = await redisState(ctx.redis);

        const read = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

        expect(read).toEqual(stage === 'shadow' ? asJob(legacy, 'legacy') : asJob(fresh, 'new'));
        expect(await redisState(ctx.redis)).toEqual(before);
        expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, field_mismatch: 1 });
        expect(await fallbacks(registry, 'get_job')).toBe(0);
      });

      it(`in ${stage}, records holding the same fields in another order agree: no divergence`, async () => {
        const logger = { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
        const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
        const job = record('j1');
        await putLegacy(job);
        // The same fields and values, added in reverse order: a hash keeps the order of its fields.
        await ctx.redis.hset('ws:acme:job:j1', ...Object.entries(jobFields(job)).reverse().flat());
        const before = await redisState(ctx.redis);

        const read = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

        expect(read).toEqual(asJob(job, stage === 'shadow' ? 'legacy' : 'new'));
        expect(await redisState(ctx.redis)).toEqual(before);
        expect(await divergences(registry)).toEqual(NO_DIVERGENCE);
        expect(logger.warn).not.toHaveBeenCalled();
      });

      it(`in ${stage}, the differing fields are named, sorted: changed, only in legacy, only in new`, async () => {
        const logger = { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
        const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
        const legacy = record('j1');
        await putLegacy(legacy);
        await ctx.redis.hset('job:j1', 'zeta', 'legacy only');
        await putNew({ ...legacy, status: 'failed', type: 'sms.send' });
        await ctx.redis.hset('ws:acme:job:j1', 'alpha', 'new only');

        await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

        expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, field_mismatch: 1 });
        expect(logger.warn.mock.calls).toEqual([
          ['redis-dual-write: layouts differ', { operation: 'get_job', kind: 'field_mismatch', differingFields: ['alpha', 'status', 'type', 'zeta'], stage }],
        ]);
      });

      it(`in ${stage}, a page of jobs each differing in its own way reads each job with its own divergence`, async () => {
        const logger = { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() };
        const { queue, registry } = await makeQueue(ctx.redis, stage, { logger });
        const same = record('a-same', { createdAt: T0 + 4 });
        const changed = record('b-changed', { createdAt: T0 + 3 });
        const legacyOnly = record('c-legacy', { createdAt: T0 + 2 });
        const newOnly = record('d-new', { createdAt: T0 + 1 });
        for (const job of [same, changed, legacyOnly]) await putLegacy(job);
        await putNew(same);
        await putNew({ ...changed, payload: { other: true } });
        await putNew(newOnly);
        for (const job of [same, changed, legacyOnly, newOnly]) await putIndex('acme', job.id, job.createdAt);

        const { jobs } = await queue.listJobs({ workspaceId: 'acme' });

        const origin = stage === 'shadow' ? 'legacy' : 'new';
        expect(jobs).toEqual(
          stage === 'shadow'
            ? [asJob(same, origin), asJob(changed, origin), asJob(legacyOnly, 'legacy')]
            : [asJob(same, origin), asJob({ ...changed, payload: { other: true } }, origin), asJob(legacyOnly, 'legacy'), asJob(newOnly, 'new')],
        );
        // In shadow the new-only job has no record at the read origin: its index entry is an orphan.
        const orphans = stage === 'shadow' ? 1 : 0;
        expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, field_mismatch: 1, missing_new: 1, missing_legacy: 1, index_orphan: orphans });
        const differ = logger.warn.mock.calls.filter(([message]) => message === 'redis-dual-write: layouts differ');
        expect(differ.map(([, facts]) => [facts.kind, facts.differingFields])).toEqual([
          ['field_mismatch', ['payload']],
          ['missing_new', []],
          ['missing_legacy', []],
        ]);
      });
    }
  });

  describe('tenancy', () => {
    it.each(STAGES)('in %s, a legacy record whose workspace_id is another workspace is null, fallback included', async (stage) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      await putLegacy(record('shared', { workspaceId: 'other' }));
      const before = await redisState(ctx.redis);

      const read = await queue.getJob({ workspaceId: 'acme', jobId: 'shared' });

      expect(read).toBeNull();
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await fallbacks(registry, 'get_job')).toBe(0);
      expect(await divergences(registry)).toEqual(NO_DIVERGENCE);
      expect(await operations(registry, 'get_job', 'not_found')).toBe(1);
      expect(await operations(registry, 'get_job', 'ok')).toBe(0);
    });

    it.each(['off', 'dualwrite', 'shadow', 'live', 'rampdown'] as const)(
      'in %s, the same legacy record is visible to its own workspace (the arrangement is readable)',
      async (stage) => {
        const { queue } = await makeQueue(ctx.redis, stage);
        const job = record('shared', { workspaceId: 'other' });
        await putLegacy(job);
        const before = await redisState(ctx.redis);

        expect(await queue.getJob({ workspaceId: 'other', jobId: 'shared' })).toEqual(asJob(job, 'legacy'));
        expect(await redisState(ctx.redis)).toEqual(before);
      },
    );

    it.each(STAGES)('in %s, a job enqueued for workspace A is never visible through workspace B', async (stage) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      const { jobId } = await queue.enqueue({ workspaceId: 'ws-a', type: 't', payload: { secret: 1 } });
      const before = await redisState(ctx.redis);

      const asB = await queue.getJob({ workspaceId: 'ws-b', jobId });
      const asA = await queue.getJob({ workspaceId: 'ws-a', jobId });

      expect(asB).toBeNull();
      expect(asA).toMatchObject({ id: jobId, workspaceId: 'ws-a', payload: { secret: 1 } });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await fallbacks(registry, 'get_job')).toBe(0);
      expect(await operations(registry, 'get_job', 'not_found')).toBe(1);
    });
  });

  it('returns a Job with numeric createdAt/updatedAt, the parsed payload and its source', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.hset('job:j1', {
      id: 'j1',
      workspace_id: 'acme',
      type: 'report.build',
      payload: '{"to":"a@example.com","n":[1,2.5,null],"deep":{"ok":true}}',
      status: 'succeeded',
      created_at: '1700000000123',
      updated_at: '1700000000456',
    });
    const before = await redisState(ctx.redis);

    const job = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

    expect(job).toEqual({
      id: 'j1',
      workspaceId: 'acme',
      type: 'report.build',
      payload: { to: 'a@example.com', n: [1, 2.5, null], deep: { ok: true } },
      status: 'succeeded',
      createdAt: 1_700_000_000_123,
      updatedAt: 1_700_000_000_456,
      attempts: 0,
      source: 'legacy',
    });
    expect(typeof job!.createdAt).toBe('number');
    expect(typeof job!.updatedAt).toBe('number');
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await operations(registry, 'get_job', 'ok')).toBe(1);
  });

  it('returns a legacy payload that is not JSON as its text and counts a corrupt_record', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    await ctx.redis.hset('job:j1', { ...jobFields(record('j1')), payload: 'not {json' });
    const before = await redisState(ctx.redis);

    const job = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });

    expect(job).toMatchObject({ id: 'j1', payload: 'not {json', source: 'legacy' });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, corrupt_record: 1 });
  });

  it.each(STAGES)('in %s, an unknown job is null and counted as not_found', async (stage) => {
    const { queue, registry } = await makeQueue(ctx.redis, stage);
    await putLegacy(record('other-job'));
    await putNew(record('other-job'));
    const before = await redisState(ctx.redis);

    const job = await queue.getJob({ workspaceId: 'acme', jobId: 'missing' });

    expect(job).toBeNull();
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await operations(registry, 'get_job', 'not_found')).toBe(1);
    expect(await operations(registry, 'get_job', 'ok')).toBe(0);
    expect(await fallbacks(registry, 'get_job')).toBe(0);
    expect(await divergences(registry)).toEqual(NO_DIVERGENCE);
  });

  it.each([
    ['workspaceId', { workspaceId: 'a:b', jobId: 'j1' }],
    ['jobId', { workspaceId: 'acme', jobId: 'j*' }],
  ])('refuses a bad %s with a ValidationError before reading', async (field, input) => {
    const { queue, registry } = await makeQueue(ctx.redis, 'live');
    await putNew(record('j1'));
    const before = await redisState(ctx.redis);

    const error = await queue.getJob(input).catch((e) => e);

    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'VALIDATION', field });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await operations(registry, 'get_job', 'validation')).toBe(1);
  });
});

describe('listJobs', () => {
  /** Jobs in both layouts, indexed at the given scores (created_at). */
  async function arrangeBoth(workspaceId: string, jobs: [string, number, Partial<StoredJob>?][]): Promise<StoredJob[]> {
    const stored: StoredJob[] = [];
    for (const [id, createdAt, overrides] of jobs) {
      const job = record(id, { workspaceId, createdAt, updatedAt: createdAt, ...overrides });
      await putLegacy(job);
      await putNew(job);
      await putIndex(workspaceId, id, createdAt);
      stored.push(job);
    }
    return stored;
  }

  it.each(STAGES)('in %s, an empty workspace lists { jobs: [], nextCursor: null }', async (stage) => {
    const { queue, registry } = await makeQueue(ctx.redis, stage);
    await arrangeBoth('other', [['x', T0]]);
    const before = await redisState(ctx.redis);

    const result = await queue.listJobs({ workspaceId: 'acme' });

    expect(result).toEqual({ jobs: [], nextCursor: null });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await operations(registry, 'list_jobs', 'ok')).toBe(1);
  });

  it('lists newest first, whatever order the jobs were written in', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    const stored = await arrangeBoth('acme', [
      ['b', T0 + 20],
      ['c', T0 + 5],
      ['a', T0 + 30],
      ['d', T0 + 10],
    ]);
    const before = await redisState(ctx.redis);

    const result = await queue.listJobs({ workspaceId: 'acme' });

    const byId = new Map(stored.map((job) => [job.id, job]));
    expect(result).toEqual({
      jobs: ['a', 'b', 'd', 'c'].map((id) => asJob(byId.get(id)!, 'legacy')),
      nextCursor: null,
    });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await divergences(registry)).toEqual(NO_DIVERGENCE);
    expect(await operations(registry, 'list_jobs', 'ok')).toBe(1);
  });

  it('pages 7 jobs by 3 as 3, 3, 1 then nextCursor null, each job once, a same-millisecond run crossing a page edge', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await arrangeBoth('acme', [
      ['job-1', T0],
      ['job-2', T0 + 1],
      ['job-3', T0 + 1],
      ['job-4', T0 + 1],
      ['job-5', T0 + 1],
      ['job-6', T0 + 2],
      ['job-7', T0 + 3],
    ]);
    const before = await redisState(ctx.redis);

    const first = await queue.listJobs({ workspaceId: 'acme', limit: 3 });
    const second = await queue.listJobs({ workspaceId: 'acme', limit: 3, cursor: first.nextCursor });
    const third = await queue.listJobs({ workspaceId: 'acme', limit: 3, cursor: second.nextCursor });

    // Newest first; within one millisecond the (created_at, jobId) order is reversed too.
    expect(ids(first.jobs)).toEqual(['job-7', 'job-6', 'job-5']);
    expect(ids(second.jobs)).toEqual(['job-4', 'job-3', 'job-2']);
    expect(ids(third.jobs)).toEqual(['job-1']);
    expect(typeof first.nextCursor).toBe('string');
    expect(typeof second.nextCursor).toBe('string');
    expect(third.nextCursor).toBeNull();
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('pages jobs that all share one millisecond, each exactly once, ordered by jobId', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    const names = ['g', 'a', 'e', 'c', 'f', 'b', 'd'];
    await arrangeBoth('acme', names.map((id) => [id, T0] as [string, number]));
    const before = await redisState(ctx.redis);

    const pages = await allPages(queue, { workspaceId: 'acme', limit: 3 });

    expect(pages.map(ids)).toEqual([['g', 'f', 'e'], ['d', 'c', 'b'], ['a']]);
    expect(pages.flat().every((job) => job.source === 'new')).toBe(true);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('with an exact multiple of the limit ends with nextCursor null on the last full page', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await arrangeBoth('acme', [
      ['a', T0 + 1],
      ['b', T0 + 2],
      ['c', T0 + 3],
      ['d', T0 + 4],
    ]);
    const before = await redisState(ctx.redis);

    const first = await queue.listJobs({ workspaceId: 'acme', limit: 2 });
    const second = await queue.listJobs({ workspaceId: 'acme', limit: 2, cursor: first.nextCursor });

    expect(await redisState(ctx.redis)).toEqual(before);
    expect(ids(first.jobs)).toEqual(['d', 'c']);
    expect(first.nextCursor).not.toBeNull();
    expect(second).toEqual({ jobs: [expect.objectContaining({ id: 'b' }), expect.objectContaining({ id: 'a' })], nextCursor: null });
  });

  it('a job enqueued between pages neither duplicates nor skips the older jobs', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await arrangeBoth('acme', [
      ['a', T0 + 1],
      ['b', T0 + 2],
      ['c', T0 + 3],
      ['d', T0 + 4],
      ['e', T0 + 5],
    ]);

    const first = await queue.listJobs({ workspaceId: 'acme', limit: 2 });
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'newcomer' });
    const before = await redisState(ctx.redis);
    const second = await queue.listJobs({ workspaceId: 'acme', limit: 2, cursor: first.nextCursor });
    const third = await queue.listJobs({ workspaceId: 'acme', limit: 2, cursor: second.nextCursor });
    const fresh = await queue.listJobs({ workspaceId: 'acme', limit: 2 });

    expect([first, second, third].map((page) => ids(page.jobs))).toEqual([['e', 'd'], ['c', 'b'], ['a']]);
    expect(third.nextCursor).toBeNull();
    // The newcomer is newest, so a listing started afresh shows it first.
    expect(ids(fresh.jobs)).toEqual(['newcomer', 'e']);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('continues correctly when the cursor job itself disappeared between pages (same millisecond)', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    await arrangeBoth('acme', [
      ['a', T0],
      ['b', T0],
      ['c', T0],
      ['d', T0],
      ['e', T0 + 1],
    ]);

    const first = await queue.listJobs({ workspaceId: 'acme', limit: 2 });
    // first page: e, d. The cursor's job d is deleted before the next page.
    await ctx.redis.del('job:d', 'ws:acme:job:d');
    await ctx.redis.zrem('ws:acme:jobs', 'd');
    const before = await redisState(ctx.redis);
    const rest = await allPages(queue, { workspaceId: 'acme', limit: 2 });
    const second = await queue.listJobs({ workspaceId: 'acme', limit: 2, cursor: first.nextCursor });
    const third = await queue.listJobs({ workspaceId: 'acme', limit: 2, cursor: second.nextCursor });

    expect(ids(first.jobs)).toEqual(['e', 'd']);
    expect(ids(second.jobs)).toEqual(['c', 'b']);
    expect(third).toEqual({ jobs: [expect.objectContaining({ id: 'a' })], nextCursor: null });
    expect(rest.map(ids)).toEqual([['e', 'c'], ['b', 'a']]);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  describe('status filter', () => {
    it('returns only jobs of that status, newest first', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await arrangeBoth('acme', [
        ['a', T0 + 1, { status: 'running' }],
        ['b', T0 + 2, { status: 'queued' }],
        ['c', T0 + 3, { status: 'running' }],
        ['d', T0 + 4, { status: 'failed' }],
        ['e', T0 + 5, { status: 'running' }],
      ]);
      const before = await redisState(ctx.redis);

      const result = await queue.listJobs({ workspaceId: 'acme', status: 'running' });

      expect(ids(result.jobs)).toEqual(['e', 'c', 'a']);
      expect(result.jobs.every((job) => job.status === 'running')).toBe(true);
      expect(result.nextCursor).toBeNull();
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await operations(registry, 'list_jobs', 'ok')).toBe(1);
    });

    it('paged with a small limit over sparse matches yields every match exactly once', async () => {
      const { queue } = await makeQueue(ctx.redis, 'live');
      const jobs: [string, number, Partial<StoredJob>][] = [];
      for (let i = 0; i < 40; i++) {
        jobs.push([`j${String(i).padStart(2, '0')}`, T0 + Math.floor(i / 3), { status: i % 7 === 0 ? 'failed' : 'succeeded' }]);
      }
      await arrangeBoth('acme', jobs);
      const before = await redisState(ctx.redis);

      const pages = await allPages(queue, { workspaceId: 'acme', limit: 2, status: 'failed' });

      expect(pages.flat().map((job) => job.id)).toEqual(['j35', 'j28', 'j21', 'j14', 'j07', 'j00']);
      expect(pages.every((page) => page.length <= 2)).toBe(true);
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('a filtered page that fills before the end of the index still hands out a cursor to the rest', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      // Newest first: A (queued), B, C, D (running). limit 2 fills with B, C while D is still unread.
      await arrangeBoth('acme', [
        ['D', T0 + 1, { status: 'running' }],
        ['C', T0 + 2, { status: 'running' }],
        ['B', T0 + 3, { status: 'running' }],
        ['A', T0 + 4, { status: 'queued' }],
      ]);
      const before = await redisState(ctx.redis);

      const first = await queue.listJobs({ workspaceId: 'acme', status: 'running', limit: 2 });
      const second = await queue.listJobs({ workspaceId: 'acme', status: 'running', limit: 2, cursor: first.nextCursor });

      expect(ids(first.jobs)).toEqual(['B', 'C']);
      expect(first.nextCursor).not.toBeNull();
      expect(second).toEqual({ jobs: [expect.objectContaining({ id: 'D', status: 'running' })], nextCursor: null });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('examines a bounded number of index entries per call: a call may return no job but a cursor', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      const jobs: [string, number, Partial<StoredJob>][] = [];
      for (let i = 0; i < 7; i++) jobs.push([`j${i}`, T0 + i, { status: i === 0 ? 'failed' : 'queued' }]);
      await arrangeBoth('acme', jobs);
      const before = await redisState(ctx.redis);

      const first = await queue.listJobs({ workspaceId: 'acme', status: 'failed', limit: 1 });
      const second = await queue.listJobs({ workspaceId: 'acme', status: 'failed', limit: 1, cursor: first.nextCursor });

      // With limit 1 one call reads at most 5 index pages: j6..j2 hold no match.
      expect(first).toEqual({ jobs: [], nextCursor: expect.any(String) });
      expect(second).toEqual({ jobs: [expect.objectContaining({ id: 'j0', status: 'failed' })], nextCursor: null });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('refuses an unknown status with a ValidationError naming status', async () => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await arrangeBoth('acme', [['a', T0, { status: 'running' }]]);
      const before = await redisState(ctx.redis);

      const error = await queue.listJobs({ workspaceId: 'acme', status: 'done' as Job['status'] }).catch((e) => e);

      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', field: 'status' });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await operations(registry, 'list_jobs', 'validation')).toBe(1);
    });
  });

  describe('limit', () => {
    /** Many jobs in the legacy layout (stage dualwrite reads it), one pipeline. */
    async function arrangeMany(count: number): Promise<void> {
      const pipeline = ctx.redis.pipeline();
      for (let i = 0; i < count; i++) {
        const job = record(`j${String(i).padStart(4, '0')}`, { createdAt: T0 + i, updatedAt: T0 + i });
        pipeline.hset(`job:${job.id}`, jobFields(job));
        pipeline.zadd('ws:acme:jobs', job.createdAt, job.id);
      }
      await pipeline.exec();
    }

    it('defaults to 50', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await arrangeMany(51);
      const before = await redisState(ctx.redis);

      const first = await queue.listJobs({ workspaceId: 'acme' });
      const second = await queue.listJobs({ workspaceId: 'acme', cursor: first.nextCursor });

      expect(first.jobs).toHaveLength(50);
      expect(first.jobs[0].id).toBe('j0050');
      expect(first.jobs[49].id).toBe('j0001');
      expect(first.nextCursor).not.toBeNull();
      expect(second).toEqual({ jobs: [expect.objectContaining({ id: 'j0000' })], nextCursor: null });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it('accepts 1000 and returns at most 1000 jobs', async () => {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite');
      await arrangeMany(1001);
      const before = await redisState(ctx.redis);

      const first = await queue.listJobs({ workspaceId: 'acme', limit: 1000 });
      const second = await queue.listJobs({ workspaceId: 'acme', limit: 1000, cursor: first.nextCursor });

      expect(first.jobs).toHaveLength(1000);
      expect(first.jobs[0].id).toBe('j1000');
      expect(first.nextCursor).not.toBeNull();
      expect(ids(second.jobs)).toEqual(['j0000']);
      expect(second.nextCursor).toBeNull();
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it.each<[string, unknown]>([
      ['0', 0],
      ['1001', 1001],
      ['1.5', 1.5],
      ["'10' (a string)", '10'],
      ['-1', -1],
      ['NaN', Number.NaN],
    ])('refuses limit %s with a ValidationError naming limit', async (_, limit) => {
      const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
      await arrangeBoth('acme', [['a', T0]]);
      const before = await redisState(ctx.redis);

      const error = await queue.listJobs({ workspaceId: 'acme', limit: limit as number }).catch((e) => e);

      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION', field: 'limit' });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await operations(registry, 'list_jobs', 'validation')).toBe(1);
      expect(await operations(registry, 'list_jobs', 'ok')).toBe(0);
    });
  });

  it.each<[string, unknown]>([
    ['garbage text', 'garbage'],
    ['a number', 42],
    ['base64 of text without a score', Buffer.from('abc:job-1').toString('base64url')],
    ['base64 of a jobId with a colon', Buffer.from(`${T0}:a:b`).toString('base64url')],
    ['base64 of a jobId with a glob character', Buffer.from(`${T0}:a*`).toString('base64url')],
  ])('refuses a cursor that is %s with a ValidationError naming cursor', async (_, cursor) => {
    const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite');
    await arrangeBoth('acme', [['a', T0]]);
    const before = await redisState(ctx.redis);

    const error = await queue.listJobs({ workspaceId: 'acme', cursor: cursor as string }).catch((e) => e);

    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'VALIDATION', field: 'cursor' });
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await operations(registry, 'list_jobs', 'validation')).toBe(1);
  });

  describe('reads records from the stage\'s read origin', () => {
    // x: both layouts, differing; l: legacy only; n: new only. Newest first: x, l, n.
    const xLegacy = record('x', { status: 'queued', createdAt: T0 + 3, updatedAt: T0 + 3 });
    const xNew = record('x', { status: 'running', createdAt: T0 + 3, updatedAt: T0 + 8 });
    const l = record('l', { createdAt: T0 + 2, updatedAt: T0 + 2 });
    const n = record('n', { createdAt: T0 + 1, updatedAt: T0 + 1 });

    it.each<[Stage, Job[], number, Partial<Record<Kind, number>>]>([
      ['off', [asJob(xLegacy, 'legacy'), asJob(l, 'legacy')], 0, { index_orphan: 1 }],
      ['dualwrite', [asJob(xLegacy, 'legacy'), asJob(l, 'legacy')], 0, { index_orphan: 1 }],
      [
        'shadow',
        [asJob(xLegacy, 'legacy'), asJob(l, 'legacy')],
        0,
        { field_mismatch: 1, missing_new: 1, missing_legacy: 1, index_orphan: 1 },
      ],
      [
        'live',
        [asJob(xNew, 'new'), asJob(l, 'legacy'), asJob(n, 'new')],
        1,
        { field_mismatch: 1, missing_new: 1, missing_legacy: 1 },
      ],
      ['rampdown', [asJob(xNew, 'new'), asJob(l, 'legacy'), asJob(n, 'new')], 1, {}],
      ['complete', [asJob(xNew, 'new'), asJob(n, 'new')], 0, { index_orphan: 1 }],
    ])('in %s', async (stage, expected, fellBack, counted) => {
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      await putLegacy(xLegacy);
      await putNew(xNew);
      await putLegacy(l);
      await putNew(n);
      await putIndex('acme', 'x', xLegacy.createdAt);
      await putIndex('acme', 'l', l.createdAt);
      await putIndex('acme', 'n', n.createdAt);
      const before = await redisState(ctx.redis);

      const result = await queue.listJobs({ workspaceId: 'acme' });

      expect(result).toEqual({ jobs: expected, nextCursor: null });
      expect(await redisState(ctx.redis)).toEqual(before);
      expect(await fallbacks(registry, 'list_jobs')).toBe(fellBack);
      expect(await fallbacks(registry, 'get_job')).toBe(0);
      expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, ...counted });
      expect(await operations(registry, 'list_jobs', 'ok')).toBe(1);
    });
  });

  it.each(STAGES)('in %s, skips an index entry whose record is missing and counts it as index_orphan', async (stage) => {
    const { queue, registry } = await makeQueue(ctx.redis, stage);
    await arrangeBoth('acme', [
      ['a', T0 + 1],
      ['b', T0 + 2],
      ['c', T0 + 4],
    ]);
    await putIndex('acme', 'ghost', T0 + 3);
    const before = await redisState(ctx.redis);

    // limit 3 over a, b, ghost, c: the orphan must neither be returned nor shorten the page.
    const result = await queue.listJobs({ workspaceId: 'acme', limit: 3 });

    expect(ids(result.jobs)).toEqual(['c', 'b', 'a']);
    expect(result.nextCursor).toBeNull();
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await divergences(registry)).toEqual({ ...NO_DIVERGENCE, index_orphan: 1 });
    expect(await fallbacks(registry, 'list_jobs')).toBe(0);
  });

  describe('tenancy', () => {
    it.each(STAGES)('in %s, a workspace lists only its own jobs', async (stage) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      const a1 = await queue.enqueue({ workspaceId: 'ws-a', type: 't', payload: 'a1' });
      const b1 = await queue.enqueue({ workspaceId: 'ws-b', type: 't', payload: 'b1' });
      const a2 = await queue.enqueue({ workspaceId: 'ws-a', type: 't', payload: 'a2' });
      const before = await redisState(ctx.redis);

      const listA = await queue.listJobs({ workspaceId: 'ws-a' });
      const listB = await queue.listJobs({ workspaceId: 'ws-b' });

      expect(ids(listA.jobs).sort()).toEqual([a1.jobId, a2.jobId].sort());
      expect(listA.jobs.every((job) => job.workspaceId === 'ws-a')).toBe(true);
      expect(ids(listB.jobs)).toEqual([b1.jobId]);
      expect(listB.jobs[0]).toMatchObject({ workspaceId: 'ws-b', payload: 'b1' });
      expect(await redisState(ctx.redis)).toEqual(before);
    });

    it.each(STAGES)(
      "in %s, another workspace's legacy record that sits in this workspace's index is never listed",
      async (stage) => {
        const { queue, registry } = await makeQueue(ctx.redis, stage);
        const [mine] = await arrangeBoth('acme', [['mine', T0 + 1]]);
        await putLegacy(record('foreign', { workspaceId: 'other', createdAt: T0 + 2, payload: { secret: true } }));
        await putIndex('acme', 'foreign', T0 + 2);
        const before = await redisState(ctx.redis);

        const result = await queue.listJobs({ workspaceId: 'acme' });

        expect(result).toEqual({ jobs: [asJob(mine, stage === 'off' || stage === 'dualwrite' || stage === 'shadow' ? 'legacy' : 'new')], nextCursor: null });
        expect(await redisState(ctx.redis)).toEqual(before);
        expect(await fallbacks(registry, 'list_jobs')).toBe(0);
      },
    );
  });
});
