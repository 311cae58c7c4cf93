import { Migration, STAGES, VerifyNotCleanError, WrongStageError, type Stage } from '../../src';
import { metricValue, useRedis } from '../support/redis';
import { jobHash, list, putJob, redisState, str, type JobRecord, type KeyState } from '../support/state';
import { indexOf, makeMigration, record } from './fixtures';

const ctx = useRedis();

/** A finished migration: jobs in both layouts and indexed; the queue holds complete-style entries. */
async function putMigratedJobs(count: number): Promise<JobRecord[]> {
  const jobs = Array.from({ length: count }, (_, i) => record(`j${i}`, i % 2 ? 'acme' : 'globex'));
  const pipeline = ctx.redis.pipeline();
  for (const job of jobs) {
    pipeline.hset(`job:${job.id}`, jobHash(job).value as Record<string, string>);
    pipeline.hset(`ws:${job.workspaceId}:job:${job.id}`, jobHash(job).value as Record<string, string>);
    pipeline.zadd(`ws:${job.workspaceId}:jobs`, job.createdAt, job.id);
  }
  await pipeline.exec();
  return jobs;
}

function newLayout(jobs: readonly JobRecord[]): Record<string, KeyState> {
  const state: Record<string, KeyState> = {};
  for (const job of jobs) state[`ws:${job.workspaceId}:job:${job.id}`] = jobHash(job);
  for (const ws of ['acme', 'globex']) {
    const own = jobs.filter((job) => job.workspaceId === ws);
    if (own.length) state[`ws:${ws}:jobs`] = { type: 'zset', value: indexOf(own) };
  }
  return state;
}

describe('cleanup', () => {
  it.each(STAGES.filter((stage) => stage !== 'complete'))('is refused in stage %s, before reading or writing anything', async (stage) => {
    await putMigratedJobs(3);
    const before = await redisState(ctx.redis);

    const error = await makeMigration(ctx.redis, stage as Stage).migration.cleanup({ yes: true }).catch((e) => e);

    expect(error).toBeInstanceOf(WrongStageError);
    expect(error).toMatchObject({ code: 'WRONG_STAGE', operation: 'cleanup', stage, allowedStages: ['complete'] });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('is refused when its own verify is not clean, naming the divergences; nothing is deleted', async () => {
    await putMigratedJobs(4);
    await putJob(ctx.redis, 'job:lonely', record('lonely', 'acme'));
    const before = await redisState(ctx.redis);

    const error = await makeMigration(ctx.redis, 'complete').migration.cleanup({ yes: true }).catch((e) => e);

    expect(error).toBeInstanceOf(VerifyNotCleanError);
    expect(error).toMatchObject({
      code: 'VERIFY_NOT_CLEAN',
      divergences: { missing_new: 1 },
      samples: [{ kind: 'missing_new', key: 'job:lonely' }],
    });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it.each(['complete', 'rampdown'] as const)(
    'in static mode with yes, is refused while the layout has a stage record (at %s): its deletions would never reach the rollback guard; nothing is deleted',
    async (recordStage) => {
      const jobs = await putMigratedJobs(4);
      await new Migration({ redis: ctx.redis, stage: 'managed', metrics: false }).initStage(recordStage, { reason: 'the fleet is managed' });
      const before = await redisState(ctx.redis);

      const error = await makeMigration(ctx.redis, 'complete').migration.cleanup({ yes: true }).catch((e) => e);
      const dryRun = await makeMigration(ctx.redis, 'complete').migration.cleanup();

      expect(error).toMatchObject({ code: 'MANAGED_LAYOUT', operation: 'cleanup', key: 'dualwrite:stage', stage: recordStage });
      expect(error.message).toContain('`redis-dual-write cleanup --yes`');
      expect(await redisState(ctx.redis)).toEqual(before);
      // A dry run deletes nothing, so it has nothing to hide from the record: it goes on.
      expect(dryRun).toMatchObject({ dryRun: true, results: { deleted: jobs.length } });
    },
  );

  it('dry run by default: counts what it would delete and writes nothing', async () => {
    await putMigratedJobs(250);
    await ctx.redis.rpush('queue:default', 'j1', 'j2', 'acme:j3');
    const before = await redisState(ctx.redis);
    const { migration, registry } = makeMigration(ctx.redis, 'complete');

    const report = await migration.cleanup({ batchSize: 40 });

    expect(report).toMatchObject({
      operation: 'cleanup',
      stage: 'complete',
      dryRun: true,
      completed: true,
      verify: { clean: true },
      examined: 250,
      results: { deleted: 248, kept_queued: 2, kept_no_new: 0, kept_bad_record: 0, kept_changed: 0, gone: 0 },
    });
    expect(await metricValue(registry, 'dualwrite_cleanup_jobs_total', { result: 'would_delete' })).toBe(248);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('with yes, deletes only legacy job hashes whose new record exists, keeps those a bare queue entry names, and nothing else', async () => {
    const jobs = await putMigratedJobs(300);
    await ctx.redis.rpush('queue:default', 'j5', 'acme:j7', 'j9');
    await ctx.redis.set('ws:acme:idem:order-1', 'f00:j1');
    await ctx.redis.rpush('job:notahash', 'x');
    await ctx.redis.hset('jobs:stats', 'n', '1');
    const { migration, registry } = makeMigration(ctx.redis, 'complete');

    const report = await migration.cleanup({ yes: true, batchSize: 64 });

    expect(report).toMatchObject({ dryRun: false, completed: true, examined: 300 });
    expect(report.results).toEqual({ deleted: 298, kept_queued: 2, kept_no_new: 0, kept_bad_record: 0, kept_changed: 0, gone: 0 });
    expect([...report.samples].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { kind: 'kept_queued', key: 'job:j5' },
      { kind: 'kept_queued', key: 'job:j9' },
    ]);
    expect(await metricValue(registry, 'dualwrite_cleanup_jobs_total', { result: 'deleted' })).toBe(298);
    const byId = (id: string) => jobs.find((job) => job.id === id)!;
    expect(await redisState(ctx.redis)).toEqual({
      ...newLayout(jobs),
      'job:j5': jobHash(byId('j5')),
      'job:j9': jobHash(byId('j9')),
      'queue:default': list('j5', 'acme:j7', 'j9'),
      'ws:acme:idem:order-1': str('f00:j1'),
      'job:notahash': list('x'),
      'jobs:stats': { type: 'hash', value: { n: '1' } },
    });
    expect((await migration.verify()).clean).toBe(true);
  });

  it('stopped by its signal mid-way, it reports so; the next run deletes the rest', async () => {
    const jobs = await putMigratedJobs(200);
    const { migration } = makeMigration(ctx.redis, 'complete');
    const stop = new AbortController();

    const first = await migration.cleanup({
      yes: true,
      batchSize: 20,
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.operation === 'cleanup') stop.abort();
      },
    });
    const second = await migration.cleanup({ yes: true });

    expect(first).toMatchObject({ completed: false, verify: { completed: true, clean: true } });
    expect(first.results.deleted).toBeGreaterThan(0);
    expect(first.results.deleted).toBeLessThan(200);
    expect(second).toMatchObject({ completed: true });
    expect(first.results.deleted + second.results.deleted).toBe(200);
    expect(await redisState(ctx.redis)).toEqual(newLayout(jobs));
  });
});
