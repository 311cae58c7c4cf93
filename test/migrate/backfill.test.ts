import Redis from 'ioredis';
import { DualWriteQueue, WrongStageError, type Logger, type Stage } from '../../src';
import { metricValue, useRedis } from '../support/redis';
import { jobFields, jobHash, putJob, redisState, str, zset, type JobRecord, type KeyState } from '../support/state';
import { CREATED, indexOf, makeMigration, putLegacyJobs, record } from './fixtures';

const ctx = useRedis();

const WORKSPACES = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];

/** Both layouts and every index as a finished backfill leaves them, and nothing else. */
function migrated(jobs: readonly JobRecord[], keyPrefix = ''): Record<string, KeyState> {
  const state: Record<string, KeyState> = {};
  const byWorkspace = new Map<string, JobRecord[]>();
  for (const job of jobs) {
    state[`${keyPrefix}job:${job.id}`] = jobHash(job);
    state[`${keyPrefix}ws:${job.workspaceId}:job:${job.id}`] = jobHash(job);
    byWorkspace.set(job.workspaceId, [...(byWorkspace.get(job.workspaceId) ?? []), job]);
  }
  for (const [workspaceId, own] of byWorkspace) state[`${keyPrefix}ws:${workspaceId}:jobs`] = zset(...indexOf(own));
  return state;
}

const bySampleKey = <T extends { kind: string; key: string }>(samples: readonly T[]) =>
  [...samples].sort((a, b) => a.kind.localeCompare(b.kind) || a.key.localeCompare(b.key));

describe('backfill', () => {
  it('copies 3000 legacy jobs of six workspaces into the new layout and their indexes; a second run copies nothing', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 3000, WORKSPACES);
    const { migration, registry } = makeMigration(ctx.redis, 'dualwrite');

    const first = await migration.backfill();

    expect(first).toMatchObject({
      operation: 'backfill',
      mode: 'copy',
      stage: 'dualwrite',
      completed: true,
      resumed: false,
      checkpointKey: 'dualwrite:backfill:default',
      results: { copied: 3000, resynced: 0, conflict: 0, skipped: 0, gone: 0 },
      indexed: 0,
      samples: [],
    });
    expect(first.examined).toBe(first.results.copied + first.results.same);
    expect(await metricValue(registry, 'dualwrite_backfill_jobs_total', { result: 'copied' })).toBe(3000);
    const after = await redisState(ctx.redis);
    expect(after).toEqual(migrated(jobs));

    const second = await migration.backfill();

    expect(second.results).toEqual({ copied: 0, resynced: 0, same: second.examined, conflict: 0, skipped: 0, gone: 0 });
    expect(second.examined).toBeGreaterThanOrEqual(3000);
    expect(await redisState(ctx.redis)).toEqual(after);
  });

  it('stopped by its AbortSignal, it leaves a checkpoint; the next run resumes from it and ends with every job copied once', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 3000, WORKSPACES);
    const { migration, registry } = makeMigration(ctx.redis, 'live');
    const stop = new AbortController();

    const first = await migration.backfill({
      batchSize: 100,
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.done >= 500) stop.abort();
      },
    });

    expect(first).toMatchObject({ completed: false, resumed: false, results: { conflict: 0, skipped: 0 } });
    expect(first.examined).toBeGreaterThanOrEqual(500);
    expect(first.examined).toBeLessThan(3000);
    const checkpoint = await ctx.redis.hgetall('dualwrite:backfill:default');
    expect(checkpoint).toMatchObject({ mode: 'copy', cursor: expect.stringMatching(/^[1-9][0-9]*$/) });
    expect(JSON.parse(checkpoint.counts)).toMatchObject({ copied: first.results.copied, examined: first.examined });
    const copiedSoFar = (await redisState(ctx.redis)) as Record<string, KeyState>;
    expect(Object.keys(copiedSoFar).filter((key) => /^ws:[a-z]+:job:/.test(key))).toHaveLength(first.results.copied);

    const resumedAt: number[] = [];
    const second = await migration.backfill({ batchSize: 100, onProgress: (p) => resumedAt.push(p.done) });

    expect(second).toMatchObject({ completed: true, resumed: true, results: { copied: 3000, conflict: 0, skipped: 0, gone: 0 } });
    // Counting goes on from the checkpoint: the resumed run did not walk the first part again.
    expect(resumedAt[0]).toBeGreaterThan(first.examined);
    expect(await metricValue(registry, 'dualwrite_backfill_jobs_total', { result: 'copied' })).toBe(3000);
    expect(await redisState(ctx.redis)).toEqual(migrated(jobs));
  });

  it('keeps each legacy key\'s TTL: the copy expires at the same millisecond', async () => {
    const expiring = record('j1', 'acme');
    const lasting = record('j2', 'acme');
    await putJob(ctx.redis, 'job:j1', expiring);
    await putJob(ctx.redis, 'job:j2', lasting);
    await ctx.redis.pexpire('job:j1', 3_600_000);
    const { migration } = makeMigration(ctx.redis, 'dualwrite');

    const report = await migration.backfill();

    expect(report.results.copied).toBe(2);
    const legacyExpiry = Number(await ctx.redis.call('PEXPIRETIME', 'job:j1'));
    expect(legacyExpiry).toBeGreaterThan(Date.now());
    expect(Number(await ctx.redis.call('PEXPIRETIME', 'ws:acme:job:j1'))).toBe(legacyExpiry);
    expect(await ctx.redis.pttl('ws:acme:job:j2')).toBe(-1);
    const state = await redisState(ctx.redis);
    expect(Object.keys(state)).toEqual(['job:j1', 'job:j2', 'ws:acme:job:j1', 'ws:acme:job:j2', 'ws:acme:jobs']);
    const { expiresAt, ...copy } = state['ws:acme:job:j1'];
    expect(copy).toEqual(jobHash(expiring));
    expect(expiresAt).toBe(legacyExpiry);
  });

  it('reports conflicts and bad legacy records with samples, and writes none of them', async () => {
    const ok = record('ok1', 'acme');
    const conflictLegacy = record('c1', 'acme');
    const conflictNew = record('c1', 'acme', { status: 'running', updatedAt: CREATED + 99 });
    await putJob(ctx.redis, 'job:ok1', ok);
    await putJob(ctx.redis, 'job:c1', conflictLegacy);
    await putJob(ctx.redis, 'ws:acme:job:c1', conflictNew);
    const noWorkspace = { id: 'nows', type: 't', payload: '1', status: 'queued', created_at: '1', updated_at: '1' };
    await ctx.redis.hset('job:nows', noWorkspace);
    await putJob(ctx.redis, 'job:badws', record('badws', 'ac me'));
    await putJob(ctx.redis, 'job:a:b', record('a:b', 'acme'));
    await ctx.redis.hset('job:badcreated', { ...jobFields(record('badcreated', 'acme')), created_at: 'yesterday' });
    await putJob(ctx.redis, 'job:wt', record('wt', 'acme'));
    await ctx.redis.set('ws:acme:job:wt', 'not a hash');
    const before = await redisState(ctx.redis);
    const { migration } = makeMigration(ctx.redis, 'dualwrite');

    const report = await migration.backfill();

    expect(report.results).toEqual({ copied: 1, resynced: 0, same: 0, conflict: 1, skipped: 5, gone: 0 });
    expect(report.skipped).toEqual({ bad_job_id: 1, bad_workspace_id: 2, bad_created_at: 1, workspace_changed: 0, wrong_type: 1 });
    expect(bySampleKey(report.samples)).toEqual([
      { kind: 'bad_created_at', key: 'job:badcreated', detail: 'created_at "yesterday" is not a number of ms' },
      { kind: 'bad_job_id', key: 'job:a:b', detail: 'the key holds no valid job id' },
      { kind: 'bad_workspace_id', key: 'job:badws', detail: 'workspace_id "ac me" is not a valid id' },
      { kind: 'bad_workspace_id', key: 'job:nows', detail: 'no workspace_id field' },
      { kind: 'conflict', key: 'job:c1', fields: ['status', 'updated_at'] },
      { kind: 'wrong_type', key: 'ws:acme:job:wt' },
    ]);
    expect(await redisState(ctx.redis)).toEqual({
      ...before,
      'ws:acme:job:ok1': jobHash(ok),
      'ws:acme:jobs': zset(['ok1', ok.createdAt]),
    });
  });

  it.each<[Stage, boolean]>([
    ['dualwrite', true],
    ['complete', false],
  ])('resync in %s: the record updated later wins, and each overwrite is reported', async (stage, writesLegacy) => {
    const newer = record('r1', 'acme', { status: 'failed', updatedAt: CREATED + 500 });
    const stale = { ...jobFields(record('r1', 'acme', { status: 'running', updatedAt: CREATED + 100 })), extra: 'x' };
    const older = record('r2', 'acme', { status: 'queued', updatedAt: CREATED + 100 });
    const current = record('r2', 'acme', { status: 'succeeded', updatedAt: CREATED + 900 });
    const legacyOnly = record('r3', 'acme');
    const equal = record('r4', 'acme');
    const tied = record('r5', 'acme', { status: 'running', updatedAt: CREATED + 50 });
    const tiedOther = record('r5', 'acme', { status: 'failed', updatedAt: CREATED + 50 });
    await putJob(ctx.redis, 'job:r1', newer);
    await ctx.redis.hset('ws:acme:job:r1', stale);
    await putJob(ctx.redis, 'job:r2', older);
    await putJob(ctx.redis, 'ws:acme:job:r2', current);
    await putJob(ctx.redis, 'job:r3', legacyOnly);
    await putJob(ctx.redis, 'job:r4', equal);
    await putJob(ctx.redis, 'ws:acme:job:r4', equal);
    await putJob(ctx.redis, 'job:r5', tied);
    await putJob(ctx.redis, 'ws:acme:job:r5', tiedOther);
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'r1', CREATED, 'r2', CREATED + 4, 'r4', CREATED + 5, 'r5');
    const { migration } = makeMigration(ctx.redis, stage);

    const report = await migration.backfill({ mode: 'resync' });

    // A new record updated later (in complete) replaces its legacy twin only where the stage writes
    // the legacy layout; equal updated_at never decides.
    expect(report).toMatchObject({ mode: 'resync', completed: true });
    expect(report.results).toEqual({ copied: 1, resynced: writesLegacy ? 2 : 1, same: 1, conflict: writesLegacy ? 1 : 2, skipped: 0, gone: 0 });
    expect(bySampleKey(report.samples)).toEqual([
      ...(writesLegacy ? [] : [{ kind: 'conflict', key: 'job:r2', fields: ['status', 'updated_at'] }]),
      { kind: 'conflict', key: 'job:r5', fields: ['status'] },
      { kind: 'resynced', key: 'job:r1', fields: ['extra', 'status', 'updated_at'] },
      ...(writesLegacy
        ? [{ kind: 'resynced', key: 'job:r2', fields: ['status', 'updated_at'], detail: 'the new record was newer: copied into the legacy layout' }]
        : []),
    ]);
    expect(await redisState(ctx.redis)).toEqual({
      'job:r1': jobHash(newer),
      'job:r2': jobHash(writesLegacy ? current : older),
      'job:r3': jobHash(legacyOnly),
      'job:r4': jobHash(equal),
      'job:r5': jobHash(tied),
      'ws:acme:job:r1': jobHash(newer),
      'ws:acme:job:r2': jobHash(current),
      'ws:acme:job:r3': jobHash(legacyOnly),
      'ws:acme:job:r4': jobHash(equal),
      'ws:acme:job:r5': jobHash(tiedOther),
      'ws:acme:jobs': zset(['r1', CREATED], ['r2', CREATED], ['r3', legacyOnly.createdAt], ['r4', CREATED + 4], ['r5', CREATED + 5]),
    });
  });

  it('adds a job that already exists equal in both layouts to its index when the index lacks it', async () => {
    const job = record('j7', 'acme');
    await putJob(ctx.redis, 'job:j7', job);
    await putJob(ctx.redis, 'ws:acme:job:j7', job);
    const { migration } = makeMigration(ctx.redis, 'rampdown');

    const report = await migration.backfill();

    expect(report).toMatchObject({ results: { same: 1, copied: 0 }, indexed: 1 });
    expect(await redisState(ctx.redis)).toEqual({
      'job:j7': jobHash(job),
      'ws:acme:job:j7': jobHash(job),
      'ws:acme:jobs': zset(['j7', job.createdAt]),
    });
  });

  it('under concurrent enqueues and updates nothing is lost and no update is overwritten', async () => {
    const legacy = await putLegacyJobs(ctx.redis, 1200, WORKSPACES.slice(0, 4));
    const service = new Redis(ctx.handle.url);
    try {
      const queue = new DualWriteQueue({ heartbeat: false, redis: service, stage: 'dualwrite', metrics: false });
      await queue.ready();
      const { migration } = makeMigration(ctx.redis, 'dualwrite');
      const updated = legacy.filter((_, i) => i % 6 === 0);

      const traffic = async () => {
        const enqueued: string[] = [];
        for (let i = 0; i < 150; i++) {
          const { jobId } = await queue.enqueue({ workspaceId: WORKSPACES[i % 4], type: 'live', payload: { i }, jobId: `live${i}` });
          enqueued.push(jobId);
          const old = updated[i % updated.length];
          if (i < updated.length) await queue.updateStatus({ workspaceId: old.workspaceId, jobId: old.id, status: 'running' });
          if (i % 3 === 0) await queue.updateStatus({ workspaceId: WORKSPACES[i % 4], jobId, status: 'succeeded' });
        }
        for (const old of updated.slice(150)) await queue.updateStatus({ workspaceId: old.workspaceId, jobId: old.id, status: 'running' });
        return enqueued;
      };
      const [report, enqueued] = await Promise.all([migration.backfill({ batchSize: 20 }), traffic()]);

      expect(report).toMatchObject({ completed: true, results: { conflict: 0, skipped: 0, gone: 0, resynced: 0 } });
      const state = await redisState(ctx.redis);
      const expectedKeys = [
        ...legacy.flatMap((job) => [`job:${job.id}`, `ws:${job.workspaceId}:job:${job.id}`]),
        ...enqueued.map((id, i) => [`job:${id}`, `ws:${WORKSPACES[i % 4]}:job:${id}`]).flat(),
        ...WORKSPACES.slice(0, 4).map((ws) => `ws:${ws}:jobs`),
        'queue:default',
      ].sort();
      expect(Object.keys(state)).toEqual(expectedKeys);
      const records = (key: string) => (state[key] as { value: Record<string, string> }).value;
      for (const job of legacy) {
        const expectedStatus = updated.includes(job) ? 'running' : 'queued';
        expect({ key: job.id, status: records(`job:${job.id}`).status }).toEqual({ key: job.id, status: expectedStatus });
        expect(records(`ws:${job.workspaceId}:job:${job.id}`)).toEqual(records(`job:${job.id}`));
      }
      enqueued.forEach((id, i) => {
        const status = i % 3 === 0 ? 'succeeded' : 'queued';
        expect({ id, status: records(`ws:${WORKSPACES[i % 4]}:job:${id}`).status }).toEqual({ id, status });
        expect(records(`job:${id}`)).toEqual(records(`ws:${WORKSPACES[i % 4]}:job:${id}`));
      });
      for (const ws of WORKSPACES.slice(0, 4)) {
        const indexed = (state[`ws:${ws}:jobs`] as { value: [string, number][] }).value.map(([id]) => id).sort();
        const own = [...legacy.filter((j) => j.workspaceId === ws).map((j) => j.id), ...enqueued.filter((_, i) => WORKSPACES[i % 4] === ws)];
        expect(indexed).toEqual(own.sort());
      }
      expect((await migration.verify()).clean).toBe(true);
    } finally {
      service.disconnect();
    }
  });

  it('walks only the keys under its keyPrefix', async () => {
    const inside = record('j1', 'acme');
    const outside = record('j2', 'acme');
    await putJob(ctx.redis, '{t}:job:j1', inside);
    await putJob(ctx.redis, 'job:j2', outside);
    const { migration } = makeMigration(ctx.redis, 'dualwrite', { keyPrefix: '{t}:' });

    const report = await migration.backfill();

    expect(report).toMatchObject({ checkpointKey: '{t}:dualwrite:backfill:default', examined: 1, results: { copied: 1 } });
    expect(await redisState(ctx.redis)).toEqual({
      '{t}:job:j1': jobHash(inside),
      '{t}:ws:acme:job:j1': jobHash(inside),
      '{t}:ws:acme:jobs': zset(['j1', inside.createdAt]),
      'job:j2': jobHash(outside),
    });
  });

  it('does not trust a checkpoint from before a Redis restart: it starts over, says so, and copies each job once', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 400, WORKSPACES);
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    const { migration } = makeMigration(ctx.redis, 'dualwrite', { logger });
    const stop = new AbortController();
    const first = await migration.backfill({ batchSize: 50, signal: stop.signal, onProgress: () => stop.abort() });
    expect(first.completed).toBe(false);

    await ctx.handle.restart();
    const second = await migration.backfill({ batchSize: 50 });

    expect(second).toMatchObject({ completed: true, resumed: false });
    expect(second.results.copied + first.results.copied).toBe(400);
    expect(warnings.filter((w) => w.includes('checkpoint'))).toEqual([expect.stringContaining('checkpoint not resumable')]);
    expect(await redisState(ctx.redis)).toEqual(migrated(jobs));
  });

  it('is refused in stage off, where updates would leave every copy stale; nothing is written', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    const before = await redisState(ctx.redis);
    const { migration } = makeMigration(ctx.redis, 'off');

    const error = await migration.backfill().catch((e) => e);

    expect(error).toBeInstanceOf(WrongStageError);
    expect(error).toMatchObject({ code: 'WRONG_STAGE', operation: 'backfill', stage: 'off' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('refuses a checkpoint key of the wrong type and unknown options before writing anything', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await ctx.redis.set('dualwrite:backfill:default', 'junk');
    const before = await redisState(ctx.redis);
    const { migration } = makeMigration(ctx.redis, 'dualwrite');

    const wrongType = await migration.backfill().catch((e) => e);
    const unknown = await migration.backfill({ batchsize: 5 } as never).catch((e) => e);
    const tooBig = await migration.backfill({ batchSize: 501 }).catch((e) => e);

    expect(wrongType).toMatchObject({ code: 'KEY_TYPE', key: 'dualwrite:backfill:default', actualType: 'string' });
    expect(unknown).toMatchObject({ code: 'VALIDATION', field: 'options.batchsize', rule: 'unknown-field' });
    expect(tooBig).toMatchObject({ code: 'VALIDATION', field: 'batchSize', rule: 'range' });
    expect(await redisState(ctx.redis)).toEqual({ ...before, 'dualwrite:backfill:default': str('junk') });
  });
});
