import { DIVERGENCE_KINDS, type Sample } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { putJob, redisState } from '../support/state';
import { CREATED, makeMigration, putLegacyJobs, record } from './fixtures';

const ctx = useRedis();

const none = Object.fromEntries(DIVERGENCE_KINDS.map((kind) => [kind, 0]));
const bySampleKey = (samples: readonly Sample[]) =>
  [...samples].sort((a, b) => a.kind.localeCompare(b.kind) || a.key.localeCompare(b.key) || (a.detail ?? '').localeCompare(b.detail ?? ''));

/** One job in every place it should be: both layouts, its index, the queue. */
async function putHealthyJob(id: string, workspaceId = 'acme'): Promise<void> {
  const job = record(id, workspaceId);
  await putJob(ctx.redis, `job:${id}`, job);
  await putJob(ctx.redis, `ws:${workspaceId}:job:${id}`, job);
  await ctx.redis.zadd(`ws:${workspaceId}:jobs`, job.createdAt, id);
  await ctx.redis.rpush('queue:default', id);
}

describe('verify', () => {
  it('finds each kind of divergence, seeded by writing Redis directly, with samples; it writes nothing', async () => {
    await putHealthyJob('g1');
    await putJob(ctx.redis, 'job:m1', record('m1', 'acme')); // missing_new
    await putJob(ctx.redis, 'ws:acme:job:m2', record('m2', 'acme')); // missing_legacy
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'm2');
    await putJob(ctx.redis, 'job:f1', record('f1', 'acme')); // field_mismatch
    await putJob(ctx.redis, 'ws:acme:job:f1', record('f1', 'acme', { status: 'running', type: 'other' }));
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'f1');
    await putJob(ctx.redis, 'job:i1', record('i1', 'globex')); // missing_index
    await putJob(ctx.redis, 'ws:globex:job:i1', record('i1', 'globex'));
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'ghost'); // index_orphan
    await ctx.redis.rpush('queue:default', 'ghost2', 'acme:ghost3', 'not an entry!'); // queue_orphan x3
    await ctx.redis.hset('job:nows', { id: 'nows', status: 'queued' }); // bad_legacy_record
    await putJob(ctx.redis, 'job:w1', record('w1', 'acme')); // wrong_type
    await ctx.redis.set('ws:acme:job:w1', 'not a hash');
    const before = await redisState(ctx.redis);
    const { migration, registry } = makeMigration(ctx.redis, 'live');

    const report = await migration.verify();

    expect(report).toMatchObject({
      operation: 'verify',
      stage: 'live',
      completed: true,
      clean: false,
      checked: { legacyJobs: 6, newJobs: 4, indexEntries: 4, queueEntries: 4, processingEntries: 0 },
    });
    expect(report.divergences).toEqual({
      missing_new: 1,
      missing_legacy: 1,
      field_mismatch: 1,
      missing_index: 1,
      index_orphan: 1,
      queue_orphan: 3,
      processing_orphan: 0,
      queued_and_claimed: 0,
      claim_mismatch: 0,
      bad_legacy_record: 1,
      ttl_mismatch: 0,
      wrong_type: 1,
    });
    expect(bySampleKey(report.samples)).toEqual([
      { kind: 'bad_legacy_record', key: 'job:nows', detail: 'no workspace_id field' },
      { kind: 'field_mismatch', key: 'ws:acme:job:f1', fields: ['status', 'type'] },
      { kind: 'index_orphan', key: 'ws:acme:jobs', detail: 'member ghost' },
      { kind: 'missing_index', key: 'ws:globex:job:i1' },
      { kind: 'missing_legacy', key: 'ws:acme:job:m2' },
      { kind: 'missing_new', key: 'job:m1' },
      { kind: 'queue_orphan', key: 'queue:default', detail: 'entry "acme:ghost3" at 2: no new record' },
      { kind: 'queue_orphan', key: 'queue:default', detail: 'entry "ghost2" at 1: no legacy record to find it by' },
      { kind: 'queue_orphan', key: 'queue:default', detail: 'entry "not an entry!" at 3: not a job id nor <workspaceId>:<jobId>' },
      { kind: 'wrong_type', key: 'ws:acme:job:w1', detail: 'holds a string' },
    ]);
    for (const [kind, count] of Object.entries(report.divergences)) {
      expect({ kind, gauge: await metricValue(registry, 'dualwrite_verify_divergences', { kind }) }).toEqual({ kind, gauge: count });
    }
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('knows the processing structure: orphaned, doubly queued and unrecorded claims; a healthy claim is clean', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    const healthy = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const doubled = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2 });
    await queue.claim({ workerId: 'w1' });
    await queue.claim({ workerId: 'w1' });
    await ctx.redis.rpush('queue:default', doubled.jobId); // queued_and_claimed
    await ctx.redis.zadd('queue:default:processing', 1, 'acme:gone'); // processing_orphan + claim_mismatch
    await ctx.redis.hset('queue:default:claims', 'stale', '1:1:acme:w9'); // claim_mismatch
    const before = await redisState(ctx.redis);
    const { migration } = makeMigration(ctx.redis, 'live');

    const report = await migration.verify();

    expect(report.checked).toMatchObject({ queueEntries: 1, processingEntries: 3 });
    expect(report.divergences).toEqual({ ...none, processing_orphan: 1, queued_and_claimed: 1, claim_mismatch: 2 });
    expect(bySampleKey(report.samples)).toEqual([
      { kind: 'claim_mismatch', key: 'queue:default:claims', detail: 'claim of "stale" has no processing entry' },
      { kind: 'claim_mismatch', key: 'queue:default:claims', detail: 'claimed entry "acme:gone" has no claim record' },
      { kind: 'processing_orphan', key: 'queue:default:processing', detail: 'entry "acme:gone" at 0: no new record' },
      { kind: 'queued_and_claimed', key: 'queue:default', detail: `entry "${doubled.jobId}" at 0 is also claimed` },
    ]);
    expect(healthy.created).toBe(true);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('is clean after a backfill of 2000 legacy jobs with their queue entries, and counts what it checked', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 2000, ['acme', 'globex', 'initech']);
    await ctx.redis.rpush('queue:default', ...jobs.map((job) => job.id));
    const { migration, registry } = makeMigration(ctx.redis, 'dualwrite');
    const beforeBackfill = await migration.verify();
    expect(beforeBackfill.divergences).toEqual({ ...none, missing_new: 2000 });

    await migration.backfill();
    const report = await migration.verify({ batchSize: 150 });

    expect(report).toMatchObject({
      completed: true,
      clean: true,
      divergences: none,
      samples: [],
      checked: { legacyJobs: 2000, newJobs: 2000, indexEntries: 2000, queueEntries: 2000 },
    });
    expect(await metricValue(registry, 'dualwrite_verify_divergences', { kind: 'missing_new' })).toBe(0);
  });

  it('checks missing_legacy only while the stage writes the legacy layout, and fields only before complete', async () => {
    await putJob(ctx.redis, 'ws:acme:job:n1', record('n1', 'acme'));
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'n1');
    await putJob(ctx.redis, 'job:f1', record('f1', 'acme'));
    await putJob(ctx.redis, 'ws:acme:job:f1', record('f1', 'acme', { status: 'succeeded' }));
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'f1');

    const rampdown = await makeMigration(ctx.redis, 'rampdown').migration.verify();
    const complete = await makeMigration(ctx.redis, 'complete').migration.verify();

    expect(rampdown.divergences).toEqual({ ...none, missing_legacy: 1, field_mismatch: 1 });
    expect(complete).toMatchObject({ clean: true, divergences: none });
  });

  it('in complete, follows a bare queue entry through its legacy record to the new one, and a prefixed entry directly', async () => {
    await putJob(ctx.redis, 'job:b1', record('b1', 'acme'));
    await putJob(ctx.redis, 'ws:acme:job:b1', record('b1', 'acme'));
    await putJob(ctx.redis, 'job:b2', record('b2', 'acme')); // its new record is missing: a consumer in complete cannot read it
    await putJob(ctx.redis, 'ws:acme:job:p1', record('p1', 'acme'));
    await ctx.redis.zadd('ws:acme:jobs', CREATED, 'b1', CREATED, 'p1');
    await ctx.redis.rpush('queue:default', 'b1', 'b2', 'acme:p1');

    const report = await makeMigration(ctx.redis, 'complete').migration.verify();

    expect(report.divergences).toEqual({ ...none, missing_new: 1, queue_orphan: 1 });
    expect(bySampleKey(report.samples)).toEqual([
      { kind: 'missing_new', key: 'job:b2' },
      { kind: 'queue_orphan', key: 'queue:default', detail: 'entry "b2" at 1: no new record' },
    ]);
  });

  it('keeps at most sampleLimit samples per kind while counting them all', async () => {
    await putLegacyJobs(ctx.redis, 30, ['acme']);

    const report = await makeMigration(ctx.redis, 'dualwrite').migration.verify({ sampleLimit: 3 });

    expect(report.divergences.missing_new).toBe(30);
    expect(report.samples).toHaveLength(3);
  });

  it('stopped by its signal, it says so, is not clean, and leaves the gauge alone', async () => {
    await putLegacyJobs(ctx.redis, 100, ['acme']);
    const { migration, registry } = makeMigration(ctx.redis, 'dualwrite');
    const stop = new AbortController();
    stop.abort();

    const report = await migration.verify({ signal: stop.signal });

    expect(report).toMatchObject({ completed: false, clean: false });
    expect((await registry.getSingleMetric('dualwrite_verify_divergences')?.get())?.values).toEqual([]);
  });
});
