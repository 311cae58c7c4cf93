/**
 * A fleet in managed mode: several instances on their own connections under mixed load (producers,
 * batch producers, workers, readers) while an operator steps the stage record from off to complete
 * and back, one step and several at once, each forward step behind its guard. At every stage verify
 * runs under the load and may report only what the runbook documents; every script reply names the
 * epoch it ran under, and no script issued after a transition's reply ran under an older epoch.
 */
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { DualWriteQueue, Migration, type Stage, type VerifyReport } from '../../src';
import { useRedis } from '../support/redis';

const ctx = useRedis();

interface ScriptCall {
  issuedAt: number;
  epoch: string;
}

/** A client whose EVALSHA/EVAL replies are recorded: when each was issued and the epoch it names. */
function recordingClient(url: string, calls: ScriptCall[]): Redis {
  const redis = new Redis(url);
  for (const method of ['evalsha', 'eval'] as const) {
    const original = redis[method].bind(redis) as (...args: unknown[]) => Promise<unknown>;
    (redis as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const issuedAt = performance.now();
      const reply = await original(...args);
      // Managed stage-aware scripts append the epoch and the stage's name; the heartbeat answers {'BEAT', ...}.
      if (Array.isArray(reply) && reply[0] !== 'BEAT') calls.push({ issuedAt, epoch: String(reply[reply.length - 2]) });
      return reply;
    };
  }
  return redis;
}

describe('a managed fleet through every stage and back, under load', () => {
  it('verify finds only what the runbook documents, and every call after a transition runs under it', async () => {
    const calls: ScriptCall[] = [];
    const registry = new Registry();
    const clients = Array.from({ length: 3 }, () => recordingClient(ctx.handle.url, calls));
    const fleet = clients.map((redis, i) => new DualWriteQueue({ redis, stage: 'managed', metrics: { registry }, heartbeat: false, instanceId: `i${i}` }));
    const operator = new Migration({ redis: ctx.redis, stage: 'managed', metrics: false });
    await operator.initStage('off', { reason: 'fleet test' });
    await fleet[0].ready();

    const stop = new AbortController();
    const counts = { operations: 0, errors: [] as string[] };
    const ids: { workspaceId: string; jobId: string }[] = [];
    const count = async <T>(call: Promise<T>): Promise<T | undefined> => {
      try {
        const result = await call;
        counts.operations++;
        return result;
      } catch (error) {
        counts.errors.push(String(error));
        return undefined;
      }
    };
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const producer = async (queue: DualWriteQueue, n: number) => {
      for (let i = 0; !stop.signal.aborted; i++) {
        const workspaceId = `ws${i % 3}`;
        if (i % 4 === 0) {
          const made = await count(queue.enqueueMany([0, 1, 2].map((k) => ({ workspaceId, type: 't', payload: { n, i, k } }))));
          made?.forEach(({ jobId }) => ids.push({ workspaceId, jobId }));
        } else {
          const made = await count(queue.enqueue({ workspaceId, type: 't', payload: { n, i }, idempotencyKey: `p${n}-${i}` }));
          if (made) ids.push({ workspaceId, jobId: made.jobId });
        }
        await pause(4);
      }
    };
    const worker = async (queue: DualWriteQueue, workerId: string) => {
      while (!stop.signal.aborted) {
        const job = await count(queue.claim({ workerId, visibilityTimeoutMs: 60_000 }));
        if (!job) {
          await pause(5);
          continue;
        }
        await count(queue.updateStatus({ workspaceId: job.workspaceId, jobId: job.id, status: 'succeeded', workerId }));
      }
    };
    const reader = async (queue: DualWriteQueue) => {
      for (let i = 0; !stop.signal.aborted; i++) {
        const target = ids[Math.floor(Math.random() * ids.length)];
        if (target) await count(queue.getJob(target));
        await count(queue.listJobs({ workspaceId: `ws${i % 3}`, limit: 7 }));
        await pause(3);
      }
    };
    const load = Promise.all([producer(fleet[0], 0), producer(fleet[1], 1), worker(fleet[1], 'w1'), worker(fleet[2], 'w2'), reader(fleet[0]), reader(fleet[2])]);

    const transitions: { to: Stage; epoch: number; at: number }[] = [];
    const verifies: Record<string, Record<string, number>> = {};
    const move = async (to: Stage) => {
      const result = await operator.setStage(to, { reason: `fleet test: ${to}` });
      transitions.push({ to, epoch: result.epoch, at: performance.now() });
      await pause(60);
    };
    const nonZero = (report: VerifyReport) => Object.fromEntries(Object.entries(report.divergences).filter(([, n]) => n > 0));
    try {
      await pause(150);
      await move('dualwrite');
      await operator.backfill();
      verifies.dualwrite = nonZero(await operator.verify());
      await move('shadow');
      verifies.shadow = nonZero(await operator.verify());
      await move('live');
      verifies.live = nonZero(await operator.verify());
      await move('rampdown');
      verifies.rampdown = nonZero(await operator.verify());
      await move('complete');
      await pause(150);
      verifies.complete = nonZero(await operator.verify());
      await move('rampdown'); // one step back
      verifies.rampdownAgain = nonZero(await operator.verify());
      await move('dualwrite'); // several at once
      verifies.dualwriteAgain = nonZero(await operator.verify());
    } finally {
      stop.abort();
      await load;
      clients.forEach((client) => client.disconnect());
    }
    await operator.backfill({ mode: 'resync' });
    verifies.afterResync = nonZero(await operator.verify());

    // Going forward, nothing: the fleet's stages never disagree, so no field_mismatch, no resync.
    expect(verifies.dualwrite).toEqual({});
    expect(verifies.shadow).toEqual({});
    expect(verifies.live).toEqual({});
    expect(verifies.rampdown).toEqual({});
    expect(verifies.complete).toEqual({});
    // After the rollback, only what complete documents: jobs made there have no legacy record and
    // jobs updated there an older one, until an update restores them; a resync levels the latter.
    for (const back of [verifies.rampdownAgain, verifies.dualwriteAgain]) {
      expect(Object.keys(back).filter((kind) => kind !== 'missing_legacy' && kind !== 'field_mismatch')).toEqual([]);
    }
    expect(verifies.afterResync).toEqual(verifies.afterResync.missing_legacy ? { missing_legacy: verifies.afterResync.missing_legacy } : {});
    expect(counts.errors).toEqual([]);
    expect(calls.every((call) => /^\d+$/.test(call.epoch))).toBe(true);
    for (const transition of transitions) {
      const stale = calls.filter((call) => call.issuedAt > transition.at && Number(call.epoch) < transition.epoch);
      expect({ to: transition.to, staleCalls: stale.length }).toEqual({ to: transition.to, staleCalls: 0 });
    }
    const restarts = (await registry.getSingleMetric('dualwrite_stage_restarts_total')!.get()).values.reduce((sum, v) => sum + v.value, 0);
    console.log(
      `managed fleet: ${JSON.stringify({
        instances: fleet.length,
        operations: counts.operations,
        scriptCalls: calls.length,
        transitions: transitions.length,
        restartsAfterEpochChanged: restarts,
        missingLegacyAfterRollback: verifies.rampdownAgain.missing_legacy ?? 0,
      })}`,
    );
  }, 60_000);
});
