/**
 * Scenario 8, tenancy: in every stage, through every operation, a workspace cannot read, list,
 * update or replay another workspace's job: not through the legacy layout (whose keys are global),
 * not through the fallback, and not with ids that differ from the victim's only in case or separators.
 */
import { DuplicateJobError, NotFoundError, STAGES, planFor, type Stage } from '../../src';
import { checkInvariants } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow } from '../support/soak';
import { putJob, redisState } from '../support/state';

const ctx = useRedis();
const VICTIM = 'acme';
const ATTACKERS = ['Acme', 'ACME', 'ac-me', 'ac_me', 'acme-', '_acme'];

describe('scenario 8: tenancy', () => {
  it.each(STAGES)('in %s, no other workspace reads, lists, updates or replays acme\'s jobs', async (stage: Stage) => {
    const { queue } = await makeQueue(ctx.redis, stage);
    // The victim: a job from before the package (legacy only, reached through the fallback) and
    // one enqueued in this stage with an idempotency key.
    await putJob(ctx.redis, 'job:legacy-1', {
      id: 'legacy-1', workspaceId: VICTIM, type: 't', payload: { secret: 1 }, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000,
    });
    await ctx.redis.zadd(`ws:${VICTIM}:jobs`, 1_700_000_000_000, 'legacy-1');
    await ctx.redis.rpush('queue:default', 'legacy-1');
    const order = { type: 'payment.capture', payload: { amount: 100 }, idempotencyKey: 'order-1' };
    const victimJob = await queue.enqueue({ workspaceId: VICTIM, jobId: 'job-1', ...order });
    const before = await redisState(ctx.redis);
    let operations = 0;
    const refusals: Record<string, number> = {};
    const attempt = async <T>(call: () => Promise<T>) => {
      operations++;
      return call().catch((error: NotFoundError | DuplicateJobError) => {
        refusals[`${error.code} (refused)`] = (refusals[`${error.code} (refused)`] ?? 0) + 1;
        return error;
      });
    };

    for (const attacker of ATTACKERS) {
      for (const jobId of ['job-1', 'legacy-1', 'JOB-1', 'job_1']) {
        expect([attacker, jobId, await attempt(() => queue.getJob({ workspaceId: attacker, jobId }))]).toEqual([attacker, jobId, null]);
        const update = await attempt(() => queue.updateStatus({ workspaceId: attacker, jobId, status: 'cancelled' }));
        expect([attacker, jobId, update]).toEqual([attacker, jobId, expect.any(NotFoundError)]);
      }
      expect(await attempt(() => queue.listJobs({ workspaceId: attacker }))).toEqual({ jobs: [], nextCursor: null });
      // The same idempotency key in another workspace is another request: a job of its own.
      const replay = await attempt(() => queue.enqueue({ workspaceId: attacker, ...order }));
      expect(replay).toEqual({ jobId: expect.any(String), created: true });
      expect((replay as { jobId: string }).jobId).not.toBe(victimJob.jobId);
      // The victim's jobId: refused while the (global) legacy key is written, its own job otherwise.
      const sameId = await attempt(() => queue.enqueue({ workspaceId: attacker, type: 't', payload: 1, jobId: 'job-1' }));
      if (planFor(stage).writeLegacy) expect(sameId).toBeInstanceOf(DuplicateJobError);
      else expect(sameId).toEqual({ jobId: 'job-1', created: true });
    }

    // The victim sees exactly what it had, and every key it had is byte for byte the same.
    const after = await redisState(ctx.redis);
    for (const key of Object.keys(before).filter((k) => !k.startsWith('queue:'))) expect([key, after[key]]).toEqual([key, before[key]]);
    const victimEntries = before['queue:default'].value as string[];
    expect((after['queue:default'].value as string[]).slice(0, victimEntries.length)).toEqual(victimEntries);
    const victimView = await queue.listJobs({ workspaceId: VICTIM });
    expect(victimView.jobs.map((job) => [job.id, job.status])).toEqual(
      planFor(stage).readFrom === 'new' && !planFor(stage).fallback ? [['job-1', 'queued']] : [['job-1', 'queued'], ['legacy-1', 'queued']],
    );
    const report = await checkInvariants(ctx.redis, { layouts: 'any' });
    expect(report.violations).toEqual([]);
    recordRow({
      scenario: 8, name: 'tenancy (every stage, every operation)', operations, faults: operations, faultKind: 'cross-workspace attempts',
      lost: 0, duplicated: 0, halfWritten: report.violations.length,
      callerErrors: Object.values(refusals).reduce((a, b) => a + b, 0), callerErrorKinds: refusals,
    });
  });
});
