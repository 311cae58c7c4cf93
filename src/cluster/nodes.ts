import type { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError } from '../errors';

/** An ioredis Cluster, told apart from a standalone client the way ioredis marks it. */
export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/** A server a per-server command (INFO, SCRIPT, SCAN) must reach, named for reports. */
export interface Server {
  /** host:port as the cluster announces it; '' for a standalone client. */
  name: string;
  role: 'master' | 'replica';
  redis: Redis;
}

/**
 * The servers a per-server command must reach: a standalone client is its own one server; a Cluster
 * means each master (each holds its own slots), and with `replicas` each replica too. Sorted by
 * name, so two walks over the same cluster go in the same order.
 */
export async function serversOf(redis: Redis | Cluster, options: { replicas?: boolean } = {}): Promise<Server[]> {
  if (!isCluster(redis)) return [{ name: '', role: 'master', redis }];
  await untilReady(redis);
  const byName = (a: Server, b: Server) => a.name.localeCompare(b.name);
  const masters = redis.nodes('master').map((node): Server => ({ name: nameOf(node), role: 'master', redis: node }));
  if (masters.length === 0) throw new RedisUnavailableError('the cluster client knows no master yet');
  const replicas = options.replicas
    ? redis.nodes('slave').map((node): Server => ({ name: nameOf(node), role: 'replica', redis: node }))
    : [];
  return [...masters.sort(byName), ...replicas.sort(byName)];
}

/**
 * The node list is filled once the client has read the slot map. Waits for that without sending a
 * command of our own (an ACL user may not run PING); a lazy client is connected, as its first
 * command would connect it.
 */
async function untilReady(cluster: Cluster): Promise<void> {
  if (cluster.status === 'ready') return;
  if (cluster.status === 'wait') return cluster.connect();
  if (cluster.status === 'end') throw new RedisUnavailableError('the cluster client is closed');
  await new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      cluster.off('ready', onReady).off('end', onEnd);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => settle();
    const onEnd = () => settle(new RedisUnavailableError('the cluster client closed before it was ready'));
    cluster.once('ready', onReady).once('end', onEnd);
  });
}

function nameOf(node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? ''}`;
}
