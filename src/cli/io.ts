/** Where the command writes; process.stdout and process.stderr fit, and so do test buffers. */
export interface CliStream {
  write(text: string): unknown;
  /** A terminal gets a redrawn progress bar; anything else gets plain progress lines. */
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: long runs stop after the batch in flight. */
  signal?: AbortSignal;
}

/** Exit codes: 0 only on success. */
export const EXIT = {
  ok: 0,
  /** the run ended but found something that needs a person, or failed */
  failed: 1,
  /** the command line was wrong */
  usage: 2,
  /** stopped by Ctrl-C (128 + SIGINT) */
  interrupted: 130,
} as const;

export class UsageError extends Error {}

export function line(stream: CliStream, text = ''): void {
  stream.write(`${text}\n`);
}
