import { Cluster, type Redis } from 'ioredis';
import { redisClusterSupport, startRedisCluster, type RedisClusterHandle } from '../../src/testing';
import { describeWhen } from './requires';
import { redisState, type KeyState } from './state';

export interface ClusterContext {
  handle: RedisClusterHandle;
  cluster: Cluster;
}

const support = redisClusterSupport();

/** The tests of a cluster, where this machine's server binary can run one (see describeWhen). */
export function describeCluster(name: string, tests: () => void): void {
  describeWhen(support, `Redis Cluster: ${name}`, 'install redis-server 7+ or set REDIS_SERVER_BIN to run them', tests);
}

/**
 * One private cluster per test file (three masters, three replicas), emptied before each test:
 * every master flushed, every node's script cache flushed. Read `ctx.cluster` inside tests.
 */
export function useCluster(): ClusterContext {
  const ctx = {} as ClusterContext;
  beforeAll(async () => {
    ctx.handle = await startRedisCluster();
    ctx.cluster = newClusterClient(ctx.handle);
    await ctx.cluster.ping();
  }, 60_000);
  beforeEach(async () => {
    await Promise.all(ctx.cluster.nodes('master').map((node) => node.flushall()));
    await Promise.all(ctx.cluster.nodes('all').map((node) => node.script('FLUSH')));
  });
  afterAll(async () => {
    ctx.cluster?.disconnect();
    await ctx.handle?.stop();
  });
  return ctx;
}

export function newClusterClient(handle: RedisClusterHandle): Cluster {
  const cluster = new Cluster([...handle.nodes]);
  cluster.on('error', () => {});
  return cluster;
}

/** Every key of the cluster with its whole value, gathered from each master (each holds its slots' keys). */
export async function clusterState(cluster: Cluster): Promise<Record<string, KeyState>> {
  const states = await Promise.all(cluster.nodes('master').map((node) => redisState(node)));
  return Object.fromEntries(
    states
      .flatMap((state) => Object.entries(state))
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

/** How many keys each master holds, by host:port. */
export async function keysPerMaster(cluster: Cluster): Promise<Record<string, number>> {
  const counts = await Promise.all(cluster.nodes('master').map(async (node) => [nodeName(node), await node.dbsize()] as const));
  return Object.fromEntries(counts);
}

export function nodeName(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/** The master serving a slot right now, asked of the cluster itself (not of the client's cache). */
export async function masterOfSlot(cluster: Cluster, slot: number): Promise<string> {
  const ranges = (await cluster.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const range = ranges.find(([first, last]) => first <= slot && slot <= last);
  if (!range) throw new Error(`no master serves slot ${slot}`);
  return `${range[2][0]}:${range[2][1]}`;
}
