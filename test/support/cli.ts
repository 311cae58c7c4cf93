import { main } from '../../src/cli';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** stderr claims to be a terminal: progress is a bar redrawn in place. */
  tty?: boolean;
}

/** Runs the command in-process, as the bin would, with streams that record what it writes. */
export async function cli(argv: string[], options: CliRunOptions = {}): Promise<CliRun> {
  const stdout = { text: '', write: (s: string) => (stdout.text += s) };
  const stderr = { text: '', isTTY: options.tty ?? false, write: (s: string) => (stderr.text += s) };
  const code = await main(argv, { stdout, stderr, env: options.env ?? {}, signal: options.signal });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
