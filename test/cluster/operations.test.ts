/**
 * Every operation of the queue, in every stage, on a real Redis Cluster with the preset layout: it
 * must leave exactly the state the same calls leave on one Redis with the default layout (keys
 * renamed, timestamps aside), all of it in the queue's one slot, on one master.
 */
import type Redis from 'ioredis';
import { Registry } from 'prom-client';
import { clusterLayout, DualWriteQueue, keySlot, STAGES, type Job, type Stage } from '../../src';
import { clusterState, describeCluster, keysPerMaster, masterOfSlot, useCluster } from '../support/cluster';
import { useRedis } from '../support/redis';
import { redisState, type KeyState } from '../support/state';
import type { RedisClient } from '../../src';

const TAG = 'orders';
const PREFIX = `{${TAG}}:`;

/** The calls every stage runs: each operation once at least, in an order that exercises each path. */
async function everyOperation(queue: DualWriteQueue, putAtHead: (entry: string) => Promise<unknown>): Promise<unknown[]> {
  const results: unknown[] = [];
  const note = (value: unknown) => results.push(value);
  const email = { workspaceId: 'acme', type: 'email.send', payload: { to: 'a@acme.test' }, jobId: 'a1', idempotencyKey: 'signup-1' };
  note(await queue.enqueue(email));
  note(await queue.enqueue(email)); // the idempotent replay
  note(
    await queue.enqueueMany([
      { workspaceId: 'globex', type: 'report.build', payload: { month: 3 }, jobId: 'b1' },
      { workspaceId: 'acme', type: 'email.send', payload: { to: 'c@acme.test' }, jobId: 'c1' },
    ]),
  );
  note(summary(await queue.getJob({ workspaceId: 'acme', jobId: 'a1' })));
  note((await queue.listJobs({ workspaceId: 'acme' })).jobs.map(summary));
  note(summary(await queue.claim({ workerId: 'w1' })));
  note(await queue.updateStatus({ workspaceId: 'acme', jobId: 'a1', status: 'succeeded', workerId: 'w1' }));
  note(summary(await queue.claim({ workerId: 'w2', visibilityTimeoutMs: 1 })));
  await new Promise((resolve) => setTimeout(resolve, 20)); // let w2's claim outlive its 1 ms
  note(await queue.recoverStalled());
  note(await queue.updateStatus({ workspaceId: 'acme', jobId: 'c1', status: 'cancelled', expectedStatus: 'queued' }));
  // An entry whose job was never written (a legacy writer's leftover) goes to the orphans list, c1
  // is cancelled so its entry is dropped, and w3 gets b1 back: it stays claimed.
  await putAtHead('ghost');
  note(summary(await queue.claim({ workerId: 'w3', visibilityTimeoutMs: 600_000 })));
  note(await queue.enqueue({ workspaceId: 'globex', type: 'report.build', payload: { month: 4 }, jobId: 'd1' }));
  return results;
}

function summary(job: Job | null): unknown {
  return job && { id: job.id, workspaceId: job.workspaceId, status: job.status, source: job.source, payload: job.payload };
}

/** The state with the preset's tag taken off each key, and every clock reading replaced by a mark. */
function comparable(state: Record<string, KeyState>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(state)) {
    const name = key.startsWith(prefix) ? key.slice(prefix.length) : `UNEXPECTED ${key}`;
    let value: unknown = entry.value;
    if (entry.type === 'hash') {
      value = Object.fromEntries(
        Object.entries(entry.value).map(([field, text]) => [
          field,
          field === 'created_at' || field === 'updated_at' ? '<ms>' : text.replace(/^\d{13}:/, '<ms>:'),
        ]),
      );
    }
    if (entry.type === 'zset') value = entry.value.map(([member]) => member); // scores are times: keep the order
    if (entry.type === 'string') value = entry.value;
    out[name] = { type: entry.type, value, ...(entry.expiresAt !== undefined ? { expires: true } : {}) };
  }
  return out;
}

describeCluster('every operation on a Redis Cluster, with clusterLayout', () => {
  const ctx = useCluster();
  const single = useRedis();

  const queueOn = (redis: RedisClient, stage: Stage, keys?: ReturnType<typeof clusterLayout>) =>
    new DualWriteQueue({ heartbeat: false, redis, queueName: TAG, stage, metrics: { registry: new Registry() }, ...(keys ? { keys } : {}) });

  it.each(STAGES)('in %s leaves the state one Redis with the default layout is left in, all on one master', async (stage) => {
    const onCluster = queueOn(ctx.cluster, stage, clusterLayout(TAG));
    const onOne = queueOn(single.redis, stage);
    await onCluster.ready();
    await onOne.ready();

    const clusterResults = await everyOperation(onCluster, (entry) => ctx.cluster.lpush(`${PREFIX}queue:${TAG}`, entry));
    const singleResults = await everyOperation(onOne, (entry) => single.redis.lpush(`queue:${TAG}`, entry));

    expect(clusterResults).toEqual(singleResults);
    expect(clusterResults[1]).toEqual({ jobId: 'a1', created: false });
    expect(clusterResults[8]).toEqual({ recovered: 1, orphaned: 0, unsupported: 0 });
    expect(clusterResults[10]).toMatchObject({ id: 'b1', status: 'running' });
    const state = await clusterState(ctx.cluster);
    expect(comparable(state, PREFIX)).toEqual(comparable(await redisState(single.redis as Redis)));
    const writesLegacy = stage !== 'complete';
    const writesNew = stage !== 'off';
    expect(state[`${PREFIX}queue:${TAG}:orphans`]).toEqual({ type: 'list', value: ['ghost'] });
    expect(state[`${PREFIX}queue:${TAG}`]).toEqual({ type: 'list', value: [stage === 'complete' ? 'globex:d1' : 'd1'] });
    for (const [workspaceId, jobId] of [['acme', 'a1'], ['globex', 'b1'], ['acme', 'c1'], ['globex', 'd1']]) {
      expect(state[`${PREFIX}job:${jobId}`] !== undefined).toBe(writesLegacy);
      expect(state[`${PREFIX}ws:${workspaceId}:job:${jobId}`] !== undefined).toBe(writesNew);
    }
    // One slot, so one master holds every key; the others hold none.
    const owner = await masterOfSlot(ctx.cluster, keySlot(TAG));
    const perMaster = await keysPerMaster(ctx.cluster);
    expect(Object.entries(perMaster).filter(([, count]) => count > 0)).toEqual([[owner, Object.keys(state).length]]);
  });
});
