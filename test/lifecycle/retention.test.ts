/**
 * Retention: a terminal update gives every copy of the job one absolute expiry, noted in the queue's
 * expiries set; once Redis removed the records, reads and verify see "pending maintenance", never a
 * divergence, and maintain() sweeps what still names the job. Static option and stage record alike.
 */
import Redis from 'ioredis';
import { DualWriteQueue, Migration, type Stage } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { list, redisState, zset, type KeyState } from '../support/state';
import {
  CLAIMS,
  EACH_STAGE,
  EXPIRIES,
  fieldsIn,
  indexKey,
  legacyKey,
  makeManagedQueue,
  moveStage,
  newKey,
  PROCESSING,
  QUEUE,
  sleep,
  STAGE_CASES,
  type StageCase,
} from './helpers';

const ctx = useRedis();

/** The copies of acme's job a stage writes: in complete the job was made in rampdown, so its legacy twin is one too, and follows it. */
function copiesOf(c: StageCase, jobId: string): string[] {
  if (c.stage === 'complete') return [legacyKey(jobId), newKey('acme', jobId)];
  return [...(c.legacy ? [legacyKey(jobId)] : []), ...(c.fresh ? [newKey('acme', jobId)] : [])];
}

/** A queue of the stage, and one that makes its jobs (rampdown for complete, so the legacy twin exists). */
async function queuesFor(c: StageCase, retention: { succeeded?: number; failed?: number; cancelled?: number }) {
  const { queue, registry } = await makeQueue(ctx.redis, c.stage, { retention });
  const maker = c.stage === 'complete' ? (await makeQueue(ctx.redis, 'rampdown')).queue : queue;
  return { queue, registry, maker };
}

/** The job records of a snapshot after a terminal update: the status, a fresh updated_at, the expiry. */
function finished(entry: KeyState, status: string, expiresAt: number | undefined): KeyState {
  if (entry.type !== 'hash') throw new Error('not a hash');
  const value = { ...entry.value, status, updated_at: expect.any(String) as unknown as string };
  return { ...entry, value, ...(expiresAt === undefined ? {} : { expiresAt }) };
}

describe('a terminal update gives every copy the same absolute expiry', () => {
  it.each(EACH_STAGE)('in %s: the millisecond PEXPIRETIME gives, the reply’s expiresAt and the expiries score are one', async (_stage, c) => {
    const { queue, maker } = await queuesFor(c, { succeeded: 3600 });
    const { jobId } = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const claimed = await queue.claim({ workerId: 'w1' });
    const before = await redisState(ctx.redis);

    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1' });

    expect(expiresAt).not.toBeNull();
    const after = await redisState(ctx.redis);
    const { [PROCESSING]: _p, [CLAIMS]: _c, ...rest } = before;
    const expected: Record<string, KeyState> = { ...rest, [EXPIRIES]: zset([`acme:${jobId}`, expiresAt!]) };
    for (const key of copiesOf(c, jobId)) {
      expected[key] = finished(before[key], 'succeeded', expiresAt!);
    }
    expect(after).toEqual(expected);
    // The expiry is the update's server time plus the retention: between the claim's stamp and the update's.
    const updatedAt = Number(fieldsIn(after, copiesOf(c, jobId).find((key) => key !== legacyKey(jobId) || c.legacy)!)!.updated_at);
    expect(expiresAt! - 3_600_000).toBeGreaterThanOrEqual(claimed!.updatedAt);
    expect(expiresAt! - 3_600_000).toBeLessThanOrEqual(updatedAt);
  });

  it('each terminal status takes its own retention; a status without one keeps its jobs for good', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live', { retention: { succeeded: 60, cancelled: 7200 } });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i })).jobId);

    const succeeded = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[0], status: 'succeeded' });
    const cancelled = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[1], status: 'cancelled' });
    const failed = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[2], status: 'failed' });

    expect(failed.expiresAt).toBeNull();
    const state = await redisState(ctx.redis);
    for (const [result, seconds] of [[succeeded, 60], [cancelled, 7200]] as const) {
      const updatedAt = Number(fieldsIn(state, newKey('acme', result.jobId))!.updated_at);
      expect(result.expiresAt! - seconds * 1000).toBeLessThanOrEqual(updatedAt);
      expect(result.expiresAt! - seconds * 1000).toBeGreaterThan(updatedAt - 1000);
      for (const key of [legacyKey(result.jobId), newKey('acme', result.jobId)]) expect(state[key].expiresAt).toBe(result.expiresAt);
    }
    expect(state[legacyKey(ids[2])].expiresAt).toBeUndefined();
    expect(state[newKey('acme', ids[2])].expiresAt).toBeUndefined();
    expect(state[EXPIRIES]).toEqual(zset(...([[`acme:${ids[0]}`, succeeded.expiresAt!], [`acme:${ids[1]}`, cancelled.expiresAt!]] as [string, number][]).sort((a, b) => a[1] - b[1])));
  });

  it('a legacy-only job repaired by its terminal update expires in both layouts at once', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite', { retention: { failed: 3600 } });
    await ctx.redis.hset(legacyKey('old'), { id: 'old', workspace_id: 'acme', type: 't', payload: '1', status: 'running', created_at: '1', updated_at: '1', priority: '5' });

    const { expiresAt, repaired } = await queue.updateStatus({ workspaceId: 'acme', jobId: 'old', status: 'failed' });

    expect(repaired).toBe('new');
    const state = await redisState(ctx.redis);
    expect([state[legacyKey('old')].expiresAt, state[newKey('acme', 'old')].expiresAt]).toEqual([expiresAt, expiresAt]);
    expect(fieldsIn(state, newKey('acme', 'old'))).toEqual(fieldsIn(state, legacyKey('old')));
  });
});

describe('a status without retention takes the expiry away', () => {
  it.each(EACH_STAGE)('in %s: a finished job set running again by an update persists in every copy and leaves the expiries set', async (_stage, c) => {
    const { queue, maker } = await queuesFor(c, { succeeded: 3600 });
    const { jobId } = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded' });
    const before = await redisState(ctx.redis);

    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'running' });

    expect(expiresAt).toBeNull();
    const { [EXPIRIES]: _gone, ...rest } = before;
    const expected: Record<string, KeyState> = { ...rest };
    for (const key of copiesOf(c, jobId)) {
      expected[key] = finished(before[key], 'running', undefined);
      delete expected[key].expiresAt;
    }
    expect(await redisState(ctx.redis)).toEqual(expected);
  });
});

describe('after retention removed a job', () => {
  it('in every stage: listJobs skips it without a divergence, verify counts it pending, maintain sweeps it, verify is clean', async () => {
    // Each stage under its own key prefix, so one wait for the expiry serves all six.
    const arranged = [];
    for (const c of STAGE_CASES) {
      const keyPrefix = `p-${c.stage}:`;
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
      const { queue, registry } = await makeQueue(ctx.redis, c.stage, { keyPrefix, retention: { succeeded: 1, failed: 3600 }, logger });
      // complete's jobs are made in rampdown, so each has its legacy twin.
      const maker = c.stage === 'complete' ? (await makeQueue(ctx.redis, 'rampdown', { keyPrefix })).queue : queue;
      const { jobId } = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
      // A neighbour finished with a long retention stays (not in off: verify counts a legacy-only job there as missing_new).
      const neighbour = c.stage === 'off' ? undefined : (await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 2 })).jobId;
      await queue.claim({ workerId: 'w1' });
      const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1', result: { ok: true } });
      if (neighbour) await queue.updateStatus({ workspaceId: 'acme', jobId: neighbour, status: 'failed' });
      arranged.push({ c, keyPrefix, queue, registry, warnings, jobId, neighbour, expiresAt });
    }
    await sleep(1100); // the records' expiry passes (no timing is asserted)

    for (const { c, keyPrefix, queue, registry, warnings, jobId, neighbour, expiresAt } of arranged) {
      const { stage } = c;
      const key = (name: string) => keyPrefix + name;
      const index = key(indexKey('acme'));
      const expiries = key(EXPIRIES);
      const stateOf = async () => Object.fromEntries(Object.entries(await redisState(ctx.redis)).filter(([name]) => name.startsWith(keyPrefix)));
      const verifyStage = () => new Migration({ redis: ctx.redis, stage, keyPrefix, metrics: false }).verify();

      const listed = await queue.listJobs({ workspaceId: 'acme' });

      expect({ stage, listed: listed.jobs.map((job) => job.id) }).toEqual({ stage, listed: neighbour ? [neighbour] : [] });
      expect({ stage, job: await queue.getJob({ workspaceId: 'acme', jobId }) }).toEqual({ stage, job: null });
      expect({ stage, orphans: await metricValue(registry, 'dualwrite_divergences_total', { kind: 'index_orphan' }), warnings }).toEqual({ stage, orphans: 0, warnings: [] });
      const swept = await stateOf();
      for (const copy of copiesOf(c, jobId)) expect({ stage, copy: swept[key(copy)] }).toEqual({ stage, copy: undefined });
      expect({ stage, index: swept[index].value }).toEqual({ stage, index: expect.arrayContaining([[jobId, expect.any(Number)]]) });
      expect({ stage, expiries: swept[expiries].value }).toEqual({ stage, expiries: expect.arrayContaining([[`acme:${jobId}`, expiresAt]]) });
      expect({ stage, verify: await verifyStage() }).toMatchObject({ stage, verify: { clean: true, pendingMaintenance: 1 } });

      const result = await queue.maintain();

      expect({ stage, result }).toEqual({ stage, result: { removed: 1, rescheduled: 0, kept: 0 } });
      const indexLeft = (swept[index].value as [string, number][]).filter(([id]) => id !== jobId);
      const expiriesLeft = (swept[expiries].value as [string, number][]).filter(([member]) => member !== `acme:${jobId}`);
      const { [index]: _i, [expiries]: _e, ...rest } = swept;
      expect({ stage, state: await stateOf() }).toEqual({
        stage,
        state: { ...rest, ...(indexLeft.length > 0 ? { [index]: zset(...indexLeft) } : {}), ...(expiriesLeft.length > 0 ? { [expiries]: zset(...expiriesLeft) } : {}) },
      });
      expect({ stage, removals: await metricValue(registry, 'dualwrite_retention_removals_total') }).toEqual({ stage, removals: 1 });
      expect({ stage, verify: await verifyStage() }).toMatchObject({ stage, verify: { clean: true, pendingMaintenance: 0 } });
      expect({ stage, again: await queue.maintain() }).toEqual({ stage, again: { removed: 0, rescheduled: 0, kept: 0 } });
    }
  });

  it('in managed mode (live, retention from Migration.configure): the same, with the record untouched', async () => {
    const { queue, registry, migration } = await makeManagedQueue(ctx.redis, 'live');
    await migration.configure({ retention: { failed: 1 } });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'failed', workerId: 'w1', error: 'boom' });
    const state = await redisState(ctx.redis);
    expect([state[legacyKey(jobId)].expiresAt, state[newKey('acme', jobId)].expiresAt, state[EXPIRIES].value]).toEqual([expiresAt, expiresAt, [[`acme:${jobId}`, expiresAt]]]);
    await sleep(1100);

    expect((await queue.listJobs({ workspaceId: 'acme' })).jobs).toEqual([]);
    expect(await metricValue(registry, 'dualwrite_divergences_total', { kind: 'index_orphan' })).toBe(0);
    expect(await migration.verify()).toMatchObject({ clean: true, pendingMaintenance: 1 });
    const before = await redisState(ctx.redis);

    expect(await queue.maintain()).toEqual({ removed: 1, rescheduled: 0, kept: 0 });

    const { [indexKey('acme')]: _i, [EXPIRIES]: _e, ...rest } = before;
    expect(await redisState(ctx.redis)).toEqual(rest);
    expect(await metricValue(registry, 'dualwrite_retention_removals_total')).toBe(1);
    expect(await migration.verify()).toMatchObject({ clean: true, pendingMaintenance: 0 });
  });

  it('in off after a rollback from dualwrite: the new twin expires with the legacy record, so nothing of the job outlives it', async () => {
    const { queue, registry, migration } = await makeManagedQueue(ctx.redis, 'dualwrite');
    await migration.configure({ retention: { succeeded: 1 } });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await queue.claim({ workerId: 'w1' });
    await moveStage(migration, 'off');

    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1' });

    const state = await redisState(ctx.redis);
    expect([state[legacyKey(jobId)].expiresAt, state[newKey('acme', jobId)].expiresAt]).toEqual([expiresAt, expiresAt]);
    await sleep(1100);
    expect(await queue.maintain()).toEqual({ removed: 1, rescheduled: 0, kept: 0 });
    const left = await redisState(ctx.redis);
    expect(Object.keys(left).filter((key) => !key.startsWith('dualwrite:'))).toEqual([]);
    expect(await metricValue(registry, 'dualwrite_retention_removals_total')).toBe(1);
    // Forward to dualwrite again: the job is gone from every read and from verify.
    await moveStage(migration, 'dualwrite');
    for (const stage of ['dualwrite', 'live'] as Stage[]) {
      const reader = await makeQueue(ctx.redis, stage);
      expect(await reader.queue.getJob({ workspaceId: 'acme', jobId })).toBeNull();
    }
    expect(await migration.verify()).toMatchObject({ clean: true, pendingMaintenance: 0 });
  });
});

describe('a job cancelled while it waits', () => {
  it.each(EACH_STAGE)('in %s: leaves the queue in the same update that gives it its expiry', async (_stage, c) => {
    const { queue, maker } = await queuesFor(c, { cancelled: 3600 });
    const first = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const { jobId } = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 2 });
    const last = await maker.enqueue({ workspaceId: 'acme', type: 't', payload: 3 });
    const before = await redisState(ctx.redis);
    // complete's jobs were made in rampdown: their entries are bare too.
    const entry = (id: string) => (c.stage === 'complete' ? id : c.entry('acme', id));

    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });

    const expected: Record<string, KeyState> = { ...before, [QUEUE]: list(entry(first.jobId), entry(last.jobId)), [EXPIRIES]: zset([`acme:${jobId}`, expiresAt!]) };
    for (const key of copiesOf(c, jobId)) {
      expected[key] = finished(before[key], 'cancelled', expiresAt!);
    }
    expect(await redisState(ctx.redis)).toEqual(expected);
    // The workers never meet the cancelled job.
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(first.jobId);
    expect((await queue.claim({ workerId: 'w1' }))?.id).toBe(last.jobId);
    expect(await queue.claim({ workerId: 'w1' })).toBeNull();
  });

  it('its entry is found as the 1000th of the queue', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite', { retention: { cancelled: 3600 } });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await ctx.redis.lpush(QUEUE, ...Array.from({ length: 999 }, (_, i) => `ahead-${i}`));
    expect(await ctx.redis.lpos(QUEUE, jobId)).toBe(999);

    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'cancelled' });

    expect(await ctx.redis.lpos(QUEUE, jobId)).toBeNull();
    expect(await ctx.redis.llen(QUEUE)).toBe(999);
  });
});

describe('retention set through Migration.configure', () => {
  it('applies to jobs finishing after the change; jobs finished before keep their expiry', async () => {
    const { queue, migration } = await makeManagedQueue(ctx.redis, 'rampdown');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ workspaceId: 'acme', type: 't', payload: i })).jobId);

    await migration.configure({ retention: { succeeded: 3600 } });
    const a = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[0], status: 'succeeded' });
    const afterA = await redisState(ctx.redis);
    await migration.configure({ retention: { succeeded: 60 } });
    const b = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[1], status: 'succeeded' });
    await migration.configure({ retention: { succeeded: null } });
    const c = await queue.updateStatus({ workspaceId: 'acme', jobId: ids[2], status: 'succeeded' });

    const state = await redisState(ctx.redis);
    const updatedAt = (id: string) => Number(fieldsIn(state, newKey('acme', id))!.updated_at);
    expect(a.expiresAt! - 3_600_000).toBeLessThanOrEqual(updatedAt(ids[0]));
    expect(a.expiresAt! - 3_600_000).toBeGreaterThan(updatedAt(ids[0]) - 1000);
    expect(b.expiresAt! - 60_000).toBeLessThanOrEqual(updatedAt(ids[1]));
    expect(b.expiresAt! - 60_000).toBeGreaterThan(updatedAt(ids[1]) - 1000);
    expect(c.expiresAt).toBeNull();
    // A's copies kept the expiry they had; C's have none.
    for (const key of [legacyKey(ids[0]), newKey('acme', ids[0])]) expect(state[key]).toEqual(afterA[key]);
    for (const key of [legacyKey(ids[2]), newKey('acme', ids[2])]) expect(state[key].expiresAt).toBeUndefined();
    expect(state[EXPIRIES]).toEqual(zset([`acme:${ids[1]}`, b.expiresAt!], [`acme:${ids[0]}`, a.expiresAt!]));
  });

  it('a static queue refuses a retention option in managed mode, pointing to configure', () => {
    expect(() => new DualWriteQueue({ redis: ctx.redis, stage: 'managed', retention: { succeeded: 1 }, heartbeat: false, metrics: false })).toThrow(/Migration.configure/);
  });
});

describe('maintain', () => {
  it('from two queue instances at once removes each job once', async () => {
    const { queue } = await makeQueue(ctx.redis, 'live', { retention: { succeeded: 1 } });
    const jobIds: string[] = [];
    for (let i = 0; i < 30; i++) {
      const { jobId } = await queue.enqueue({ workspaceId: `ws${i % 3}`, type: 't', payload: i });
      await queue.updateStatus({ workspaceId: `ws${i % 3}`, jobId, status: 'succeeded' });
      jobIds.push(jobId);
    }
    await sleep(1100);
    const clients = [new Redis(ctx.handle.url), new Redis(ctx.handle.url)];
    try {
      const sweepers = await Promise.all(clients.map((redis) => makeQueue(redis, 'live', { retention: { succeeded: 1 } })));

      // Both read the same due jobs and sweep them in batches of 10, until nothing is left.
      const removed = await Promise.all(
        sweepers.map(async ({ queue: sweeper }) => {
          let total = 0;
          for (let round = 0; round < 10; round++) {
            const result = await sweeper.maintain({ limit: 10 });
            total += result.removed;
            expect(result).toMatchObject({ rescheduled: 0, kept: 0 });
            if (result.removed === 0 && (await ctx.redis.zcard(EXPIRIES)) === 0) break;
          }
          return total;
        }),
      );

      expect(removed[0] + removed[1]).toBe(30);
      const counted = await Promise.all(sweepers.map(({ registry }) => metricValue(registry, 'dualwrite_retention_removals_total')));
      expect(counted).toEqual(removed);
      expect(await redisState(ctx.redis)).toEqual({});
    } finally {
      clients.forEach((client) => client.disconnect());
    }
  });

  it('reschedules a due entry whose record now expires later, and forgets one whose record no longer expires', async () => {
    const { queue } = await makeQueue(ctx.redis, 'dualwrite', { retention: { failed: 3600 } });
    const later = (await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 })).jobId;
    const kept = (await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2 })).jobId;
    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId: later, status: 'failed' });
    await queue.updateStatus({ workspaceId: 'acme', jobId: kept, status: 'failed' });
    // The set says both are due; the records say otherwise (one expires later, one was made to stay).
    await ctx.redis.zadd(EXPIRIES, 1, `acme:${later}`, 1, `acme:${kept}`);
    await ctx.redis.persist(legacyKey(kept));
    const before = await redisState(ctx.redis);

    expect(await queue.maintain()).toEqual({ removed: 0, rescheduled: 1, kept: 1 });

    expect(await redisState(ctx.redis)).toEqual({ ...before, [EXPIRIES]: zset([`acme:${later}`, expiresAt!]) });
  });
});
