/**
 * Scenario 4, out of memory: with maxmemory under noeviction, Redis refuses a writing script before
 * it starts (the #!lua shebang), so a full server refuses whole calls, never half of one. With an
 * evicting policy it would instead delete job keys silently: the second test shows what that does.
 */
import { OutOfMemoryError, type EnqueueInput } from '../../src';
import { setMaxMemory, usedMemory } from '../../src/testing';
import { checkInvariants } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow, scaled } from '../support/soak';
import { redisState } from '../support/state';

const ctx = useRedis();
const BLOB = 'x'.repeat(4096);

describe('scenario 4: out of memory', () => {
  it('under noeviction, each enqueue is whole or refused with OUT_OF_MEMORY; once memory is freed the same calls succeed', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite');
    const requests: EnqueueInput[] = Array.from({ length: scaled(150) }, (_, n) => ({
      workspaceId: ['acme', 'globex'][n % 2], type: 'report.render', payload: { n, blob: BLOB }, idempotencyKey: `report-${n}`,
    }));
    const cap = await setMaxMemory(ctx.redis, { bytes: (await usedMemory(ctx.redis)) + 1024 * 1024 });
    const acknowledged = new Map<string, string>();
    const refused: EnqueueInput[] = [];
    const otherErrors: unknown[] = [];

    try {
      for (const request of requests) {
        try {
          acknowledged.set(request.idempotencyKey!, (await queue.enqueue(request)).jobId);
        } catch (error) {
          if (error instanceof OutOfMemoryError && error.code === 'OUT_OF_MEMORY') refused.push(request);
          else otherErrors.push(error);
        }
      }

      expect(otherErrors).toEqual([]);
      expect(refused.length).toBeGreaterThan(0);
      expect(acknowledged.size).toBeGreaterThan(0);
      const full = await checkInvariants(ctx.redis);
      expect(full.violations).toEqual([]);
      expect(full.jobs.map((job) => job.jobId).sort()).toEqual([...acknowledged.values()].sort()); // no trace of a refused call
      // A full server still answers reads, and refuses updates whole.
      const [firstKey, firstJobId] = [...acknowledged][0];
      const workspaceId = requests.find((r) => r.idempotencyKey === firstKey)!.workspaceId;
      expect((await queue.getJob({ workspaceId, jobId: firstJobId }))?.status).toBe('queued');
      const before = await redisState(ctx.redis);
      await expect(queue.updateStatus({ workspaceId, jobId: firstJobId, status: 'running' })).rejects.toBeInstanceOf(OutOfMemoryError);
      expect(await redisState(ctx.redis)).toEqual(before);
    } finally {
      await cap.restore();
    }

    for (const request of refused) {
      const retried = await queue.enqueue(request);
      expect(retried.created).toBe(true);
      acknowledged.set(request.idempotencyKey!, retried.jobId);
    }
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(report.jobs).toHaveLength(requests.length);
    recordRow({
      scenario: 4, name: 'out of memory (maxmemory, noeviction)', operations: requests.length + refused.length + 2,
      faults: refused.length + 1, faultKind: 'calls refused by a full server', lost: 0,
      duplicated: report.jobs.length - requests.length, halfWritten: report.violations.length,
      callerErrors: refused.length + 1, callerErrorKinds: { OUT_OF_MEMORY: refused.length + 1 },
    });
  });

  it('under an evicting policy Redis silently deletes job keys, which the invariants catch; ready() warned', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (message: string) => warnings.push(message), error() {} };
    const cap = await setMaxMemory(ctx.redis, { bytes: (await usedMemory(ctx.redis)) + 1024 * 1024, policy: 'allkeys-lru' });
    try {
      const { queue } = await makeQueue(ctx.redis, 'dualwrite', { logger });
      for (let n = 0; n < 150; n++) {
        await queue.enqueue({ workspaceId: 'acme', type: 'report.render', payload: { n, blob: BLOB }, idempotencyKey: `report-${n}` });
      }

      expect(warnings).toEqual([expect.stringContaining('maxmemory-policy')]);
      const report = await checkInvariants(ctx.redis);
      expect(report.violations.length).toBeGreaterThan(0); // every call succeeded, yet jobs are gone or torn
    } finally {
      await cap.restore();
    }
  });
});
