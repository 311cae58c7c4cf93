/**
 * A manual failover (CLUSTER FAILOVER on a replica) of the master serving a queue's slot, in the
 * middle of a mixed load of producers, workers and readers: no call fails, no acknowledged job is
 * lost, and the promoted replica, which held no scripts, gets them through NOSCRIPT recovery.
 */
import { Registry } from 'prom-client';
import { clusterLayout, DualWriteQueue, keySlot, Migration } from '../../src';
import { clusterState, describeCluster, masterOfSlot, nodeName, useCluster } from '../support/cluster';
import { metricValue } from '../support/redis';

const TAG = 'orders';
const WORKSPACES = Array.from({ length: 20 }, (_, i) => `ws-${i}`);

describeCluster('a manual failover under a mixed load', () => {
  const ctx = useCluster();

  it('reaches no caller as an error and loses no job', async () => {
    const registry = new Registry();
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: TAG, stage: 'live', keys: clusterLayout(TAG), metrics: { registry } });
    await queue.ready();
    // The replica about to take over forgets its scripts, as one added after the deploy would hold none.
    const slot = keySlot(TAG);
    const master = await masterOfSlot(ctx.cluster, slot);
    const [replica] = ctx.cluster.nodes('slave').filter((node) => replicaOf(node.options.port) === master);
    await replica.script('FLUSH');

    const acknowledged = new Map<string, string>(); // jobId -> workspaceId, once enqueue answered
    const finished = new Set<string>();
    const errors: unknown[] = [];
    let operations = 0;
    let running = true;
    const call = async <T>(work: () => Promise<T>): Promise<T | undefined> => {
      try {
        const result = await work();
        operations += 1;
        return result;
      } catch (error) {
        errors.push(error);
        return undefined;
      }
    };

    let next = 0;
    const producer = async () => {
      while (running) {
        const workspaceId = WORKSPACES[next % WORKSPACES.length];
        if (next % 5 === 4) {
          const batch = Array.from({ length: 5 }, (_, i) => ({ workspaceId, type: 't', payload: { n: next }, jobId: `m${next}-${i}` }));
          next += 1;
          const results = await call(() => queue.enqueueMany(batch));
          results?.forEach((result) => acknowledged.set(result.jobId, workspaceId));
        } else {
          const jobId = `j${next++}`;
          const result = await call(() => queue.enqueue({ workspaceId, type: 't', payload: { jobId }, jobId, idempotencyKey: `key-${jobId}` }));
          if (result) acknowledged.set(result.jobId, workspaceId);
        }
      }
    };
    const worker = async (workerId: string) => {
      while (running) {
        const job = await call(() => queue.claim({ workerId }));
        if (!job) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          continue;
        }
        const done = await call(() => queue.updateStatus({ workspaceId: job.workspaceId, jobId: job.id, status: 'succeeded', workerId }));
        if (done) finished.add(job.id);
      }
    };
    const reader = async () => {
      for (let n = 0; running; n++) {
        const jobIds = [...acknowledged.keys()];
        if (jobIds.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          continue;
        }
        const jobId = jobIds[n % jobIds.length];
        await call(() => queue.getJob({ workspaceId: acknowledged.get(jobId)!, jobId }));
        await call(() => queue.listJobs({ workspaceId: WORKSPACES[n % WORKSPACES.length], limit: 10 }));
      }
    };
    const recoverer = async () => {
      while (running) {
        await call(() => queue.recoverStalled());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const load = [producer(), producer(), producer(), worker('w1'), worker('w2'), worker('w3'), reader(), reader(), recoverer()];

    await until(() => operations >= 300);
    const before = operations;
    const failover = await ctx.handle.failover({ slot });
    const during = operations - before;
    const after = operations;
    await until(() => operations >= after + 300);
    running = false;
    await Promise.all(load);

    // Every acknowledged job is still there, in both layouts, and its queue or claim is consistent.
    const missing: string[] = [];
    const entries = [...acknowledged];
    for (let start = 0; start < entries.length; start += 200) {
      await Promise.all(
        entries.slice(start, start + 200).map(async ([jobId, workspaceId]) => {
          const job = await queue.getJob({ workspaceId, jobId });
          if (!job || job.source !== 'new' || (finished.has(jobId) && job.status !== 'succeeded')) missing.push(jobId);
        }),
      );
    }
    const verify = await new Migration({ redis: ctx.cluster, queueName: TAG, stage: 'live', keys: clusterLayout(TAG), metrics: false }).verify();
    const reloads = await metricValue(registry, 'dualwrite_script_reloads_total', { script: 'enqueue_dual.v3' });
    const figures = {
      operations,
      operationsDuringFailover: during,
      errors: errors.length,
      jobsAcknowledged: acknowledged.size,
      jobsFinished: finished.size,
      jobsLost: missing.length,
      failoverMs: failover.durationMs,
      scriptReloadsOnNewMaster: reloads,
    };
    console.log(`failover under load: ${JSON.stringify(figures)}`);

    expect(errors).toEqual([]);
    expect(missing).toEqual([]);
    expect(failover.to.port).toBe(replica.options.port);
    expect(await masterOfSlot(ctx.cluster, slot)).toBe(nodeName(replica));
    expect(verify).toMatchObject({ completed: true, clean: true });
    expect(verify.checked.newJobs).toBe(acknowledged.size);
    expect(reloads).toBeGreaterThanOrEqual(1);
    const state = await clusterState(ctx.cluster);
    expect(Object.keys(state).filter((key) => key.startsWith(`{${TAG}}:ws:`) && /:job:/.test(key))).toHaveLength(acknowledged.size);
    expect(Object.keys(state).filter((key) => key.startsWith(`{${TAG}}:job:`))).toHaveLength(acknowledged.size);
  });

  /** The master (host:port) a replica follows, from the cluster's own view. */
  function replicaOf(port: number | undefined): string {
    return replicaMasters.get(port ?? 0) ?? '';
  }
  const replicaMasters = new Map<number, string>();
  beforeEach(async () => {
    replicaMasters.clear();
    for (const node of ctx.cluster.nodes('slave')) {
      const info = String(await node.info('replication'));
      const host = /master_host:(\S+)/.exec(info)?.[1];
      const port = /master_port:(\d+)/.exec(info)?.[1];
      replicaMasters.set(node.options.port ?? 0, `${host}:${port}`);
    }
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}
