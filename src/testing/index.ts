import type { RedisHandle } from './handle';
import { findServerBinary, SERVER_BIN_VARIABLE, startRedisBinary } from './redis-binary';
import { containerRuntimeLikely, startRedisContainer, type ContainerServer } from './redis-container';

export type { RedisHandle } from './handle';
export { redisClusterSupport, startRedisCluster } from './redis-cluster';
export type {
  ClusterNodeAddress,
  ClusterSupport,
  FailoverResult,
  RedisClusterHandle,
  StartRedisClusterOptions,
} from './redis-cluster';
export { moveSlot } from './reshard';
export type { MoveSlotOptions, SlotMove } from './reshard';
export { findServerBinary, serverVersion } from './redis-binary';
export type { ServerBinary, ServerVersion } from './redis-binary';
export { CONTAINER_IMAGE, CONTAINER_SERVERS, containerPlan } from './redis-container';
export type { ContainerPlan, ContainerServer } from './redis-container';
export { reportSkipped } from './skipped';
export { startFaultProxy } from './proxy';
export type { DropRepliesOptions, FaultProxy, FaultProxyOptions, FaultProxyStats, ReplyDrop } from './proxy';
export { flushScriptsEvery, setMaxMemory, usedMemory } from './server-faults';
export type { MemoryCap, ScriptFlusher } from './server-faults';

export interface StartRedisOptions {
  /**
   * Force one way; by default: REDIS_URL, else the binary REDIS_SERVER_BIN names, else a container
   * runtime, else redis-server on PATH.
   */
  via?: RedisHandle['via'];
  /** Extra server arguments, e.g. ['--maxmemory', '10mb'] (ignored for REDIS_URL). */
  serverArgs?: readonly string[];
  /**
   * The container image: a key of CONTAINER_SERVERS ('redis-7.0', 'redis-8.0', 'valkey-8.0',
   * 'valkey-9.1') or any image reference; default REDIS_CONTAINER_IMAGE, else CONTAINER_IMAGE.
   * Only for a container.
   */
  image?: ContainerServer | (string & {});
}

const HOW_TO_GET_REDIS = `No Redis is available for tests. Any one of these works:
  - set REDIS_URL to a Redis 7+ that the tests may flush (never a shared one);
  - set ${SERVER_BIN_VARIABLE} to a redis-server 7+ or valkey-server binary;
  - run a Docker-compatible container runtime and install testcontainers 11 (npm i -D testcontainers@11);
  - install redis-server 7+ so it is on PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis).`;

/** A real, private Redis: the harness behind this package's tests, for users' tests too. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisHandle> {
  const via = options.via ?? defaultWay();
  switch (via) {
    case 'url':
      return externalRedis();
    case 'container':
      return startRedisContainer(options.image, options.serverArgs);
    case 'binary': {
      const binary = findServerBinary();
      if (!binary) throw new Error(HOW_TO_GET_REDIS);
      return startRedisBinary(binary.path, options.serverArgs);
    }
  }
}

function defaultWay(): RedisHandle['via'] {
  if (process.env.REDIS_URL) return 'url';
  // A binary named on purpose wins over a container runtime that merely happens to be there.
  if (process.env[SERVER_BIN_VARIABLE]) return 'binary';
  if (containerRuntimeLikely() && testcontainersInstalled()) return 'container';
  if (findServerBinary()) return 'binary';
  throw new Error(HOW_TO_GET_REDIS);
}

function testcontainersInstalled(): boolean {
  try {
    require.resolve('testcontainers');
    return true;
  } catch {
    return false;
  }
}

function externalRedis(): RedisHandle {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('via: "url" needs REDIS_URL');
  return {
    url,
    via: 'url',
    async stop() {
      // The server is not ours to stop.
    },
    async restart() {
      throw new Error('a Redis given by REDIS_URL cannot be restarted by the harness');
    },
    async crash() {
      throw new Error('a Redis given by REDIS_URL cannot be crashed by the harness');
    },
  };
}
