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

/**
 * Exit codes: 0 only on success. 1 and 3 tell a deploy gate two different things: 1 means the run
 * worked and found something a person must look at; 3 means the run itself could not be done, so
 * it says nothing about the data.
 */
export const EXIT = {
  ok: 0,
  /** a person must look: conflicts, skipped records, divergences, missing scripts, a refusal */
  attention: 1,
  /** the command line was wrong; nothing was sent to Redis */
  usage: 2,
  /** the run itself failed: connection, TLS, authentication, permission, timeout, a crash */
  failed: 3,
  /** stopped by Ctrl-C (128 + SIGINT) */
  interrupted: 130,
} as const;

export class UsageError extends Error {}

export function line(stream: CliStream, text = ''): void {
  stream.write(`${text}\n`);
}
