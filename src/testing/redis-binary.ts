import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { RedisHandle } from './handle';
import { freePort, kill, spawnRedisServer, terminate } from './server-process';

export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** redis-server on a free loopback port, in its own temp dir, persisting every write to its AOF. */
export async function startRedisBinary(binary: string, extraArgs: readonly string[] = []): Promise<RedisHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-dual-write-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnServer(binary, port, dir, extraArgs);
    } catch (error) {
      // Another process may take the port between our probe and the server's bind: try another.
      if (attempt >= 3 || !String(error).includes('Address already in use')) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    via: 'binary',
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(child);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop(): the data is gone');
      await terminate(child);
      child = await spawnServer(binary, port, dir, extraArgs);
    },
    async crash() {
      if (stopped) throw new Error('crash() after stop(): the data is gone');
      await kill(child);
      child = await spawnServer(binary, port, dir, extraArgs);
    },
  };
}

function spawnServer(binary: string, port: number, dir: string, extraArgs: readonly string[]): Promise<ChildProcess> {
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--logfile', '',
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...extraArgs,
  ];
  return spawnRedisServer(binary, args, `redis-server on port ${port}`);
}
