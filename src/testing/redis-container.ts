import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RedisHandle } from './handle';

export const CONTAINER_IMAGE = 'redis:7.2-alpine';

/** A cheap look for a Docker-compatible runtime, before paying for testcontainers' own probe. */
export function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST) return true;
  const sockets = ['/var/run/docker.sock', join(homedir(), '.docker', 'run', 'docker.sock')];
  if (process.env.XDG_RUNTIME_DIR) sockets.push(join(process.env.XDG_RUNTIME_DIR, 'docker.sock'));
  return sockets.some((socket) => existsSync(socket));
}

/** Redis in a container through testcontainers (an optional peer dependency). */
export async function startRedisContainer(extraArgs: readonly string[] = []): Promise<RedisHandle> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(CONTAINER_IMAGE)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...extraArgs])
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  let stopped = false;
  return {
    get url() {
      return `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    },
    via: 'container',
    async stop() {
      if (stopped) return;
      stopped = true;
      await container.stop();
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop(): the data is gone');
      // The container's filesystem survives a restart, and with it the append-only file.
      await container.restart();
    },
    async crash() {
      if (stopped) throw new Error('crash() after stop(): the data is gone');
      // docker kill -s KILL; the stopped container keeps its filesystem, append-only file included.
      const { getContainerRuntimeClient } = await import('testcontainers');
      const runtime = await getContainerRuntimeClient();
      await runtime.container.getById(container.getId()).kill({ signal: 'SIGKILL' });
      await container.restart();
    },
  };
}
