/**
 * ACL users on a real Redis Cluster, created on every node (each node keeps its own users): the
 * service's rules (serviceAclRules) let an ioredis Cluster client with its default options start
 * and run every operation, and a rule missing for the client's own start is reported as a
 * PermissionError naming the command, not as Redis being away.
 */
import { Cluster } from 'ioredis';
import { clusterLayout, DualWriteQueue, PermissionError, serviceAclRules, STAGES } from '../../src';
import { clusterState, describeCluster, useCluster } from '../support/cluster';

const TAG = 'orders';
const PREFIX = `{${TAG}}:`;

describeCluster('access control on a cluster', () => {
  const ctx = useCluster();
  const clients: Cluster[] = [];

  /** The user on every node, masters and replicas, and the ACL logs emptied so a test reads only its own refusals. */
  async function aclUser(name: string, rules: readonly string[]): Promise<void> {
    await Promise.all(
      ctx.cluster.nodes('all').map(async (node) => {
        await node.call('ACL', 'SETUSER', name, 'reset', 'on', `>${name}-secret`, ...rules);
        await node.call('ACL', 'LOG', 'RESET');
      }),
    );
  }

  /** An ioredis Cluster client with its default options, but for the user's credentials. */
  function clientAs(name: string, options: { lazyConnect?: boolean } = {}): Cluster {
    const client = new Cluster([...ctx.handle.nodes], { ...options, redisOptions: { username: name, password: `${name}-secret` } });
    client.on('error', () => {});
    clients.push(client);
    return client;
  }

  /** Every refusal any node logged: which user, and what it was refused. */
  async function refusals(): Promise<string[]> {
    const logs = await Promise.all(ctx.cluster.nodes('all').map((node) => node.call('ACL', 'LOG') as Promise<unknown[][]>));
    return logs.flat().map((entry) => {
      const fields = Object.fromEntries(Array.from({ length: entry.length / 2 }, (_, i) => [entry[2 * i], entry[2 * i + 1]]));
      return `${fields.username} ${fields.reason} ${fields.object}`;
    });
  }

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(ctx.cluster.nodes('all').map((node) => node.call('ACL', 'DELUSER', 'service')));
  });

  it("serviceAclRules('{orders}:') lets a Cluster client with ioredis' defaults start and run every operation, nothing refused", async () => {
    // The deploy user (here the default one) loads the scripts on every node; the service user may not.
    await new DualWriteQueue({ redis: ctx.cluster, queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false }).ready();
    await aclUser('service', serviceAclRules(PREFIX));
    const queue = new DualWriteQueue({ redis: clientAs('service'), queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false });

    await queue.ready();
    const written: { workspaceId: string; jobId: string; stage: string }[] = [];
    const finished: string[] = [];
    for (const stage of STAGES) {
      queue.setStage(stage);
      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { stage }, jobId: `a-${stage}`, idempotencyKey: `request-${stage}` });
      await queue.enqueueMany([{ workspaceId: 'globex', type: 't', payload: 'batch', jobId: `g-${stage}` }]);
      written.push({ workspaceId: 'acme', jobId, stage }, { workspaceId: 'globex', jobId: `g-${stage}`, stage });
      expect((await queue.getJob({ workspaceId: 'acme', jobId }))?.id).toBe(jobId);
      expect((await queue.listJobs({ workspaceId: 'acme' })).jobs.map((job) => job.id)).toContain(jobId);
      const claimed = await queue.claim({ workerId: 'w1' });
      await queue.updateStatus({ workspaceId: claimed!.workspaceId, jobId: claimed!.id, status: 'succeeded', workerId: 'w1' });
      finished.push(claimed!.id);
      await queue.recoverStalled();
    }

    // The one refusal by design: ready() tries SCRIPT LOAD, and on NOPERM checks the deploy user's preload.
    expect(await refusals()).toEqual(['service command script|load']);
    const state = await clusterState(ctx.cluster);
    expect(Object.keys(state).filter((key) => !key.startsWith(PREFIX))).toEqual([]);
    // Every job is there (read as rampdown reads: the new layout, else the legacy one), each claimed one finished.
    const reader = new DualWriteQueue({ redis: ctx.cluster, queueName: TAG, stage: 'rampdown', keys: clusterLayout(TAG), metrics: false });
    const statuses = await Promise.all(written.map(async ({ workspaceId, jobId }) => [jobId, (await reader.getJob({ workspaceId, jobId }))?.status]));
    expect(Object.fromEntries(statuses)).toEqual(
      Object.fromEntries(written.map(({ jobId }) => [jobId, finished.includes(jobId) ? 'succeeded' : 'queued'])),
    );
    expect(finished).toHaveLength(STAGES.length);
  });

  it.each([
    ['cluster|info', 'CLUSTER INFO', 'connecting'],
    ['cluster|slots', 'CLUSTER SLOTS', 'connecting'],
    ['cluster|info', 'CLUSTER INFO', 'lazy'],
    ['cluster|slots', 'CLUSTER SLOTS', 'lazy'],
  ])('without %s, ready() fails with a PermissionError naming %s, not as Redis being away (%s client)', async (rule, command, how) => {
    await new DualWriteQueue({ redis: ctx.cluster, queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false }).ready();
    await aclUser('service', [...serviceAclRules(PREFIX), `-${rule}`]);
    const client = clientAs('service', { lazyConnect: how === 'lazy' });
    const queue = new DualWriteQueue({ redis: client, queueName: TAG, stage: 'dualwrite', keys: clusterLayout(TAG), metrics: false });

    const error = await queue.ready().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ code: 'NO_PERMISSION', command });
    expect((error as Error).message).toContain(`+${rule}`);
    expect(await clusterState(ctx.cluster)).toEqual({});
  });
});
