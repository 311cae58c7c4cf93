/**
 * A worker's error and result: stored on the job in every layout the stage writes, returned by
 * getJob from either layout, compared by verify and copied by backfill; bounded like payloads. And
 * fields only the legacy service writes survive every step that writes the legacy record.
 */
import { Migration, ValidationError, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { hash, jobHash, list, putJob, redisState, zset, type JobRecord, type KeyState } from '../support/state';
import {
  CLAIMS,
  EACH_STAGE,
  fieldsIn,
  indexKey,
  legacyKey,
  makeManagedQueue,
  moveStage,
  newKey,
  PROCESSING,
  QUEUE,
  rejection,
  scriptCalls,
  STAGE_CASES,
  type StageCase,
} from './helpers';

const ctx = useRedis();

const ERROR = 'TimeoutError: smtp.example.com did not answer in 30 s (ü, "quoted", 新)';
const RESULT = { delivered: false, attempts: [1, 2], note: null, nested: { ok: 'ü' } };

/** The job keys a stage writes for acme's job. */
function jobKeys(c: StageCase, jobId: string): string[] {
  return [...(c.legacy ? [legacyKey(jobId)] : []), ...(c.fresh ? [newKey('acme', jobId)] : [])];
}

describe('error and result round-trip', () => {
  it.each(EACH_STAGE)('in %s: stored on the job in every layout the stage writes, returned by getJob and listJobs', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);

    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1', error: ERROR, result: RESULT });

    const job = (await queue.getJob({ workspaceId: 'acme', jobId }))!;
    expect(job).toMatchObject({ status: 'failed', error: ERROR, result: RESULT, attempts: 1 });
    const record: JobRecord = { id: jobId, workspaceId: 'acme', type: 't', payload: 1, status: 'failed', createdAt: job.createdAt, updatedAt: job.updatedAt, attempts: 1, error: ERROR, result: RESULT };
    const { [PROCESSING]: _p, [CLAIMS]: _c, ...rest } = before;
    const expected: Record<string, KeyState> = { ...rest };
    for (const key of jobKeys(c, jobId)) expected[key] = jobHash(record);
    expect(await redisState(ctx.redis)).toEqual(expected);
    // The result is stored as JSON text, byte for byte what JSON.stringify gives.
    expect(fieldsIn(expected, jobKeys(c, jobId)[0])!.result).toBe(JSON.stringify(RESULT));
    expect((await queue.listJobs({ workspaceId: 'acme' })).jobs).toEqual([job]);
  });

  it('a job finished in dualwrite reads back the same error and result in every stage, from the layout that stage reads', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', result: RESULT, error: '' });

    for (const c of STAGE_CASES) {
      const reader = await makeQueue(ctx.redis, c.stage);
      const job = await reader.queue.getJob({ workspaceId: 'acme', jobId });
      const source = c.stage === 'off' || c.stage === 'dualwrite' || c.stage === 'shadow' ? 'legacy' : 'new';
      expect({ stage: c.stage, job }).toEqual({ stage: c.stage, job: expect.objectContaining({ result: RESULT, error: '', source }) });
    }
  });

  it('live falls back to the legacy record, and returns its error and result', async () => {
    const { queue, registry } = await makeQueue(ctx.redis, 'live');
    await putJob(ctx.redis, legacyKey('old'), { id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'failed', createdAt: 1, updatedAt: 2, attempts: 3, error: ERROR, result: RESULT });

    const job = await queue.getJob({ workspaceId: 'acme', jobId: 'old' });

    expect(job).toMatchObject({ source: 'legacy', error: ERROR, result: RESULT, attempts: 3 });
    expect(await metricValue(registry, 'dualwrite_read_fallbacks_total', { operation: 'get_job' })).toBe(1);
  });

  it('in managed mode (live): error and result reach both layouts', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'live');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', error: ERROR, result: RESULT });

    const state = await redisState(ctx.redis);
    for (const key of [legacyKey(jobId), newKey('acme', jobId)]) {
      expect(fieldsIn(state, key)).toMatchObject({ error: ERROR, result: JSON.stringify(RESULT), status: 'failed' });
    }
    expect(fieldsIn(state, legacyKey(jobId))).toEqual(fieldsIn(state, newKey('acme', jobId)));
  });
});

describe('verify compares error and result, backfill copies them', () => {
  it.each<Stage>(['dualwrite', 'shadow', 'live', 'rampdown'])('in %s: a differing error is a field_mismatch; shadow and live reads count it too', async (stage) => {
    const { queue, registry } = await makeQueue(ctx.redis, stage);
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', error: 'first', result: RESULT });
    const clean = await new Migration({ redis: ctx.redis, stage, metrics: false }).verify();
    expect(clean).toMatchObject({ clean: true });
    await ctx.redis.hset(newKey('acme', jobId), 'error', 'second');

    const report = await new Migration({ redis: ctx.redis, stage, metrics: false }).verify();

    expect(report.clean).toBe(false);
    expect(report.divergences.field_mismatch).toBe(1);
    expect(report.samples).toEqual([{ kind: 'field_mismatch', key: newKey('acme', jobId), fields: ['error'] }]);
    await queue.getJob({ workspaceId: 'acme', jobId });
    const compares = stage === 'shadow' || stage === 'live';
    expect(await metricValue(registry, 'dualwrite_divergences_total', { kind: 'field_mismatch' })).toBe(compares ? 1 : 0);
  });

  it('a differing result is a field_mismatch too', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', result: RESULT });
    await ctx.redis.hset(legacyKey(jobId), 'result', JSON.stringify({ ...RESULT, delivered: true }));

    const report = await new Migration({ redis: ctx.redis, stage: 'live', metrics: false }).verify();

    expect(report.samples).toEqual([{ kind: 'field_mismatch', key: newKey('acme', jobId), fields: ['result'] }]);
  });

  it.each<Stage>(['dualwrite', 'shadow', 'live', 'rampdown', 'complete'])('in %s: backfill copies a legacy job’s error, result and attempts into the new layout', async (stage) => {
    const old: JobRecord = { id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'failed', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_500, attempts: 2, error: ERROR, result: RESULT };
    await putJob(ctx.redis, legacyKey('old'), old);
    const migration = new Migration({ redis: ctx.redis, stage, metrics: false });

    const report = await migration.backfill();

    expect(report.results.copied).toBe(1);
    const state = await redisState(ctx.redis);
    expect(state).toEqual({
      [legacyKey('old')]: jobHash(old),
      [newKey('acme', 'old')]: jobHash(old),
      [indexKey('acme')]: zset(['old', old.createdAt]),
      [migration.checkpointKey]: state[migration.checkpointKey],
    });
    // Read through the new layout alone, as complete reads.
    const { queue } = await makeQueue(ctx.redis, 'complete');
    expect(await queue.getJob({ workspaceId: 'acme', jobId: 'old' })).toMatchObject({ source: 'new', error: ERROR, result: RESULT, attempts: 2 });
  });

  it('in managed mode (dualwrite): backfill copies them and verify is clean afterwards', async () => {
    const { migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    await putJob(ctx.redis, legacyKey('old'), { id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'failed', createdAt: 5, updatedAt: 6, error: ERROR, result: RESULT });

    await migration.backfill();

    const state = await redisState(ctx.redis);
    expect(fieldsIn(state, newKey('acme', 'old'))).toEqual(fieldsIn(state, legacyKey('old')));
    expect(await migration.verify()).toMatchObject({ clean: true });
  });
});

describe('error and result are bounded; a refused update sends and writes nothing', () => {
  it.each<Stage>(['off', 'live', 'complete'])('in %s', async (stage) => {
    const { queue } = await makeQueue(ctx.redis, stage, { maxPayloadBytes: 1024 });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);
    const finish = (extra: Record<string, unknown>) => queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1', ...extra });

    const refusals: [string, Error, string, string][] = [
      ['an error of 4097 characters', await rejection(finish({ error: 'x'.repeat(4097) })), 'error', 'max-length'],
      ['an error that is no string', await rejection(finish({ error: { message: 'boom' } })), 'error', 'type'],
      ['a result of more JSON bytes than maxPayloadBytes', await rejection(finish({ result: { text: 'ü'.repeat(600) } })), 'result', 'max-bytes'],
      ['a result JSON would change', await rejection(finish({ result: { n: NaN } })), 'result', 'json'],
      ['a result JSON would drop', await rejection(finish({ result: () => 1 })), 'result', 'json'],
    ];

    for (const [name, error, field, rule] of refusals) {
      expect({ name, error }).toEqual({ name, error: expect.any(ValidationError) });
      expect({ name, code: (error as ValidationError).code, field: (error as ValidationError).field, rule: (error as ValidationError).rule }).toEqual({ name, code: 'VALIDATION', field, rule });
    }
    expect(await scriptCalls(ctx.redis)).toBe(sent);
    expect(await redisState(ctx.redis)).toEqual(before);

    // At the bounds they are taken: 4096 characters (of two bytes each), a result of exactly 1024 bytes.
    const atBound = { error: 'é'.repeat(4096), result: { text: 'a'.repeat(1024 - '{"text":""}'.length) } };
    await finish(atBound);
    expect(await queue.getJob({ workspaceId: 'acme', jobId })).toMatchObject(atBound);
  });

  it('in managed mode: an oversized error sends nothing, not even the stage read', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);

    const error = await rejection(queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', error: 'x'.repeat(5000) }));

    expect(error).toMatchObject({ code: 'VALIDATION', field: 'error', rule: 'max-length' });
    expect(await scriptCalls(ctx.redis)).toBe(sent);
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

/** Fields the legacy service writes and reads itself; the package never knew them. */
const EXTRAS = { priority: '5', owner: 'billing' };

/** A legacy-only job as the legacy service left it, with its own fields, waiting on the queue. */
async function legacyJobWithExtras(jobId = 'old', status = 'queued'): Promise<Record<string, string>> {
  const fields = { id: jobId, workspace_id: 'acme', type: 't', payload: '1', status, created_at: '1700000000000', updated_at: '1700000000000', ...EXTRAS };
  await ctx.redis.hset(legacyKey(jobId), fields);
  await ctx.redis.zadd(indexKey('acme'), 1_700_000_000_000, jobId);
  if (status === 'queued') await ctx.redis.rpush(QUEUE, jobId);
  return fields;
}

describe("the legacy service's own fields are kept", () => {
  it.each<Stage>(['dualwrite', 'shadow', 'live', 'rampdown'])('in %s: a repair (update of a legacy-only job) keeps them in the legacy record and copies them', async (stage) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    const old = await legacyJobWithExtras('old', 'running');

    const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'old', status: 'failed', error: 'boom' });

    expect(result.repaired).toBe('new');
    const state = await redisState(ctx.redis);
    const written = { ...old, status: 'failed', error: 'boom', updated_at: fieldsIn(state, legacyKey('old'))!.updated_at };
    expect(state).toEqual({
      [legacyKey('old')]: hash(written),
      [newKey('acme', 'old')]: hash(written),
      [indexKey('acme')]: zset(['old', 1_700_000_000_000]),
    });
  });

  it.each(EACH_STAGE.filter(([stage]) => stage !== 'complete'))('in %s: a claim, a failure and a requeue keep them', async (stage, c) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    const old = await legacyJobWithExtras();

    await queue.claim({ workerId: 'w1' });
    await queue.updateStatus({ workspaceId: 'acme', jobId: 'old', status: 'failed', workerId: 'w1', error: 'boom' });
    await queue.requeue({ workspaceId: 'acme', jobId: 'old' });

    const state = await redisState(ctx.redis);
    const written = { ...old, status: 'queued', attempts: '1', error: 'boom', updated_at: fieldsIn(state, legacyKey('old'))!.updated_at };
    const expected: Record<string, KeyState> = {
      [legacyKey('old')]: hash(written),
      [indexKey('acme')]: zset(['old', 1_700_000_000_000]),
      [QUEUE]: list('old'),
    };
    // Stages writing both layouts copied the record, extras included, at the claim.
    if (c.fresh) expected[newKey('acme', 'old')] = hash(written);
    expect(state).toEqual(expected);
  });

  it('in complete: a claim and a requeue reach the legacy twin too, which keeps its extras', async () => {
    const old = await legacyJobWithExtras();
    await ctx.redis.hset(newKey('acme', 'old'), old);
    const { queue } = await makeQueue(ctx.redis, 'complete');

    await queue.claim({ workerId: 'w1' });
    await queue.requeue({ workspaceId: 'acme', jobId: 'old', workerId: 'w1' });

    const state = await redisState(ctx.redis);
    expect(fieldsIn(state, newKey('acme', 'old'))).toEqual({ ...old, status: 'queued', attempts: '1', updated_at: expect.any(String) });
    expect(fieldsIn(state, legacyKey('old'))).toEqual(fieldsIn(state, newKey('acme', 'old')));
  });

  it('a resync after a stay in off (legacy newer): the new record gains the fields the legacy service added, the legacy record keeps them', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await moveStage(migration, 'off');
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', error: 'in off' });
    // The legacy service, in off, adds its own fields to its record.
    await ctx.redis.hset(legacyKey(jobId), EXTRAS);
    await moveStage(migration, 'dualwrite');
    const legacy = (await redisState(ctx.redis))[legacyKey(jobId)];

    const report = await migration.backfill({ mode: 'resync' });

    expect(report.results).toMatchObject({ resynced: 1, conflict: 0 });
    const state = await redisState(ctx.redis);
    expect(state[legacyKey(jobId)]).toEqual(legacy);
    expect(fieldsIn(state, newKey('acme', jobId))).toEqual({ ...fieldsIn(state, legacyKey(jobId)), ...EXTRAS });
    expect(fieldsIn(state, legacyKey(jobId))).toMatchObject({ ...EXTRAS, status: 'failed', error: 'in off' });
    expect(await migration.verify()).toMatchObject({ clean: true });
  });

  it("after a stay in complete the legacy twin holds the job's changes and keeps its extra fields: a resync has nothing to copy", async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'rampdown');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    // The legacy service wrote its own fields into its record only.
    await ctx.redis.hset(legacyKey(jobId), EXTRAS);
    await moveStage(migration, 'complete');
    await queue.claim({ workerId: 'w1' });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1', result: RESULT });
    await moveStage(migration, 'rampdown');

    const state = await redisState(ctx.redis);
    const job = fieldsIn(state, newKey('acme', jobId))!;
    expect(job).toMatchObject({ status: 'succeeded', attempts: '1', result: JSON.stringify(RESULT) });
    expect(fieldsIn(state, legacyKey(jobId))).toEqual({ ...job, ...EXTRAS });
    expect((await migration.backfill({ mode: 'resync' })).results).toMatchObject({ copied: 0, resynced: 0 });
    const after = await redisState(ctx.redis);
    expect([after[legacyKey(jobId)], after[newKey('acme', jobId)]]).toEqual([state[legacyKey(jobId)], state[newKey('acme', jobId)]]);
  });
});
