/**
 * extendClaim: a worker's heartbeat pushes its claim's deadline out, so a job that runs longer than
 * its visibility timeout is not recovered and run twice; only the worker holding the claim may,
 * past its deadline too, until recoverStalled has taken the job back.
 */
import { ClaimConflictError, ValidationError, type DualWriteQueue, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { hash, redisState, zset } from '../support/state';
import {
  CLAIMS,
  claimOf,
  EACH_STAGE,
  makeManagedQueue,
  moveStage,
  PROCESSING,
  rejection,
  scriptCalls,
  sleep,
  type StageCase,
} from './helpers';

const ctx = useRedis();

/** Enqueues one job of acme and claims it for w1 with a short visibility timeout. */
async function claimedJob(queue: DualWriteQueue, visibilityTimeoutMs: number) {
  const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
  const job = await queue.claim({ workerId: 'w1', visibilityTimeoutMs });
  expect(job?.id).toBe(jobId);
  return { jobId, claimedAt: job!.updatedAt };
}

describe('extendClaim beats recovery', () => {
  it.each(EACH_STAGE)('in %s: extended past its first deadline, the job is not recovered and stays running and claimed', async (_stage, c: StageCase) => {
    const { queue, registry } = await makeQueue(ctx.redis, c.stage);
    const { jobId, claimedAt } = await claimedJob(queue, 150);
    const entry = c.entry('acme', jobId);
    const claimed = await redisState(ctx.redis);

    const { deadline } = await queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1', visibilityTimeoutMs: 60_000 });

    // Only the deadline and the claim's timeout change; the claim keeps when it started.
    const extended = {
      ...claimed,
      [PROCESSING]: zset([entry, deadline]),
      [CLAIMS]: hash({ [entry]: claimOf(claimedAt, 60_000, 'acme', 'w1') }),
    };
    expect(await redisState(ctx.redis)).toEqual(extended);
    expect(deadline).toBeGreaterThan(claimedAt + 150);

    await sleep(200); // past the first deadline
    expect(await queue.recoverStalled()).toEqual({ recovered: 0, orphaned: 0, unsupported: 0 });

    expect(await redisState(ctx.redis)).toEqual(extended);
    expect(await queue.getJob({ workspaceId: 'acme', jobId })).toMatchObject({ status: 'running', attempts: 1 });
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'extend_claim', outcome: 'ok' })).toBe(1);
    expect(await metricValue(registry, 'dualwrite_stalled_recoveries_total')).toBe(0);
  });

  it('in managed mode, and a claim made in live is still extended by its holder after the record moved to complete', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'live');
    const { jobId, claimedAt } = await claimedJob(queue, 150);
    await moveStage(migration, 'complete');
    const claimed = await redisState(ctx.redis);

    const { deadline } = await queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1', visibilityTimeoutMs: 60_000 });

    // The entry stays bare: it was made in live, and the claim is found in either form.
    const extended = { ...claimed, [PROCESSING]: zset([jobId, deadline]), [CLAIMS]: hash({ [jobId]: claimOf(claimedAt, 60_000, 'acme', 'w1') }) };
    expect(await redisState(ctx.redis)).toEqual(extended);
    expect(queue.stage).toBe('complete');
    await sleep(200);
    expect(await queue.recoverStalled()).toEqual({ recovered: 0, orphaned: 0, unsupported: 0 });
    expect(await redisState(ctx.redis)).toEqual(extended);
    expect(await queue.getJob({ workspaceId: 'acme', jobId })).toMatchObject({ status: 'running' });
  });
});

describe('extendClaim refuses whoever does not hold the claim, writing nothing', () => {
  it.each(EACH_STAGE)('in %s: another worker, a job nobody claimed, and another workspace’s job of the same id', async (_stage, c: StageCase) => {
    const { queue, registry } = await makeQueue(ctx.redis, c.stage);
    const { jobId } = await claimedJob(queue, 60_000);
    const waiting = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2 });
    // complete writes no legacy key, so another workspace may hold the same id there.
    if (c.stage === 'complete') await queue.enqueue({ workspaceId: 'globex', type: 't', payload: 3, jobId });
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);

    const other = await rejection(queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w2', visibilityTimeoutMs: 60_000 }));
    const unclaimed = await rejection(queue.extendClaim({ workspaceId: 'acme', jobId: waiting.jobId, workerId: 'w1' }));
    const foreign = await rejection(queue.extendClaim({ workspaceId: 'globex', jobId, workerId: 'w1' }));

    expect(other).toBeInstanceOf(ClaimConflictError);
    expect(other).toMatchObject({ code: 'CLAIM_CONFLICT', jobId, workerId: 'w2', claimant: 'w1' });
    expect(unclaimed).toMatchObject({ code: 'CLAIM_CONFLICT', jobId: waiting.jobId, workerId: 'w1', claimant: '' });
    expect(foreign).toMatchObject({ code: 'CLAIM_CONFLICT', jobId, workerId: 'w1', claimant: '' });
    expect(await redisState(ctx.redis)).toEqual(before);
    // Each was refused by its script (three calls), which wrote nothing.
    expect((await scriptCalls(ctx.redis)) - sent).toBe(3);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'extend_claim', outcome: 'claim_conflict' })).toBe(3);
  });

  it('in managed mode (shadow): another worker is refused and the record is untouched', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'shadow');
    const { jobId } = await claimedJob(queue, 60_000);
    const before = await redisState(ctx.redis);

    const error = await rejection(queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w2' }));

    expect(error).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: 'w1', workerId: 'w2' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

describe('extendClaim past the deadline', () => {
  it.each(EACH_STAGE)('in %s: the holder may extend a claim past its deadline that recoverStalled has not taken back', async (_stage, c: StageCase) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const { jobId, claimedAt } = await claimedJob(queue, 50);
    await sleep(80);
    const late = await redisState(ctx.redis);

    const { deadline } = await queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1', visibilityTimeoutMs: 60_000 });

    const entry = c.entry('acme', jobId);
    const extended = { ...late, [PROCESSING]: zset([entry, deadline]), [CLAIMS]: hash({ [entry]: claimOf(claimedAt, 60_000, 'acme', 'w1') }) };
    expect(await redisState(ctx.redis)).toEqual(extended);
    expect(await queue.recoverStalled()).toEqual({ recovered: 0, orphaned: 0, unsupported: 0 });
    expect(await redisState(ctx.redis)).toEqual(extended);
  });

  it.each(EACH_STAGE)('in %s: once recoverStalled took the job back, the former holder is refused and nothing is written', async (_stage, c: StageCase) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const { jobId } = await claimedJob(queue, 50);
    await sleep(80);
    expect(await queue.recoverStalled()).toMatchObject({ recovered: 1 });
    const recovered = await redisState(ctx.redis);

    const error = await rejection(queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1', visibilityTimeoutMs: 60_000 }));

    expect(error).toMatchObject({ code: 'CLAIM_CONFLICT', workerId: 'w1', claimant: '' });
    expect(await redisState(ctx.redis)).toEqual(recovered);
    expect(await queue.getJob({ workspaceId: 'acme', jobId })).toMatchObject({ status: 'queued' });

    // Claimed again by another worker: the former holder is refused naming the new one.
    expect((await queue.claim({ workerId: 'w2' }))?.id).toBe(jobId);
    const reclaimed = await redisState(ctx.redis);
    expect(await rejection(queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1' }))).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: 'w2' });
    expect(await redisState(ctx.redis)).toEqual(reclaimed);
  });

  it('in managed mode (rampdown): refused after recovery, as in static mode', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'rampdown');
    const { jobId } = await claimedJob(queue, 50);
    await sleep(80);
    expect(await queue.recoverStalled()).toMatchObject({ recovered: 1 });
    const recovered = await redisState(ctx.redis);

    expect(await rejection(queue.extendClaim({ workspaceId: 'acme', jobId, workerId: 'w1' }))).toMatchObject({ code: 'CLAIM_CONFLICT', claimant: '' });
    expect(await redisState(ctx.redis)).toEqual(recovered);
  });
});

describe('extendClaim validates its input before anything is sent', () => {
  const good = { workspaceId: 'acme', jobId: 'j1', workerId: 'w1', visibilityTimeoutMs: 1000 };
  const cases: [string, unknown, string, string][] = [
    ['a workspaceId with a colon', { ...good, workspaceId: 'ac:me' }, 'workspaceId', 'pattern'],
    ['a jobId with a space', { ...good, jobId: 'j 1' }, 'jobId', 'pattern'],
    ['a jobId with a brace', { ...good, jobId: 'j{1}' }, 'jobId', 'pattern'],
    ['no workerId', { ...good, workerId: undefined }, 'workerId', 'type'],
    ['an empty workerId', { ...good, workerId: '' }, 'workerId', 'pattern'],
    ['a zero visibility timeout', { ...good, visibilityTimeoutMs: 0 }, 'visibilityTimeoutMs', 'range'],
    ['a fractional visibility timeout', { ...good, visibilityTimeoutMs: 1.5 }, 'visibilityTimeoutMs', 'integer'],
    ['a visibility timeout as text', { ...good, visibilityTimeoutMs: '1000' }, 'visibilityTimeoutMs', 'type'],
    ['an unknown field', { ...good, deadline: 5 }, 'input.deadline', 'unknown-field'],
  ];

  it.each<Stage>(['off', 'complete'])('in %s', async (stage) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    const { jobId } = await claimedJob(queue, 60_000);
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);

    for (const [name, input, field] of cases) {
      const error = await rejection(queue.extendClaim({ ...(input as typeof good), ...(field === 'jobId' ? {} : { jobId }) }));
      expect({ name, error }).toEqual({ name, error: expect.any(ValidationError) });
      expect({ name, code: (error as ValidationError).code, field: (error as ValidationError).field }).toEqual({ name, code: 'VALIDATION', field });
    }

    expect(await scriptCalls(ctx.redis)).toBe(sent);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('in managed mode: nothing is sent, not even the stage read', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'dualwrite');
    const before = await redisState(ctx.redis);
    const sent = await scriptCalls(ctx.redis);

    const error = await rejection(queue.extendClaim({ ...good, visibilityTimeoutMs: -1 }));

    expect(error).toMatchObject({ code: 'VALIDATION', field: 'visibilityTimeoutMs' });
    expect(await scriptCalls(ctx.redis)).toBe(sent);
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});
