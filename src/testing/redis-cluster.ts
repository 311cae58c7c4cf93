import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { keySlot, SLOT_COUNT } from '../cluster/slot';
import { findServerBinary, SERVER_BIN_VARIABLE, serverVersion } from './redis-binary';
import { freePort, spawnRedisServer, terminate } from './server-process';

/** One node of a test cluster, as a seed for `new Cluster(handle.nodes)`. */
export interface ClusterNodeAddress {
  host: string;
  port: number;
}

export interface FailoverResult {
  /** The master that handed over its slots, now a replica. */
  from: ClusterNodeAddress;
  /** Its replica, now the master of those slots. */
  to: ClusterNodeAddress;
  /** From sending CLUSTER FAILOVER until every node agrees on the new master and the cluster is ok. */
  durationMs: number;
}

/** A private Redis Cluster on loopback: masters with one replica each. */
export interface RedisClusterHandle {
  /** Every node, masters first at start: seeds for ioredis' Cluster. */
  readonly nodes: readonly ClusterNodeAddress[];
  /** Where the nodes keep their files, one sub-directory each; stop() removes it. */
  readonly dir: string;
  /**
   * A manual failover (CLUSTER FAILOVER on a replica): the replica catches up with its master, then
   * takes over its slots; no acknowledged write is lost. Of the master serving `slot` when given,
   * else of the first master. Resolves once every node agrees and the cluster is ok again.
   */
  failover(options?: { slot?: number }): Promise<FailoverResult>;
  /** Stops every node and removes their data. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Masters, each with one replica (default 3, as the smallest cluster Redis recommends). */
  masters?: number;
  /** Extra redis-server arguments for every node. */
  serverArgs?: readonly string[];
  /** Extra arguments for one node, after serverArgs, given its client port (say a --tls-port of its own). */
  nodeServerArgs?: (node: { port: number }) => readonly string[] | Promise<readonly string[]>;
  /** Give up (and stop every node) when the cluster is not ok after this long (default 30 s). */
  timeoutMs?: number;
}

export type ClusterSupport = { supported: true; binary: string } | { supported: false; reason: string };

const dirs = new Set<string>();
// A test run that dies without stop() must not leave the nodes' files behind (server-process kills them).
process.once('exit', () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Whether this machine can run a test cluster: a server binary 7+ (REDIS_SERVER_BIN, else
 * redis-server on PATH; every build since 3.0 has cluster mode, the package's scripts need 7.0).
 * Synchronous, so a test file decides at load.
 */
export function redisClusterSupport(): ClusterSupport {
  try {
    const binary = findServerBinary();
    if (!binary) {
      return { supported: false, reason: `no redis-server on PATH and no ${SERVER_BIN_VARIABLE} (a cluster needs a server binary, not REDIS_URL)` };
    }
    serverVersion(binary.path);
    return { supported: true, binary: binary.path };
  } catch (error) {
    return { supported: false, reason: (error as Error).message };
  }
}

/**
 * Starts `masters` masters and as many replicas from `redis-server --cluster-enabled yes`, each on
 * free loopback ports in its own temp dir, joins them (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE), and
 * resolves once every node says cluster_state:ok and every replica is in sync with its master.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const support = redisClusterSupport();
  if (!support.supported) throw new Error(`cannot start a Redis Cluster: ${support.reason}`);
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 1 || masters > 16) throw new Error('masters must be 1 to 16');
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const dir = mkdtempSync(join(tmpdir(), 'redis-dual-write-cluster-'));
  dirs.add(dir);
  const nodes: ClusterNode[] = [];
  const stopAll = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  try {
    for (let i = 0; i < masters * 2; i++) {
      nodes.push(await startNode(support.binary, join(dir, `node-${i}`), options.serverArgs ?? [], options.nodeServerArgs));
    }
    await joinCluster(nodes, masters, deadline);
  } catch (error) {
    await stopAll();
    throw error;
  }
  let stopped = false;
  return {
    nodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    dir,
    failover: (failoverOptions = {}) => failover(nodes, failoverOptions.slot, Date.now() + (options.timeoutMs ?? 30_000)),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
}

interface ClusterNode {
  port: number;
  busPort: number;
  client: Redis;
  stop(): Promise<void>;
}

async function startNode(
  binary: string,
  dir: string,
  extraArgs: readonly string[],
  nodeArgs: StartRedisClusterOptions['nodeServerArgs'],
): Promise<ClusterNode> {
  for (let attempt = 1; ; attempt++) {
    const [port, busPort] = [await freePort(), await freePort()];
    try {
      const child = await spawnNode(binary, dir, port, busPort, [...extraArgs, ...((await nodeArgs?.({ port })) ?? [])]);
      const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
      client.on('error', () => {});
      return {
        port,
        busPort,
        client,
        async stop() {
          client.disconnect();
          await terminate(child, 5_000);
        },
      };
    } catch (error) {
      // Another process may take a port between our probe and the server's bind: try others.
      if (attempt >= 3 || !String(error).includes('Address already in use')) throw error;
    }
  }
}

function spawnNode(binary: string, dir: string, port: number, busPort: number, extraArgs: readonly string[]): Promise<ChildProcess> {
  // A failed attempt may have left its nodes.conf: each attempt starts from an empty dir.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--logfile', '',
    '--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', 'nodes.conf',
    // Short enough that the cluster settles fast on loopback, long enough not to flap on a busy CI box.
    '--cluster-node-timeout', '3000',
    // A replica's first sync should not wait for more replicas to join it (5 s by default).
    '--repl-diskless-sync-delay', '0',
    '--save', '', '--appendonly', 'no', ...extraArgs,
  ];
  return spawnRedisServer(binary, args, `cluster node on port ${port}`);
}

/** What `redis-cli --cluster create --cluster-replicas 1` does, with the CLUSTER commands themselves. */
async function joinCluster(nodes: ClusterNode[], masters: number, deadline: number): Promise<void> {
  await Promise.all(nodes.map((node) => node.client.connect()));
  // Distinct config epochs, so the nodes need no collision round to agree on slot ownership.
  await Promise.all(nodes.map((node, i) => node.client.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))));
  for (let m = 0; m < masters; m++) {
    const [first, last] = slotRange(m, masters);
    await nodes[m].client.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
  }
  for (const node of nodes.slice(1)) {
    await nodes[0].client.call('CLUSTER', 'MEET', '127.0.0.1', String(node.port), String(node.busPort));
  }
  const ids = await Promise.all(nodes.map(async (node) => String(await node.client.call('CLUSTER', 'MYID'))));
  // A replica can only follow a master it has heard of.
  await until(deadline, 'every node to know every other', async () =>
    (await Promise.all(nodes.map((node) => knownNodes(node.client)))).every((known) => ids.every((id) => known.has(id))),
  );
  for (let r = masters; r < nodes.length; r++) {
    await nodes[r].client.call('CLUSTER', 'REPLICATE', ids[r - masters]);
  }
  await until(deadline, 'every replica in sync with its master', () => replicasLinked(nodes));
  // Redis lists a replica in CLUSTER SLOTS (what clients read) only once its replication offset is
  // above 0: a write on each master gets the offsets moving now, not at the next replication ping.
  // A master takes writes once the cluster is ok (at least 2 s after it started).
  await until(deadline, 'a first write on every master', async () => {
    await Promise.all(
      nodes.slice(0, masters).map(async (node, m) => {
        const key = keyInSlots(slotRange(m, masters));
        await node.client.set(key, '1');
        await node.client.del(key);
      }),
    );
    return true;
  });
  await until(deadline, 'cluster_state:ok on every node, all agreeing on masters and replicas', () => settled(nodes));
}

async function knownNodes(client: Redis): Promise<Set<string>> {
  const lines = String(await client.call('CLUSTER', 'NODES')).trim().split('\n');
  return new Set(lines.filter((line) => !line.includes('handshake')).map((line) => line.split(' ')[0]));
}

/** The slots master m of n serves, first and last: an even split, as redis-cli makes it. */
function slotRange(m: number, masters: number): [number, number] {
  return [Math.floor((SLOT_COUNT * m) / masters), Math.floor((SLOT_COUNT * (m + 1)) / masters) - 1];
}

function keyInSlots([first, last]: [number, number]): string {
  for (let n = 0; ; n++) {
    const key = `redis-dual-write:harness:${n}`;
    const slot = keySlot(key);
    if (first <= slot && slot <= last) return key;
  }
}

async function replicasLinked(nodes: readonly ClusterNode[]): Promise<boolean> {
  const replication = await Promise.all(nodes.map(async (node) => String(await node.client.info('replication'))));
  return replication.every((info) => !info.includes('role:slave') || info.includes('master_link_status:up'));
}

/** Every node says ok, sees the same masters and replicas, and every replica's link is up. */
async function settled(nodes: readonly ClusterNode[]): Promise<boolean> {
  const views = await Promise.all(
    nodes.map(async (node) => ({
      info: String(await node.client.call('CLUSTER', 'INFO')),
      replication: String(await node.client.info('replication')),
      topology: topologySeen(String(await node.client.call('CLUSTER', 'NODES'))),
      // What clients read: a replica shows here only once Redis deems it available.
      slots: (await node.client.call('CLUSTER', 'SLOTS')) as unknown[][],
    })),
  );
  const replicas = views[0].topology.split(';').filter((line) => line.includes(' replica-of ')).length;
  return (
    replicas === nodes.length / 2 &&
    views.every(
      (view) =>
        view.topology === views[0].topology &&
        view.info.includes('cluster_state:ok') &&
        view.slots.every((range) => range.length >= 4) &&
        view.info.includes(`cluster_known_nodes:${nodes.length}`) &&
        (!view.replication.includes('role:slave') || view.replication.includes('master_link_status:up')),
    )
  );
}

/**
 * Who a node believes serves what: each master with its slot ranges, each replica with its master,
 * failed nodes marked. One line per node, sorted, so two nodes' views compare as strings.
 */
function topologySeen(clusterNodes: string): string {
  const lines = clusterNodes.trim().split('\n').map((line) => line.split(' '));
  const addressOf = new Map(lines.map((fields) => [fields[0], fields[1].split('@')[0]]));
  return lines
    .map(([, address, flags, masterId, , , , , ...slots]) => {
      const state = flags.includes('fail') ? ' failed' : '';
      const role = flags.includes('master') ? `master ${slots.join(',')}` : `replica-of ${addressOf.get(masterId) ?? masterId}`;
      return `${address.split('@')[0]} ${role}${state}`;
    })
    .sort()
    .join(';');
}

async function failover(nodes: readonly ClusterNode[], slot: number | undefined, deadline: number): Promise<FailoverResult> {
  const [[, , master, ...replicas]] = ((await nodes[0].client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number], ...[string, number][]][])
    .filter(([first, last]) => slot === undefined || (first <= slot && slot <= last))
    .sort((a, b) => a[0] - b[0]);
  if (replicas.length === 0) throw new Error(`the master at port ${master[1]} has no replica to fail over to`);
  const replica = nodes.find((node) => node.port === Number(replicas[0][1]));
  if (!replica) throw new Error(`no node of this cluster listens on port ${replicas[0][1]}`);
  const started = Date.now();
  await replica.client.call('CLUSTER', 'FAILOVER');
  await until(deadline, `the replica at port ${replica.port} to take over`, async () => {
    const role = (await replica.client.call('ROLE')) as [string];
    return role[0] === 'master' && (await settled(nodes));
  });
  return {
    from: { host: '127.0.0.1', port: Number(master[1]) },
    to: { host: '127.0.0.1', port: replica.port },
    durationMs: Date.now() - started,
  };
}

async function until(deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error; // a node still starting up answers LOADING or refuses; look again
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Redis Cluster: gave up waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
}

