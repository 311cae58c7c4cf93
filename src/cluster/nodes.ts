import type { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError } from '../errors';
import { untilReady } from './ready';

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
  // The node list is filled once the client has read the slot map.
  await untilReady(redis);
  const byName = (a: Server, b: Server) => a.name.localeCompare(b.name);
  const masters = redis.nodes('master').map((node): Server => ({ name: nameOf(node), role: 'master', redis: node }));
  if (masters.length === 0) throw new RedisUnavailableError('the cluster client knows no master yet');
  const replicas = options.replicas
    ? redis.nodes('slave').map((node): Server => ({ name: nameOf(node), role: 'replica', redis: node }))
    : [];
  return [...masters.sort(byName), ...replicas.sort(byName)];
}

function nameOf(node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? ''}`;
}
