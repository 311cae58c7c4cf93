/**
 * requeue: a failed or cancelled job, or a running one its worker gives back, goes back on the queue
 * as 'queued' in one step: its entry in the stage's form, its claim ended, its retention expiry taken
 * away; attempts counts claims only. No job is ever both queued and claimed.
 */
import Redis from 'ioredis';
import {
  ClaimConflictError,
  DualWriteQueue,
  Migration,
  NotFoundError,
  StatusConflictError,
  type Stage,
} from '../../src';
import { checkInvariants } from '../support/invariants';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { list, putJob, redisState, type KeyState } from '../support/state';
import {
  EACH_STAGE,
  EXPIRIES,
  fieldsIn,
  legacyKey,
  makeManagedQueue,
  moveStage,
  newKey,
  persisted,
  QUEUE,
  rejection,
  type StageCase,
} from './helpers';

const ctx = useRedis();

/** A job record of a snapshot, requeued: queued, at a fresh updated_at, nothing else changed. */
function requeued(entry: KeyState): KeyState {
  if (entry.type !== 'hash') throw new Error('not a hash');
  return { ...entry, value: { ...entry.value, status: 'queued', updated_at: expect.any(String) as unknown as string } };
}

/** The job keys a stage writes for acme's job. */
function jobKeys(c: StageCase, jobId: string): string[] {
  return [...(c.legacy ? [legacyKey(jobId)] : []), ...(c.fresh ? [newKey('acme', jobId)] : [])];
}

/** acme's job, claimed by w1 and then finished with `status` (the claim ends with it). */
async function finishedJob(queue: DualWriteQueue, status: 'failed' | 'cancelled' | 'succeeded'): Promise<string> {
  const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 } });
  expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(jobId);
  await queue.updateStatus({ workspaceId: 'acme', jobId, status, workerId: 'w1', ...(status === 'failed' ? { error: 'boom' } : {}) });
  return jobId;
}

describe('requeue puts a finished job back on the queue', () => {
  const rows = EACH_STAGE.flatMap(([stage, c]) => (['failed', 'cancelled'] as const).map((status): [Stage, 'failed' | 'cancelled', StageCase] => [stage, status, c]));

  it.each(rows)('in %s: a %s job is queued again, its entry in the stage’s form, attempts and error kept', async (_stage, status, c) => {
    const { queue, registry } = await makeQueue(ctx.redis, c.stage);
    const jobId = await finishedJob(queue, status);
    const before = await redisState(ctx.redis);
    expect(before[QUEUE]).toBeUndefined();

    const result = await queue.requeue({ workspaceId: 'acme', jobId, reason: 'retry 1 of 3' });

    expect(result).toEqual({ jobId, previousStatus: status, repaired: 'none' });
    const after = await redisState(ctx.redis);
    const expected: Record<string, KeyState> = { ...before, [QUEUE]: list(c.entry('acme', jobId)) };
    for (const key of jobKeys(c, jobId)) expected[key] = requeued(before[key]);
    expect(after).toEqual(expected);
    for (const key of jobKeys(c, jobId)) {
      expect(Number(fieldsIn(after, key)!.updated_at)).toBeGreaterThan(Number(fieldsIn(before, key)!.updated_at));
      expect(fieldsIn(after, key)!.attempts).toBe('1');
    }
    expect(await queue.getJob({ workspaceId: 'acme', jobId })).toMatchObject({ status: 'queued', attempts: 1 });
    expect(await metricValue(registry, 'dualwrite_requeues_total', { from: status })).toBe(1);
    // The requeued job is claimed like any other.
    expect(await queue.claim({ workerId: 'w2' })).toMatchObject({ id: jobId, status: 'running', attempts: 2 });
  });

  it.each<Stage>(['dualwrite', 'shadow', 'live', 'rampdown'])(
    "in %s: a job whose legacy key holds another workspace's job gets a named entry (a bare one would lead to that job)",
    async (stage) => {
      // acme's x was made in complete; after the rollback globex's legacy service took job:x.
      const complete = await makeQueue(ctx.redis, 'complete');
      await finishedJob(complete.queue, 'failed');
      const [{ jobId }] = await complete.queue.listJobs({ workspaceId: 'acme' }).then((page) => page.jobs.map((j) => ({ jobId: j.id })));
      await putJob(ctx.redis, legacyKey(jobId), { id: jobId, workspaceId: 'globex', type: 't', payload: 1, status: 'queued', createdAt: 1, updatedAt: 1 });
      const { queue, registry } = await makeQueue(ctx.redis, stage);
      const before = await redisState(ctx.redis);

      await queue.requeue({ workspaceId: 'acme', jobId });

      expect(await redisState(ctx.redis)).toEqual({
        ...before,
        [newKey('acme', jobId)]: requeued(before[newKey('acme', jobId)]),
        [QUEUE]: list(`acme:${jobId}`),
      });
      expect(await metricValue(registry, 'dualwrite_divergences_total', { kind: 'job_id_collision' })).toBe(1);
      expect(await queue.claim({ workerId: 'w2' })).toMatchObject({ id: jobId, workspaceId: 'acme' });
    },
  );

  it.each(EACH_STAGE)('in %s: a running job its worker gives back is queued and its claim ended in the same step', async (_stage, c) => {
    const { queue, registry } = await makeQueue(ctx.redis, c.stage);
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);

    const result = await queue.requeue({ workspaceId: 'acme', jobId, workerId: 'w1' });

    expect(result).toEqual({ jobId, previousStatus: 'running', repaired: 'none' });
    // The processing and claims keys lose their only entry: Redis removes them.
    const { 'queue:default:processing': _p, 'queue:default:claims': _c, ...rest } = before;
    const expected: Record<string, KeyState> = { ...rest, [QUEUE]: list(c.entry('acme', jobId)) };
    for (const key of jobKeys(c, jobId)) expected[key] = requeued(before[key]);
    expect(await redisState(ctx.redis)).toEqual(expected);
    expect(await metricValue(registry, 'dualwrite_requeues_total', { from: 'running' })).toBe(1);
  });

  it('in managed mode: a running job claimed in rampdown (bare entry) is given back in complete (named entry), its bare claim ended', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'rampdown');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    await moveStage(migration, 'complete');
    const before = await redisState(ctx.redis);

    await queue.requeue({ workspaceId: 'acme', jobId, workerId: 'w1' });

    const { 'queue:default:processing': _p, 'queue:default:claims': _c, ...rest } = before;
    // complete writes the new layout; the legacy twin the job has from rampdown follows it.
    expect(await redisState(ctx.redis)).toEqual({
      ...rest,
      [legacyKey(jobId)]: requeued(before[legacyKey(jobId)]),
      [newKey('acme', jobId)]: requeued(before[newKey('acme', jobId)]),
      [QUEUE]: list(`acme:${jobId}`),
    });
  });
});

describe('requeue refuses what it may not put back, writing nothing', () => {
  it.each(EACH_STAGE)('in %s: succeeded, already queued, running without the claim, and a job that is not there', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const succeeded = await finishedJob(queue, 'succeeded');
    const { jobId: waiting } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2 });
    const { jobId: running } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 3 });
    const { jobId: unclaimed } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 4 });
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(waiting);
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(running);
    // Give `waiting` back so it is queued; `unclaimed` runs without a claim (set running by an update).
    await queue.requeue({ workspaceId: 'acme', jobId: waiting, workerId: 'w1' });
    await queue.updateStatus({ workspaceId: 'acme', jobId: unclaimed, status: 'running' });
    const before = await redisState(ctx.redis);

    const refusals = {
      succeeded: await rejection(queue.requeue({ workspaceId: 'acme', jobId: succeeded })),
      queued: await rejection(queue.requeue({ workspaceId: 'acme', jobId: waiting, workerId: 'w1' })),
      otherWorker: await rejection(queue.requeue({ workspaceId: 'acme', jobId: running, workerId: 'w2' })),
      noWorker: await rejection(queue.requeue({ workspaceId: 'acme', jobId: running })),
      noClaim: await rejection(queue.requeue({ workspaceId: 'acme', jobId: unclaimed, workerId: 'w1' })),
      otherWorkspace: await rejection(queue.requeue({ workspaceId: 'globex', jobId: succeeded })),
    };

    expect(refusals.succeeded).toBeInstanceOf(StatusConflictError);
    expect(refusals.succeeded).toMatchObject({ code: 'STATUS_CONFLICT', jobId: succeeded, actual: 'succeeded' });
    expect(refusals.queued).toMatchObject({ code: 'STATUS_CONFLICT', jobId: waiting, actual: 'queued' });
    expect(refusals.otherWorker).toBeInstanceOf(ClaimConflictError);
    expect(refusals.otherWorker).toMatchObject({ code: 'CLAIM_CONFLICT', jobId: running, workerId: 'w2', claimant: 'w1' });
    expect(refusals.noWorker).toMatchObject({ code: 'CLAIM_CONFLICT', jobId: running, claimant: 'w1' });
    expect(refusals.noClaim).toMatchObject({ code: 'CLAIM_CONFLICT', jobId: unclaimed, workerId: 'w1', claimant: '' });
    expect(refusals.otherWorkspace).toBeInstanceOf(NotFoundError);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('in managed mode (live): a succeeded job is refused and the record is untouched', async () => {
    const { queue } = await makeManagedQueue(ctx.redis, 'live');
    const jobId = await finishedJob(queue, 'succeeded');
    const before = await redisState(ctx.redis);

    expect(await rejection(queue.requeue({ workspaceId: 'acme', jobId }))).toMatchObject({ code: 'STATUS_CONFLICT', actual: 'succeeded' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

describe("updateStatus({ status: 'queued' }) is not a requeue", () => {
  it.each(EACH_STAGE)('in %s: on a failed job it is a StatusConflictError that names requeue, and nothing is written', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const jobId = await finishedJob(queue, 'failed');
    const before = await redisState(ctx.redis);

    const error = await rejection(queue.updateStatus({ workspaceId: 'acme', jobId, status: 'queued' }));

    expect(error).toBeInstanceOf(StatusConflictError);
    expect(error).toMatchObject({ code: 'STATUS_CONFLICT', actual: 'failed', expected: 'queued' });
    expect(error.message).toContain('requeue');
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

describe('attempts counts claims, not requeues', () => {
  it.each(EACH_STAGE)('in %s: claim, fail, requeue, claim gives attempts 2 in every layout written', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const jobId = await finishedJob(queue, 'failed');
    await queue.requeue({ workspaceId: 'acme', jobId });
    expect((await redisState(ctx.redis))[jobKeys(c, jobId)[0]]).toMatchObject({ value: { attempts: '1' } });

    const job = await queue.claim({ workerId: 'w2' });

    expect(job).toMatchObject({ id: jobId, attempts: 2 });
    const state = await redisState(ctx.redis);
    for (const key of jobKeys(c, jobId)) expect({ key, attempts: fieldsIn(state, key)!.attempts }).toEqual({ key, attempts: '2' });
    if (!c.legacy) expect(state[legacyKey(jobId)]).toBeUndefined();
    if (!c.fresh) expect(state[newKey('acme', jobId)]).toBeUndefined();
  });

  it('in managed mode across stages: claimed in complete, failed, requeued after the rollback to rampdown, claimed: attempts 2 in both layouts', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'rampdown');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await moveStage(migration, 'complete');
    await queue.claim({ workerId: 'w1' });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1' });
    await moveStage(migration, 'rampdown');
    await queue.requeue({ workspaceId: 'acme', jobId });

    const job = await queue.claim({ workerId: 'w2' });

    expect(job).toMatchObject({ id: jobId, attempts: 2 });
    const state = await redisState(ctx.redis);
    expect(fieldsIn(state, legacyKey(jobId))).toMatchObject({ attempts: '2', status: 'running' });
    expect(fieldsIn(state, newKey('acme', jobId))).toMatchObject({ attempts: '2', status: 'running' });
    expect(fieldsIn(state, legacyKey(jobId))).toEqual(fieldsIn(state, newKey('acme', jobId)));
  });

  it('in managed mode from off: claimed in off, failed and requeued in dualwrite (repaired into the new layout), claimed: attempts 2 in both', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'off');
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    await moveStage(migration, 'dualwrite');
    expect(await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1' })).toMatchObject({ repaired: 'new' });
    await queue.requeue({ workspaceId: 'acme', jobId });

    await queue.claim({ workerId: 'w2' });

    const state = await redisState(ctx.redis);
    expect(fieldsIn(state, legacyKey(jobId))).toMatchObject({ attempts: '2', status: 'running' });
    expect(fieldsIn(state, legacyKey(jobId))).toEqual(fieldsIn(state, newKey('acme', jobId)));
  });
});

describe('requeue takes a retention expiry away', () => {
  it.each(EACH_STAGE)('in %s: every copy persists and the expiries set forgets the job', async (_stage, c) => {
    // In complete the job was made in rampdown, so its legacy twin follows it, expiry and all.
    const maker = await makeQueue(ctx.redis, c.stage === 'complete' ? 'rampdown' : c.stage);
    const { queue } = await makeQueue(ctx.redis, c.stage, { retention: { failed: 3600 } });
    const { jobId } = await maker.queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1' });
    const before = await redisState(ctx.redis);
    const copies = c.stage === 'complete' ? [legacyKey(jobId), newKey('acme', jobId)] : jobKeys(c, jobId);
    for (const key of copies) expect({ key, expiresAt: before[key].expiresAt }).toEqual({ key, expiresAt });
    expect(before[EXPIRIES]).toEqual({ type: 'zset', value: [[`acme:${jobId}`, expiresAt]] });

    await queue.requeue({ workspaceId: 'acme', jobId });

    const { [EXPIRIES]: _gone, ...rest } = before;
    const expected: Record<string, KeyState> = { ...rest, [QUEUE]: list(c.entry('acme', jobId)) };
    for (const key of copies) expected[key] = requeued(persisted(before[key]));
    expect(await redisState(ctx.redis)).toEqual(expected);
  });

  it('in managed mode (shadow, retention from Migration.configure): both copies persist', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'shadow');
    await migration.configure({ retention: { cancelled: 600 } });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });
    expect(expiresAt).not.toBeNull();
    const before = await redisState(ctx.redis);

    await queue.requeue({ workspaceId: 'acme', jobId });

    const { [EXPIRIES]: _gone, ...rest } = before;
    expect(await redisState(ctx.redis)).toEqual({
      ...rest,
      [legacyKey(jobId)]: requeued(persisted(before[legacyKey(jobId)])),
      [newKey('acme', jobId)]: requeued(persisted(before[newKey('acme', jobId)])),
      [QUEUE]: list(jobId),
    });
  });
});

describe('requeue takes a retention expiry away from a twin the stage does not write', () => {
  it('in off after a rollback from dualwrite: the new twin persists with the legacy record', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    await migration.configure({ retention: { failed: 3600 } });
    const jobId = await finishedJob(queue, 'failed');
    await moveStage(migration, 'off');
    const before = await redisState(ctx.redis);
    expect(before[newKey('acme', jobId)].expiresAt).toBe(before[legacyKey(jobId)].expiresAt);

    await queue.requeue({ workspaceId: 'acme', jobId });

    const { [EXPIRIES]: _gone, ...rest } = before;
    // off writes the legacy record only; the new twin keeps its fields but no longer expires.
    expect(await redisState(ctx.redis)).toEqual({
      ...rest,
      [legacyKey(jobId)]: requeued(persisted(before[legacyKey(jobId)])),
      [newKey('acme', jobId)]: persisted(before[newKey('acme', jobId)]),
      [QUEUE]: list(jobId),
    });
  });
});

/** A small deterministic generator, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Three workers on their own connections claim, extend, fail, finish, give back and requeue jobs,
 * and recover stalled ones, at random and at once. Refusals from a lost race are expected; anything
 * else fails the run.
 */
/** What the workers know between rounds: the jobs each holds, and the failed jobs any may requeue. */
interface Floor {
  held: string[][];
  failed: string[];
}

async function churn(url: string, stageOption: Stage | 'managed', seed: number, steps: number, floor: Floor): Promise<Record<string, number>> {
  const clients = Array.from({ length: 3 }, () => new Redis(url));
  const done: Record<string, number> = {};
  const count = (what: string) => (done[what] = (done[what] ?? 0) + 1);
  try {
    await Promise.all(
      clients.map(async (redis, w) => {
        const random = prng(seed * 10 + w);
        const workerId = `w${w}`;
        const queue = new DualWriteQueue({ redis, stage: stageOption, heartbeat: false, metrics: false, retention: stageOption === 'managed' ? undefined : { failed: 3600 } });
        const held = (floor.held[w] ??= []);
        const failed = floor.failed;
        for (let step = 0; step < steps; step++) {
          const roll = random();
          const pick = (from: string[]) => from.splice(Math.floor(random() * from.length), 1)[0];
          try {
            if (roll < 0.3 || held.length === 0) {
              const job = await queue.claim({ workerId, visibilityTimeoutMs: 5 + Math.floor(random() * 60) });
              if (job) held.push(job.id);
              count(job ? 'claim' : 'claim_empty');
            } else if (roll < 0.45) {
              await queue.extendClaim({ workspaceId: 'acme', jobId: held[Math.floor(random() * held.length)], workerId, visibilityTimeoutMs: 5 + Math.floor(random() * 60) });
              count('extend');
            } else if (roll < 0.6) {
              const jobId = pick(held);
              await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId, error: `step ${step}` });
              failed.push(jobId);
              count('fail');
            } else if (roll < 0.7) {
              await queue.requeue({ workspaceId: 'acme', jobId: pick(held), workerId });
              count('give_back');
            } else if (roll < 0.8 && failed.length > 0) {
              await queue.requeue({ workspaceId: 'acme', jobId: pick(failed), reason: 'retry' });
              count('requeue_failed');
            } else if (roll < 0.9) {
              // A pause first, so some claims outlive their timeout.
              await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
              if ((await queue.recoverStalled()).recovered > 0) count('recovered');
            } else {
              await queue.updateStatus({ workspaceId: 'acme', jobId: pick(held), status: 'succeeded', workerId, result: { step } });
              count('succeed');
            }
          } catch (error) {
            // Lost races: the claim was recovered (and maybe taken) under us, or another worker requeued first.
            const code = (error as { code?: string }).code;
            if (code !== 'CLAIM_CONFLICT' && code !== 'STATUS_CONFLICT') throw error;
            count('refused');
          }
        }
      }),
    );
  } finally {
    clients.forEach((client) => client.disconnect());
  }
  return done;
}

/** Every kind of step went through at least once over the rounds: the churn proves something. */
function expectEveryStep(tallies: Record<string, number>[]): void {
  const total: Record<string, number> = {};
  for (const tally of tallies) for (const [what, n] of Object.entries(tally)) total[what] = (total[what] ?? 0) + n;
  for (const what of ['claim', 'extend', 'fail', 'give_back', 'requeue_failed', 'recovered', 'succeed', 'refused']) {
    expect({ what, done: (total[what] ?? 0) > 0 }).toEqual({ what, done: true });
  }
}

/** Never both queued and claimed: verify's queue checks, and one entry per job across the queue and the processing set. */
async function expectQueueConsistent(stage: Stage | 'managed', layouts: 'legacy' | 'new' | 'both' | 'any'): Promise<void> {
  const report = await new Migration({ redis: ctx.redis, stage, metrics: false }).verify();
  expect({
    queued_and_claimed: report.divergences.queued_and_claimed,
    claim_mismatch: report.divergences.claim_mismatch,
    queue_orphan: report.divergences.queue_orphan,
    processing_orphan: report.divergences.processing_orphan,
  }).toEqual({ queued_and_claimed: 0, claim_mismatch: 0, queue_orphan: 0, processing_orphan: 0 });
  const invariants = await checkInvariants(ctx.redis, {
    layouts,
    layoutsAgree: layouts === 'both',
    ignore: (key) => key.startsWith('dualwrite:'),
  });
  expect(invariants.violations).toEqual([]);
  // Each job: running with exactly one claim, queued with exactly one entry, or finished with neither.
  const state = await redisState(ctx.redis);
  const waiting = (state[QUEUE]?.value as string[] | undefined) ?? [];
  const claimed = ((state['queue:default:processing']?.value as [string, number][] | undefined) ?? []).map(([entry]) => entry);
  for (const job of invariants.jobs) {
    const record = job.new ?? job.legacy!;
    const forms = [job.jobId, `acme:${job.jobId}`];
    const entries = waiting.filter((e) => forms.includes(e)).length;
    const claims = claimed.filter((e) => forms.includes(e)).length;
    const where = { job: job.jobId, status: record.status };
    if (record.status === 'queued') expect({ ...where, entries, claims }).toEqual({ ...where, entries: 1, claims: 0 });
    else if (record.status === 'running') expect({ ...where, entries, claims }).toEqual({ ...where, entries: 0, claims: 1 });
    else expect({ ...where, entries, claims }).toEqual({ ...where, entries: 0, claims: 0 });
  }
}

describe('no job is ever both queued and claimed', () => {
  it.each(EACH_STAGE)('in %s: a job cancelled while its entry waited past the update\'s search is requeued onto that entry, not a second one', async (_stage, c) => {
    const { queue } = await makeQueue(ctx.redis, c.stage);
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const ahead = Array.from({ length: 1000 }, (_, i) => `acme:ahead-${i}`);
    await ctx.redis.lpush(QUEUE, ...ahead);
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });
    const entry = c.entry('acme', jobId);
    expect(await ctx.redis.lpos(QUEUE, entry)).toBe(1000);

    await queue.requeue({ workspaceId: 'acme', jobId });

    // One entry, where it was; the job's mark is gone with the doubt.
    expect(await ctx.redis.lrange(QUEUE, 1000, -1)).toEqual([entry]);
    expect(await ctx.redis.llen(QUEUE)).toBe(1001);
    for (const key of jobKeys(c, jobId)) {
      expect(await ctx.redis.hmget(key, 'status', 'entry_unfound')).toEqual(['queued', null]);
    }
    await ctx.redis.ltrim(QUEUE, 1000, -1);
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(jobId);
    expect(await ctx.redis.exists(QUEUE)).toBe(0);
    const report = await checkInvariants(ctx.redis, { layouts: c.legacy && c.fresh ? 'both' : c.legacy ? 'legacy' : 'new' });
    expect(report.violations).toEqual([]);
  });

  it.each(EACH_STAGE)('in %s: after three rounds of claim, extend, fail, finish, give back, requeue and recover by three workers', async (stage, c) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    for (let i = 0; i < 12; i++) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i, jobId: `j${i}` });
    const layouts = c.legacy && c.fresh ? 'both' : c.legacy ? 'legacy' : 'new';

    const tallies = [];
    const floor: Floor = { held: [], failed: [] };
    for (let round = 0; round < 3; round++) {
      if (round > 0) for (let i = 0; i < 6; i++) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i, jobId: `r${round}-${i}` });
      tallies.push(await churn(ctx.handle.url, stage, round + 1, 40, floor));
      await expectQueueConsistent(stage, layouts);
    }
    expectEveryStep(tallies);
  });

  it('in managed mode, the record moving between rounds (dualwrite, live, complete, rampdown)', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    await migration.configure({ retention: { failed: 3600 } });
    for (let i = 0; i < 12; i++) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i, jobId: `j${i}` });

    const tallies = [];
    const floor: Floor = { held: [], failed: [] };
    for (const [round, stage] of (['dualwrite', 'live', 'complete', 'rampdown'] as Stage[]).entries()) {
      if (round > 0) await moveStage(migration, stage);
      if (round > 0) for (let i = 0; i < 6; i++) await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i, jobId: `r${round}-${i}` });
      tallies.push(await churn(ctx.handle.url, 'managed', round + 7, 40, floor));
      // After complete the legacy twins lag until their next write: only the queue is checked there.
      await expectQueueConsistent('managed', 'any');
    }
    expectEveryStep(tallies);
  });
});
