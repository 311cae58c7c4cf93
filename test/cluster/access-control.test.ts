/**
 * ACL users on a real Redis Cluster, created on every node (each node keeps its own users): the
 * service's rules (serviceAclRules) let an ioredis Cluster client with its default options start
 * and run every operation, and a rule missing for the client's own start is reported as a
 * PermissionError naming the command, not as Redis being away. Both rule lists are what the code
 * sends on a cluster, captured with MONITOR on every node, and every migration tool runs as a user
 * with exactly migrationAclRules.
 */
import { Cluster } from 'ioredis';
import {
  clientCommandsFor,
  clusterLayout,
  DualWriteQueue,
  MIGRATION_COMMANDS,
  migrationAclRules as migrationRulesFor,
  PermissionError,
  SERVICE_COMMANDS,
  serviceAclRules as serviceRulesFor,
  STAGES,
} from '../../src';
import { serverVersion } from '../support/redis';
import { aclNames, captureCommands, refusedTo, type SentCommand } from '../support/capture';
import { clusterState, describeCluster, nodeName, useCluster } from '../support/cluster';
import { everyServiceCall } from '../support/service-tour';
import { cli } from '../support/cli';
import { TOUR_EXIT_CODES, toolsTour, type ToolsTarget, type ToolsUser } from '../support/tools-tour';

const TAG = 'orders';
const PREFIX = `{${TAG}}:`;

describeCluster('access control on a cluster', () => {
  const ctx = useCluster();
  const clients: Cluster[] = [];
  let version = '';
  beforeAll(async () => {
    version = await serverVersion(ctx.cluster);
  });
  /** The documented rules, for this server's version (CLIENT SETINFO from 7.2 on). */
  const serviceAclRules = (keyPrefix: string) => serviceRulesFor(keyPrefix, { serverVersion: version });
  const migrationAclRules = (keyPrefix: string) => migrationRulesFor(keyPrefix, { serverVersion: version });

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
    const client = new Cluster([...ctx.handle.nodes], { ...options, redisOptions: { username: name, password: `${name}-secret`, disconnectTimeout: 50 } });
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
    await Promise.all(ctx.cluster.nodes('all').map((node) => node.call('ACL', 'DELUSER', 'service', TOOLS.name)));
  });

  const TOOLS: ToolsUser = { name: 'tools', password: 'tools-secret' };
  /** The tools' rules on this cluster: every key of the queue, the checkpoint and the stage record included, is behind its tag. */
  const toolsRules = () => migrationAclRules(PREFIX);
  const servers = () => ctx.handle.nodes.map(({ host, port }) => ({ host, port }));
  const nodeNamed = (server: string) => ctx.cluster.nodes('all').find((node) => nodeName(node) === server)!;

  function onCluster(): ToolsTarget {
    return {
      admin: ctx.cluster,
      keys: clusterLayout(TAG),
      cliTarget: (user) => {
        const credentials = user ? `${user.name}:${user.password}@` : '';
        const seeds = ctx.handle.nodes.map(({ host, port }) => `redis://${credentials}${host}:${port}`).join(',');
        return ['--cluster', seeds];
      },
      layoutArgs: ['--tag', TAG],
      clientAs: (user) => {
        const client = new Cluster([...ctx.handle.nodes], { redisOptions: { ...(user ? { username: user.name, password: user.password } : {}), disconnectTimeout: 50 } });
        client.on('error', () => {});
        return client;
      },
      flushScripts: async () => void (await Promise.all(ctx.cluster.nodes('all').map((node) => node.script('FLUSH')))),
    };
  }

  it('serviceAclRules grant every command a service on a cluster sends, on the keys it names, and nothing it never sends', async () => {
    await aclUser('service', serviceAclRules(PREFIX));
    const target = onCluster();
    let calls = 0;
    // What the code sends, as a user that may do anything; a new client, so its own start is in it too.
    const sent: SentCommand[] = await captureCommands(
      servers(),
      async () => {
        const client = target.clientAs() as Cluster;
        clients.push(client);
        const queue = new DualWriteQueue({ redis: client, queueName: TAG, stage: 'managed', keys: clusterLayout(TAG), metrics: false, heartbeat: { intervalMs: 1000 } });
        calls = await everyServiceCall(queue, ctx.cluster, target.flushScripts);
      },
      { ignoreClients: ctx.cluster.nodes('all') },
    );

    const names = await aclNames(ctx.cluster.nodes('master')[0], sent);
    // ready() tries SCRIPT LOAD first; a service user is refused it by design, and then checks the preload.
    expect([...names].filter((name) => ![...SERVICE_COMMANDS, ...clientCommandsFor(version)].includes(name))).toEqual(['script|load']);
    expect(SERVICE_COMMANDS.filter((name) => !names.has(name))).toEqual(['script|exists']);
    const checked = sent.filter(({ args }) => !(args[0].toLowerCase() === 'script' && args[1].toLowerCase() === 'load'));
    expect(await refusedTo('service', checked, nodeNamed)).toEqual([]);
    expect(calls).toBeGreaterThan(60);
  });

  it('migrationAclRules grant every command every tool sends on a cluster, on the keys it names, and nothing the tools never send', async () => {
    await aclUser(TOOLS.name, toolsRules());
    const sent: SentCommand[] = [];
    const steps = await toolsTour(onCluster(), undefined, async (_step, run) => {
      let code = -1;
      sent.push(...(await captureCommands(servers(), async () => void (code = await run()))));
      return code;
    });

    expect(steps).toEqual(TOUR_EXIT_CODES);
    const names = await aclNames(ctx.cluster.nodes('master')[0], sent);
    expect([...names].filter((name) => ![...MIGRATION_COMMANDS, ...clientCommandsFor(version)].includes(name))).toEqual([]);
    expect(MIGRATION_COMMANDS.filter((name) => !names.has(name))).toEqual([]);
    expect(await refusedTo(TOOLS.name, sent, nodeNamed)).toEqual([]);
  });

  it("every tool runs as a user with exactly migrationAclRules('{orders}:') on every node: same exit codes, nothing refused", async () => {
    await aclUser(TOOLS.name, toolsRules());

    const steps = await toolsTour(onCluster(), TOOLS);

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await refusals()).toEqual([]);
    const state = await clusterState(ctx.cluster);
    expect(Object.keys(state).filter((key) => !key.startsWith(PREFIX))).toEqual([]);
    // cleanup --yes left only the legacy records a bare queue entry still names (two waiting, two claimed)
    expect(Object.keys(state).filter((key) => key.startsWith(`${PREFIX}job:`)).sort()).toEqual(
      ['live0', 'live1', 'live2', 'live3'].map((id) => `${PREFIX}job:${id}`),
    );
    expect(Object.keys(state).filter((key) => key.startsWith(`${PREFIX}ws:`) && key.includes(':job:'))).toHaveLength(44);
    // The managed steps went through the stage record in the queue's slot: to complete, with the cleanup counted.
    expect(state[`${PREFIX}dualwrite:stage`].value).toMatchObject({ stage: 'complete', epoch: '5', forced: '0', cleanup_deleted: '40' });
    expect((state[`${PREFIX}dualwrite:stage:history`].value as string[]).map((entry) => JSON.parse(entry).to)).toEqual(
      ['complete', 'rampdown', 'live', 'shadow', 'dualwrite'],
    );
  });

  it("every tool runs with --prefix and --tag together as exactly migrationAclRules('app:{orders}:') on every node: every key under that prefix once, nothing refused", async () => {
    await aclUser(TOOLS.name, migrationAclRules(`app:${PREFIX}`));

    const steps = await toolsTour({ ...onCluster(), keyPrefix: 'app:' }, TOOLS);

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await refusals()).toEqual([]);
    const keys = Object.keys(await clusterState(ctx.cluster));
    expect(keys.filter((key) => !key.startsWith(`app:${PREFIX}`) || key.slice(`app:${PREFIX}`.length).includes(PREFIX))).toEqual([]);
    expect(keys.filter((key) => key.startsWith(`app:${PREFIX}job:`))).toHaveLength(4);
    expect(keys.filter((key) => key.startsWith(`app:${PREFIX}ws:`) && key.includes(':job:'))).toHaveLength(44);
    expect(keys.filter((key) => key.startsWith(`app:${PREFIX}dualwrite:`)).sort()).toEqual(
      ['instances', 'instances:info', 'stage', 'stage:history'].map((name) => `app:${PREFIX}dualwrite:${name}`),
    );
  });

  it("serviceAclRules('{orders}:') lets a Cluster client with ioredis' defaults start and run every operation, nothing refused", async () => {
    // The deploy user (here the default one) loads the scripts on every node; the service user may not.
    await new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false }).ready();
    await aclUser('service', serviceAclRules(PREFIX));
    const queue = new DualWriteQueue({ heartbeat: false, redis: clientAs('service'), queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false });

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
    const reader = new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: TAG, stage: 'rampdown', keys: clusterLayout(TAG), metrics: false });
    const statuses = await Promise.all(written.map(async ({ workspaceId, jobId }) => [jobId, (await reader.getJob({ workspaceId, jobId }))?.status]));
    expect(Object.fromEntries(statuses)).toEqual(
      Object.fromEntries(written.map(({ jobId }) => [jobId, finished.includes(jobId) ? 'succeeded' : 'queued'])),
    );
    expect(finished).toHaveLength(STAGES.length);
  });

  // A client refused its ready check only retries, in silence: the command would wait out a connect
  // timeout this long (past the test's own limit) and then blame a silent Redis.
  it.each([
    ['cluster|info', 'CLUSTER INFO'],
    ['cluster|slots', 'CLUSTER SLOTS'],
  ])('the command as a user without %s exits 3 at once, naming %s and the rule to grant; nothing written', async (rule, command) => {
    await aclUser(TOOLS.name, [...toolsRules(), `-${rule}`]);
    const seeds = ctx.handle.nodes.map(({ host, port }) => `redis://${TOOLS.name}:${TOOLS.name}-secret@${host}:${port}`).join(',');
    const target = ['--cluster', seeds, '--tag', TAG, '--connect-timeout', '120000'];

    const status = await cli(['status', ...target]);
    const init = await cli(['stage', 'init', 'off', '--reason', 'x', '--json', ...target]);

    expect(status.code).toBe(3);
    expect(status.stderr).toContain(`refused a command the cluster client needs to connect: the Redis user may not run ${command}`);
    expect(status.stderr).toContain(`grant +${rule}`);
    expect(init.code).toBe(3);
    expect(JSON.parse(init.stdout)).toEqual({ error: { code: 'NO_PERMISSION', message: expect.stringContaining(`may not run ${command}`) } });
    expect(status.stderr + init.stdout + init.stderr).not.toContain(`${TOOLS.name}-secret`);
    expect(await clusterState(ctx.cluster)).toEqual({});
  }, 20_000);

  it.each([
    ['cluster|info', 'CLUSTER INFO', 'connecting'],
    ['cluster|slots', 'CLUSTER SLOTS', 'connecting'],
    ['cluster|info', 'CLUSTER INFO', 'lazy'],
    ['cluster|slots', 'CLUSTER SLOTS', 'lazy'],
  ])('without %s, ready() fails with a PermissionError naming %s, not as Redis being away (%s client)', async (rule, command, how) => {
    await new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: TAG, stage: 'off', keys: clusterLayout(TAG), metrics: false }).ready();
    await aclUser('service', [...serviceAclRules(PREFIX), `-${rule}`]);
    const client = clientAs('service', { lazyConnect: how === 'lazy' });
    const queue = new DualWriteQueue({ heartbeat: false, redis: client, queueName: TAG, stage: 'dualwrite', keys: clusterLayout(TAG), metrics: false });

    const error = await queue.ready().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ code: 'NO_PERMISSION', command });
    expect((error as Error).message).toContain(`+${rule}`);
    expect(await clusterState(ctx.cluster)).toEqual({});
  });
});
