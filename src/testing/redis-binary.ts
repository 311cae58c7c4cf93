import { spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import type { RedisHandle } from './handle';
import { freePort, kill, spawnRedisServer, terminate } from './server-process';

/**
 * The environment variable naming the server binary the harness starts, instead of redis-server on
 * PATH: any Redis 7+ or Valkey server. Its path is used exactly as given, never resolved: Debian's
 * valkey-server is a link to valkey-check-rdb, and that binary picks its mode from the name it was
 * started by, so the resolved path would start the RDB checker instead of a server.
 */
export const SERVER_BIN_VARIABLE = 'REDIS_SERVER_BIN';

/** The oldest major version the package's scripts run on (shebangs and `no-writes` need 7.0). */
const OLDEST_MAJOR = 7;

export interface ServerBinary {
  path: string;
  /** Where the path came from, for messages. */
  from: typeof SERVER_BIN_VARIABLE | 'PATH';
}

export interface ServerVersion {
  /** 'Redis' or 'Valkey', as the server's --version names it. */
  product: string;
  /** The server's own version; for Valkey, Valkey's (its INFO also says redis_version:7.2.4). */
  version: string;
  major: number;
}

/**
 * The binary to start: REDIS_SERVER_BIN when set, else redis-server on PATH, else undefined. A
 * REDIS_SERVER_BIN that names no executable is an error, not a quiet fall back to PATH: a run meant
 * for one server must not pass on another.
 */
export function findServerBinary(): ServerBinary | undefined {
  const chosen = process.env[SERVER_BIN_VARIABLE];
  if (chosen) {
    if (!executable(chosen)) throw new Error(`${SERVER_BIN_VARIABLE}=${chosen} is not an executable file`);
    return { path: chosen, from: SERVER_BIN_VARIABLE };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    if (executable(candidate)) return { path: candidate, from: 'PATH' };
  }
  return undefined;
}

const versions = new Map<string, ServerVersion>();

/**
 * What `<binary> --version` says ("Redis server v=7.0.15 ..." or "Valkey server v=8.0.1 ..."),
 * checked: throws, saying why, for anything but a Redis or Valkey server 7.0 or later.
 */
export function serverVersion(binary: string): ServerVersion {
  const known = versions.get(binary);
  if (known) return known;
  const run = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (run.error) throw new Error(`${binary} --version failed: ${run.error.message}`);
  const banner = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
  const match = /^(\S+) server v=((\d+)\.\d+\.\d+)/m.exec(banner);
  if (!match) {
    // Started by the name valkey-check-rdb (or a path resolved to it), Valkey answers as the RDB checker.
    const hint = /check-(rdb|aof)/.test(banner) || /check-(rdb|aof)/.test(basename(binary))
      ? '; Valkey picks its mode from the name it is started by: start it through a link named valkey-server or redis-server, not a resolved path'
      : '';
    throw new Error(`${binary} is not a Redis or Valkey server: its --version says "${banner.split('\n')[0]}"${hint}`);
  }
  const found = { product: match[1], version: match[2], major: Number(match[3]) };
  if (found.major < OLDEST_MAJOR) {
    throw new Error(`${binary} is ${found.product} ${found.version}: redis-dual-write needs Redis 7.0 or later, or Valkey`);
  }
  versions.set(binary, found);
  return found;
}

/** A redis-server (or valkey-server) on a free loopback port, in its own temp dir, persisting every write to its AOF. */
export async function startRedisBinary(binary: string, extraArgs: readonly string[] = []): Promise<RedisHandle> {
  serverVersion(binary);
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
  return spawnRedisServer(binary, args, `${basename(binary)} on port ${port}`);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
