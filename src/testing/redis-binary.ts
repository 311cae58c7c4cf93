import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { RedisHandle } from './handle';

const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
// A test run that dies without stop() must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

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
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString());
    const settle = (error?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onStdout).resume();
      child.stderr?.off('data', collect).resume();
      child.off('exit', onExit).off('error', onError);
      if (!error) return resolve(child);
      child.kill('SIGKILL');
      reject(error);
    };
    const fail = (reason: string) => settle(new Error(`redis-server on port ${port} ${reason}:\n${output.slice(-2000)}`));
    const onStdout = (chunk: Buffer) => {
      collect(chunk);
      if (output.includes('Ready to accept connections')) settle();
    };
    const onExit = (code: number | null) => fail(`exited with code ${code}`);
    const onError = (error: Error) => fail(`could not start: ${error.message}`);
    const timer = setTimeout(() => fail(`was not ready after ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.stdout?.on('data', onStdout);
    child.stderr?.on('data', collect);
    child.on('exit', onExit).on('error', onError);
  });
}

async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** kill -9: the server gets no chance to flush or shut down, as in a machine or OOM-killer crash. */
async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
