import Redis, { Cluster } from 'ioredis';
import { RedisUnavailableError } from '../errors';
import { DEFAULT_URL } from './commands';
import { UsageError } from './io';

/** --url, else $REDIS_URL, else the local default. */
export function redisUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env.REDIS_URL ?? DEFAULT_URL;
}

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

/**
 * A client for one command run: not connected until `connect()`, giving up after a few quick
 * retries (a command should fail, not hang, when Redis is away).
 */
export function createClient(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt) => (attempt > 3 ? null : attempt * 200),
    // disconnect() arms this timer even for a socket that never opened: keep it short so a
    // failed command does not linger.
    disconnectTimeout: 100,
  });
  // Errors reach the caller through the rejected command; the event would only be logged twice.
  redis.on('error', () => {});
  return redis;
}

/** `where` names the target in messages: a URL (its password hidden here) or a cluster's seeds. */
export async function connect(redis: Redis | Cluster, where: string): Promise<void> {
  try {
    await redis.connect();
  } catch (error) {
    const shown = where.includes('://') ? redactUrl(where) : where;
    throw new RedisUnavailableError(`cannot reach Redis at ${shown}: ${(error as Error).message}`, error);
  }
}

/** A seed node of --cluster; credentials only from a redis:// seed. */
export interface ClusterSeed {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

/** `--cluster host:port,host:port` (or redis://[user:password@]host:port items): where to learn the cluster from. */
export function parseClusterSeeds(text: string): ClusterSeed[] {
  const items = text.split(',').map((item) => item.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError('--cluster needs at least one host:port');
  return items.map((item) => {
    if (item.includes('://')) {
      let url: URL;
      try {
        url = new URL(item);
      } catch {
        throw new UsageError(`--cluster: ${item} is neither host:port nor a redis:// URL`);
      }
      const seed: ClusterSeed = { host: url.hostname, port: Number(url.port || 6379) };
      if (url.username) seed.username = decodeURIComponent(url.username);
      if (url.password) seed.password = decodeURIComponent(url.password);
      return seed;
    }
    const match = /^(.+):(\d{1,5})$/.exec(item);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new UsageError(`--cluster: ${item} is not host:port`);
    }
    return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
  });
}

/**
 * A Cluster client for one command run, as createClient is for one server: not connected until
 * `connect()`, failing rather than hanging when the cluster is away. It finds every other node
 * (masters and replicas) from the seeds.
 */
export function createClusterClient(seeds: readonly ClusterSeed[]): Cluster {
  const credentials = seeds.find((seed) => seed.password !== undefined);
  const cluster = new Cluster(
    seeds.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: true,
      clusterRetryStrategy: (attempt) => (attempt > 3 ? null : attempt * 200),
      redisOptions: {
        connectTimeout: 5_000,
        maxRetriesPerRequest: 2,
        disconnectTimeout: 100,
        ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
      },
    },
  );
  cluster.on('error', () => {});
  return cluster;
}

/** The client a command works on: a Cluster from --cluster, else one server from --url or $REDIS_URL. */
export function clientFor(
  options: { url?: string | boolean; cluster?: string | boolean },
  env: Record<string, string | undefined>,
): { redis: Redis | Cluster; where: string } {
  if (typeof options.cluster === 'string') {
    if (options.url !== undefined) throw new UsageError('--url and --cluster name different targets: give one');
    const seeds = parseClusterSeeds(options.cluster);
    return { redis: createClusterClient(seeds), where: `the cluster seeded by ${seeds.map((s) => `${s.host}:${s.port}`).join(',')}` };
  }
  const url = redisUrl(options.url as string | undefined, env);
  return { redis: createClient(url), where: url };
}
