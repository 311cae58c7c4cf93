import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
// A test run that dies without stop() must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts a server binary (redis-server, or valkey-server: both print the same ready line) with `args`
 * and resolves once it accepts connections; `label` names it in errors.
 */
export function spawnRedisServer(binary: string, args: readonly string[], label: string): Promise<ChildProcess> {
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
    const fail = (reason: string) => settle(new Error(`${label} ${reason}:\n${output.slice(-2000)}`));
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

/** SIGTERM (the server shuts down cleanly), SIGKILL if it is still there after `graceMs`. */
export async function terminate(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** kill -9: the server gets no chance to flush or shut down, as in a machine or OOM-killer crash. */
export async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export function freePort(): Promise<number> {
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
