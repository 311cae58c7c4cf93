import Redis from 'ioredis';
import { SLOT_COUNT } from '../cluster/slot';
import type { ClusterNodeAddress, RedisClusterHandle } from './redis-cluster';

/**
 * Moving one hash slot from its master to another while clients keep working: the reshard
 * `redis-cli --cluster reshard` performs, with the CLUSTER commands themselves, so a test can put
 * a queue's slot in motion under load and watch what its callers see.
 */

export interface MoveSlotOptions {
  /** The slot to move (0..16383). */
  slot: number;
  /** The master that takes it; by default the other master with the lowest port. */
  to?: ClusterNodeAddress;
  /** Keys per MIGRATE call (default 100): each call moves its keys at once, blocking the source meanwhile. */
  keysPerMigrate?: number;
  /**
   * A pause after each MIGRATE call (default 0): a reshard over a slower network, or one paced not to
   * load the source, keeps the slot split longer, and the calls in flight retry longer.
   */
  pauseMs?: number;
  /**
   * Called once the slot is IMPORTING on the target and MIGRATING on the source, before the first key
   * moves: the moment a test can, say, empty the target's script cache, or pause to widen the window.
   */
  beforeKeysMove?: (move: { from: ClusterNodeAddress; to: ClusterNodeAddress }) => Promise<void>;
  /** Give up when the cluster does not agree on the new owner after this long (default 30 s). */
  timeoutMs?: number;
}

export interface SlotMove {
  slot: number;
  from: ClusterNodeAddress;
  to: ClusterNodeAddress;
  keysMoved: number;
  migrateCalls: number;
  /** From SETSLOT IMPORTING until the last SETSLOT NODE: the time the slot's keys were split over two masters. */
  migratingMs: number;
  /** From SETSLOT IMPORTING until every node names the new owner of the slot. */
  durationMs: number;
}

interface NodeView {
  id: string;
  address: ClusterNodeAddress;
  master: boolean;
  slots: string[];
}

/**
 * Moves a slot as the Redis Cluster specification describes a live reshard: CLUSTER SETSLOT
 * IMPORTING on the target, MIGRATING on the source, MIGRATE of the slot's keys in batches, then
 * SETSLOT NODE on the target, the source and every other master. Clients meanwhile get ASK (a key
 * already moved), TRYAGAIN (a multi-key call whose keys are split) and, after the move, MOVED.
 * Loopback only: it would harm a shared cluster. Resolves once every node names the new owner.
 */
export async function moveSlot(cluster: Pick<RedisClusterHandle, 'nodes'>, options: MoveSlotOptions): Promise<SlotMove> {
  const { slot } = options;
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`slot must be an integer from 0 to ${SLOT_COUNT - 1}`);
  const keysPerMigrate = options.keysPerMigrate ?? 100;
  if (!Number.isInteger(keysPerMigrate) || keysPerMigrate < 1 || keysPerMigrate > 10_000) throw new RangeError('keysPerMigrate must be 1 to 10000');
  for (const node of cluster.nodes) {
    if (!['127.0.0.1', '::1', 'localhost'].includes(node.host)) throw new Error(`slots are only moved in a cluster on loopback, not ${node.host}`);
  }
  const pauseMs = options.pauseMs ?? 0;
  if (!(pauseMs >= 0 && pauseMs <= 60_000)) throw new RangeError('pauseMs must be 0 to 60000');
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const clients = new Map(cluster.nodes.map((node) => [portOf(node), adminClient(node)]));
  const client = (address: ClusterNodeAddress) => {
    const found = clients.get(portOf(address));
    if (!found) throw new Error(`no node of this cluster listens on ${portOf(address)}`);
    return found;
  };
  try {
    const views = await clusterView(clients.values().next().value!);
    const masters = views.filter((view) => view.master);
    const source = masters.find((view) => view.slots.some((range) => inRange(range, slot)));
    if (!source) throw new Error(`no master serves slot ${slot}`);
    const target = options.to
      ? masters.find((view) => portOf(view.address) === portOf(options.to!))
      : masters.filter((view) => view.id !== source.id).sort((a, b) => a.address.port - b.address.port)[0];
    if (!target) throw new Error('the target of a slot move must be a master of this cluster');
    if (target.id === source.id) throw new Error(`slot ${slot} is already served by port ${target.address.port}`);

    const started = Date.now();
    // The target first: a source MIGRATING to a target that does not yet accept ASKING would lose calls.
    await client(target.address).call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
    await client(source.address).call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
    await options.beforeKeysMove?.({ from: source.address, to: target.address });

    let keysMoved = 0;
    let migrateCalls = 0;
    for (;;) {
      const keys = (await client(source.address).call('CLUSTER', 'GETKEYSINSLOT', String(slot), String(keysPerMigrate))) as string[];
      if (keys.length === 0) break;
      if (Date.now() > deadline) throw new Error(`moving slot ${slot}: ${keysMoved} keys moved, more left when time ran out`);
      const reply = await client(source.address).call(
        'MIGRATE', target.address.host, String(target.address.port), '', '0', '5000', 'KEYS', ...keys,
      );
      if (reply !== 'OK' && reply !== 'NOKEY') throw new Error(`MIGRATE of slot ${slot} answered ${String(reply)}`);
      keysMoved += keys.length;
      migrateCalls += 1;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }

    // The target first, so it serves the slot before the source starts sending MOVED to it.
    const others = masters.filter((view) => view.id !== source.id && view.id !== target.id);
    for (const view of [target, source, ...others]) {
      await client(view.address).call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
    }
    const migratingMs = Date.now() - started;
    await until(deadline, `every node to name port ${target.address.port} as the owner of slot ${slot}`, async () => {
      const owners = await Promise.all([...clients.values()].map((redis) => ownerOf(redis, slot)));
      return owners.every((port) => port === target.address.port);
    });
    return { slot, from: source.address, to: target.address, keysMoved, migrateCalls, migratingMs, durationMs: Date.now() - started };
  } finally {
    for (const redis of clients.values()) redis.disconnect();
  }
}

function adminClient(address: ClusterNodeAddress): Redis {
  const redis = new Redis({ host: address.host, port: address.port, maxRetriesPerRequest: 1, enableReadyCheck: false });
  redis.on('error', () => {});
  return redis;
}

function portOf(address: ClusterNodeAddress): number {
  return Number(address.port);
}

/** Every node as CLUSTER NODES names it: id, address, role and the slot ranges it serves. */
async function clusterView(redis: Redis): Promise<NodeView[]> {
  const text = String(await redis.call('CLUSTER', 'NODES')).trim();
  return text.split('\n').map((line) => {
    const [id, address, flags, , , , , , ...slots] = line.split(' ');
    const [host, port] = address.split('@')[0].split(/:(?=\d+$)/);
    return {
      id,
      address: { host, port: Number(port) },
      master: flags.split(',').includes('master'),
      // "[slot->-id]" and "[slot-<-id]" mark a slot in motion, not a slot served.
      slots: slots.filter((range) => !range.startsWith('[')),
    };
  });
}

function inRange(range: string, slot: number): boolean {
  const [first, last = first] = range.split('-').map(Number);
  return first <= slot && slot <= last;
}

/** The port of the master a node says serves the slot (as clients read it, from CLUSTER SLOTS). */
async function ownerOf(redis: Redis, slot: number): Promise<number | undefined> {
  const ranges = (await redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const range = ranges.find(([first, last]) => first <= slot && slot <= last);
  return range ? Number(range[2][1]) : undefined;
}

async function until(deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`moving a slot: gave up waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
}
