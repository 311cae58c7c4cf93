/**
 * Key layouts on a Redis Cluster: one that would split an operation over slots is refused before
 * anything is sent, at construction or at the call; one that keeps each operation in one slot works,
 * whatever its key names; and the slot math agrees with the server's.
 */
import { Cluster } from 'ioredis';
import { Registry } from 'prom-client';
import {
  clusterLayout,
  CrossSlotError,
  DualWriteQueue,
  keySlot,
  Migration,
  type KeyLayout,
} from '../../src';
import { loadScripts } from '../../src/scripts/manifest';
import { clusterState, describeCluster, masterOfSlot, nodeName, useCluster } from '../support/cluster';
import { metricValue } from '../support/redis';
import { hash, jobFields } from '../support/state';

/** The service's own key names, all behind the hash tag {shop}. */
const SHOP_LAYOUT: KeyLayout = {
  legacyJob: (jobId) => `{shop}legacy/job/${jobId}`,
  newJob: (workspaceId, jobId) => `{shop}tenant/${workspaceId}/job/${jobId}`,
  queue: (queueName) => `{shop}q/${queueName}`,
  idempotency: (workspaceId, key) => `{shop}tenant/${workspaceId}/idem/${key}`,
  workspaceIndex: (workspaceId) => `{shop}tenant/${workspaceId}/index`,
  processing: (queueName) => `{shop}q/${queueName}/processing`,
  claims: (queueName) => `{shop}q/${queueName}/claims`,
  orphans: (queueName) => `{shop}q/${queueName}/orphans`,
  unsupported: (queueName) => `{shop}q/${queueName}/unsupported`,
  expiries: (queueName) => `{shop}q/${queueName}/expiries`,
  checkpoint: (queueName) => `{shop}backfill/${queueName}`,
  stage: () => '{shop}stage',
  stageHistory: () => '{shop}stage/history',
  instances: () => '{shop}instances',
  instanceInfo: () => '{shop}instances/info',
};

describeCluster('key layouts on a Redis Cluster', () => {
  const ctx = useCluster();

  /** EVALSHA and EVAL calls every master has served so far. */
  async function scriptCalls(): Promise<number> {
    let calls = 0;
    for (const node of ctx.cluster.nodes('master')) {
      const stats = String(await node.info('commandstats'));
      for (const command of ['evalsha', 'eval']) calls += Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    }
    return calls;
  }

  it('refuses the default layout at construction, before connecting, naming the preset', () => {
    const untouched = new Cluster([...ctx.handle.nodes], { lazyConnect: true });

    let refusal: unknown;
    try {
      new DualWriteQueue({ heartbeat: false, redis: untouched, stage: 'dualwrite', metrics: false });
    } catch (error) {
      refusal = error;
    }

    expect(refusal).toBeInstanceOf(CrossSlotError);
    expect(refusal).toMatchObject({ code: 'CROSS_SLOT', operation: "the key layout's enqueue" });
    const { keys, message } = refusal as CrossSlotError;
    expect(keys).toHaveLength(2);
    expect(keySlot(keys[0].key)).toBe(keys[0].slot);
    expect(keySlot(keys[1].key)).toBe(keys[1].slot);
    expect(keys[0].slot).not.toBe(keys[1].slot);
    expect(message).toContain("clusterLayout('<tag>')");
    expect(message).toContain('one script may only touch keys of one slot');
    // Nothing was sent: the client never even opened a connection.
    expect(untouched.status).toBe('wait');
    expect(() => new Migration({ redis: untouched, stage: 'dualwrite', metrics: false })).toThrow(CrossSlotError);
    expect(untouched.status).toBe('wait');
    untouched.disconnect();
  });

  it('refuses a layout with one builder outside the tag, naming the operation and the two keys', () => {
    const keys = { ...clusterLayout('shop'), orphans: (queueName: string) => `orphans:${queueName}` };

    expect(() => new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, stage: 'dualwrite', keys, metrics: false })).toThrow(
      expect.objectContaining({
        code: 'CROSS_SLOT',
        operation: "the key layout's updateStatus, requeue, deleteJob and maintain",
        keys: [
          { key: '{shop}:dualwrite:stage', slot: keySlot('shop') },
          { key: 'orphans:default', slot: keySlot('orphans:default') },
        ],
      }),
    );
  });

  it('refuses a call whose keys would span slots before sending it, when the samples did not show it', async () => {
    // Right for every sample id, wrong for ids starting with "vip": only the call can catch it.
    const keys = {
      ...clusterLayout('shop'),
      legacyJob: (jobId: string) => (jobId.startsWith('vip') ? `{vip}:job:${jobId}` : `{shop}:job:${jobId}`),
    };
    const registry = new Registry();
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, stage: 'dualwrite', keys, metrics: { registry } });
    await queue.ready();
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'regular' });
    const before = await clusterState(ctx.cluster);
    const callsBefore = await scriptCalls();

    const refusal = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 2, jobId: 'vip-1' }).catch((error) => error);

    expect(refusal).toBeInstanceOf(CrossSlotError);
    expect(refusal).toMatchObject({ operation: 'enqueue_dual.v3', keys: [{ slot: keySlot('shop') }, { key: '{vip}:job:vip-1', slot: keySlot('vip') }] });
    expect(await scriptCalls()).toBe(callsBefore);
    expect(await clusterState(ctx.cluster)).toEqual(before);
    expect(await metricValue(registry, 'dualwrite_operations_total', { operation: 'enqueue', outcome: 'cross_slot' })).toBe(1);
  });

  it("runs the service's own key names when they share a tag, and the migration reads them back", async () => {
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: 'mail', stage: 'dualwrite', keys: SHOP_LAYOUT, metrics: false });
    await queue.ready();
    // A job from before the dual writes, in the legacy layout only.
    const old = { id: 'old1', workspaceId: 'acme', type: 't', payload: { n: 0 }, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 };
    await ctx.cluster.hset('{shop}legacy/job/old1', jobFields(old));

    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 }, jobId: 'new1', idempotencyKey: 'k-1' });
    const claimed = await queue.claim({ workerId: 'w1' });
    await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded', workerId: 'w1' });
    const migration = new Migration({ redis: ctx.cluster, queueName: 'mail', stage: 'dualwrite', keys: SHOP_LAYOUT, metrics: false });
    const backfill = await migration.backfill();
    const verify = await migration.verify();

    expect(claimed).toMatchObject({ id: 'new1', status: 'running' });
    expect(backfill).toMatchObject({ completed: true, examined: 2, results: { copied: 1, same: 1 } });
    expect(verify).toMatchObject({ completed: true, clean: true, checked: { legacyJobs: 2, newJobs: 2 } });
    const state = await clusterState(ctx.cluster);
    expect(Object.keys(state).sort()).toEqual([
      '{shop}legacy/job/new1',
      '{shop}legacy/job/old1',
      '{shop}tenant/acme/idem/k-1',
      '{shop}tenant/acme/index',
      '{shop}tenant/acme/job/new1',
      '{shop}tenant/acme/job/old1',
    ]);
    expect(state['{shop}tenant/acme/job/old1']).toEqual(hash(jobFields(old)));
    expect(state['{shop}tenant/acme/job/new1']).toEqual(state['{shop}legacy/job/new1']);
    expect(state['{shop}tenant/acme/job/new1']).toMatchObject({ value: { status: 'succeeded' } });
  });

  it('agrees with CLUSTER KEYSLOT on keys with and without hash tags', async () => {
    const alphabet = ['a', 'Z', '9', ':', '{', '}', '{}', '-', 'ü', '€', ' ', '\u{1F600}'];
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const keys = Array.from({ length: 300 }, () =>
      Array.from({ length: 1 + Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
    );

    const answers = await Promise.all(keys.map((key) => ctx.cluster.cluster('KEYSLOT', key)));

    expect(keys.map(keySlot)).toEqual(answers.map(Number));
  });

  it('recovers a NOSCRIPT on the node that lacks the script, there, counted, never reaching the caller', async () => {
    const registry = new Registry();
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: 'mail', stage: 'dualwrite', keys: clusterLayout('mail'), metrics: { registry } });
    await queue.ready();
    // The master serving the queue's slot forgets every script, as after a restart.
    const ownerName = await masterOfSlot(ctx.cluster, keySlot('mail'));
    const node = ctx.cluster.nodes('master').find((n) => nodeName(n) === ownerName)!;
    await node.script('FLUSH');
    const enqueueSha = loadScripts().get('enqueue_dual.v3')!.sha1;

    const result = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1' });

    expect(result).toEqual({ jobId: 'j1', created: true });
    expect(await node.script('EXISTS', enqueueSha)).toEqual([1]);
    expect(await metricValue(registry, 'dualwrite_script_reloads_total', { script: 'enqueue_dual.v3' })).toBe(1);
    expect(Object.keys(await clusterState(ctx.cluster)).sort()).toEqual([
      '{mail}:job:j1',
      '{mail}:queue:mail',
      '{mail}:ws:acme:job:j1',
      '{mail}:ws:acme:jobs',
    ]);
  });

  it('ready() connects a lazy client, then loads every script on every master and every replica', async () => {
    const lazy = new Cluster([...ctx.handle.nodes], { lazyConnect: true });
    const queue = new DualWriteQueue({ heartbeat: false, redis: lazy, stage: 'live', keys: clusterLayout('default'), metrics: false });
    const shas = [...loadScripts().values()].map((script) => script.sha1);

    const preloaded = await queue.ready().finally(() => lazy.disconnect());

    expect(preloaded.map((script) => script.sha1)).toEqual(shas);
    const nodes = ctx.cluster.nodes('all');
    expect(nodes).toHaveLength(6);
    for (const node of nodes) expect(await node.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
    expect(await clusterState(ctx.cluster)).toEqual({});
  });
});
