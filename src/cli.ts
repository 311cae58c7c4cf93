#!/usr/bin/env node
/**
 * The `redis-dual-write` bin: wires the process (argv, streams, Ctrl-C, exit code) to main().
 * Everything else lives in cli/, where tests run it in-process.
 */
import { EXIT, main } from './cli/main';

export { main, EXIT } from './cli/main';
export type { CliIo, CliStream } from './cli/main';

if (require.main === module) {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    process.stderr.write('\nStopping after the batch in flight (Ctrl-C again to quit now)...\n');
    controller.abort();
  });
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      // main() answers every error with its exit code; landing here is a crash of the command itself.
      process.stderr.write(`redis-dual-write: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
