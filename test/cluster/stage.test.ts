/**
 * The stage record on a Redis Cluster: it lies behind the layout's hash tag, in the same slot as
 * every key the scripts touch, and a manual failover of its master keeps it, with its history.
 */
import { clusterLayout, DualWriteQueue, keySlot, Migration } from '../../src';
import { clusterState, describeCluster, masterOfSlot, useCluster } from '../support/cluster';

describeCluster('the stage record on a Redis Cluster', () => {
  const ctx = useCluster();
  const TAG = 'orders';

  it('lies in the layout slot, and survives a manual failover of its master with the fleet still following it', async () => {
    const operator = new Migration({ redis: ctx.cluster, queueName: TAG, stage: 'managed', keys: clusterLayout(TAG), metrics: false });
    await operator.ready();
    const queue = new DualWriteQueue({ redis: ctx.cluster, queueName: TAG, stage: 'managed', keys: clusterLayout(TAG), metrics: false, heartbeat: false });
    const init = await operator.initStage('dualwrite', { reason: 'cluster test', replicaWaitMs: 2000 });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    const before = await clusterState(ctx.cluster);
    const master = await masterOfSlot(ctx.cluster, keySlot(TAG));

    const failover = await ctx.handle.failover({ slot: keySlot(TAG) });
    const rolledBack = await operator.setStage('off', { reason: 'after the failover', replicaWaitMs: 2000 });
    const job = await queue.getJob({ workspaceId: 'acme', jobId });

    expect(keySlot('{orders}:dualwrite:stage')).toBe(keySlot(TAG));
    expect(init).toMatchObject({ epoch: 1, replicated: true });
    expect(before['{orders}:dualwrite:stage'].value).toMatchObject({ stage: 'dualwrite', epoch: '1' });
    expect(`${failover.from.host}:${failover.from.port}`).toBe(master);
    expect(await masterOfSlot(ctx.cluster, keySlot(TAG))).not.toBe(master);
    // The record came through with its epoch: the next transition is 2, and the queue follows it.
    expect(rolledBack).toMatchObject({ from: 'dualwrite', to: 'off', epoch: 2 });
    expect(job).toMatchObject({ id: jobId, source: 'legacy' });
    expect([queue.stage, queue.epoch]).toEqual(['off', '2']);
    const history = await ctx.cluster.lrange('{orders}:dualwrite:stage:history', 0, -1);
    expect(history.map((entry) => JSON.parse(entry).to)).toEqual(['off', 'dualwrite']);
  }, 60_000);
});
