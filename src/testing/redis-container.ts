import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RedisHandle } from './handle';

/** The image started when none is chosen. */
export const CONTAINER_IMAGE = 'redis:7.2-alpine';

/**
 * The servers this package is tested on, as container images with exact tags (a floating tag
 * would change the server under a passing suite).
 */
export const CONTAINER_SERVERS = {
  'redis-7.0': 'redis:7.0.15',
  'redis-8.0': 'redis:8.0.2',
  'valkey-8.0': 'valkey/valkey:8.0.1',
  'valkey-9.1': 'valkey/valkey:9.1.2',
} as const;

export type ContainerServer = keyof typeof CONTAINER_SERVERS;

/** Names the image when startRedis() is given none: a key of CONTAINER_SERVERS or any image reference. */
export const CONTAINER_IMAGE_VARIABLE = 'REDIS_CONTAINER_IMAGE';

export interface ContainerPlan {
  image: string;
  /** The container's command: the server program the image has, then its arguments. */
  command: string[];
}

/**
 * Which image to start and how: `image` is a key of CONTAINER_SERVERS, an image reference, or
 * undefined for REDIS_CONTAINER_IMAGE, else CONTAINER_IMAGE. Valkey's images have valkey-server,
 * Redis' images redis-server.
 */
export function containerPlan(image: string | undefined, extraArgs: readonly string[] = []): ContainerPlan {
  const chosen = image ?? (process.env[CONTAINER_IMAGE_VARIABLE] || CONTAINER_IMAGE);
  const reference: string = Object.hasOwn(CONTAINER_SERVERS, chosen) ? CONTAINER_SERVERS[chosen as ContainerServer] : chosen;
  const program = imageRepository(reference).split('/').pop() === 'valkey' ? 'valkey-server' : 'redis-server';
  return { image: reference, command: [program, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...extraArgs] };
}

/** 'valkey/valkey' from 'valkey/valkey:8.0.1', 'registry:5000/valkey' from 'registry:5000/valkey@sha256:...'. */
function imageRepository(reference: string): string {
  return reference.split('@')[0].replace(/:[^/]*$/, '');
}

/** A cheap look for a Docker-compatible runtime, before paying for testcontainers' own probe. */
export function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST) return true;
  const sockets = ['/var/run/docker.sock', join(homedir(), '.docker', 'run', 'docker.sock')];
  if (process.env.XDG_RUNTIME_DIR) sockets.push(join(process.env.XDG_RUNTIME_DIR, 'docker.sock'));
  return sockets.some((socket) => existsSync(socket));
}

/** Redis or Valkey in a container through testcontainers (an optional peer dependency). */
export async function startRedisContainer(image?: string, extraArgs: readonly string[] = []): Promise<RedisHandle> {
  const plan = containerPlan(image, extraArgs);
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(plan.image)
    .withExposedPorts(6379)
    .withCommand(plan.command)
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
