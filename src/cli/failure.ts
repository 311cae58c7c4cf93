import {
  CrossSlotError,
  DualWriteError,
  ManagedLayoutError,
  ScriptMismatchError,
  StageChangedError,
  StageUnsetError,
  TransitionRefusedError,
  ValidationError,
  VerifyNotCleanError,
  WrongStageError,
} from '../errors';
import { translateRedisError } from '../scripts/replies';
import { EXIT, UsageError } from './io';
import type { Target } from './target';

/**
 * Why a run could not be done, as the command reports it: a stable `code` for --json and a message
 * that names the target without its password.
 */
export class CommandFailure extends Error {
  constructor(
    readonly code: 'REDIS_UNAVAILABLE' | 'TIMEOUT' | 'AUTHENTICATION_FAILED' | 'NO_PERMISSION' | 'TLS_FAILED' | 'NOT_A_CLUSTER' | 'CLUSTER_NOT_READY',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The one place an error becomes an exit code. 2: the command line was wrong (on a cluster, a layout
 * that splits an operation over slots means --tag is missing). 1: the run was refused or found a
 * script that differs, which a person must look at: so are a refused transition, a layout without
 * its stage record, a managed run the stage changed under, and a static cleanup beside a record. 3: everything else, meaning the run
 * itself failed (unreachable, TLS, authentication, permission, timeout, a crash) and proved nothing.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError || error instanceof ValidationError || error instanceof CrossSlotError) return EXIT.usage;
  if (
    error instanceof VerifyNotCleanError ||
    error instanceof WrongStageError ||
    error instanceof ScriptMismatchError ||
    error instanceof TransitionRefusedError ||
    error instanceof StageUnsetError ||
    error instanceof StageChangedError ||
    error instanceof ManagedLayoutError
  ) {
    return EXIT.attention;
  }
  return EXIT.failed;
}

/** The stable code --json prints for an error. */
export function errorCode(error: unknown): string {
  if (error instanceof UsageError || error instanceof ValidationError) return 'USAGE';
  if (error instanceof DualWriteError || error instanceof CommandFailure) return error.code;
  return 'ERROR';
}

/** What --json adds to an error's code and message: the facts a script acts on. */
export function errorFacts(error: unknown): Record<string, unknown> {
  if (error instanceof TransitionRefusedError) return { from: error.from, to: error.to, rule: error.rule, remedy: error.remedy };
  if (error instanceof StageUnsetError) return { key: error.key };
  if (error instanceof ManagedLayoutError) return { operation: error.operation, key: error.key, stage: error.stage };
  if (error instanceof StageChangedError) return { operation: error.operation, startedEpoch: error.startedEpoch, currentEpoch: error.currentEpoch };
  return {};
}

/**
 * An error met while the run talked to Redis, said in the operator's terms: the client's own words
 * ("Command timed out", "Connection is closed.") name neither the target nor the flag to change.
 */
export function duringRun(error: unknown, target: Target): unknown {
  const translated = translateRedisError(error);
  if (translated !== error || !(error instanceof Error) || error instanceof CommandFailure) return translated;
  // The library's readiness check wraps what the client said; a timeout is still ours to name.
  const timedOut = error.message === 'Command timed out' || (error.cause instanceof Error && error.cause.message === 'Command timed out');
  if (error instanceof DualWriteError && !timedOut) return error;
  if (timedOut) {
    return new CommandFailure(
      'TIMEOUT',
      `Redis at ${target.shown} did not answer a command within ${target.commandTimeoutMs} ms (--command-timeout)`,
      { cause: error },
    );
  }
  if (isAuthenticationError(error)) return authenticationFailure(error, target);
  if (error.message.startsWith('Connection is closed') || error.name === 'MaxRetriesPerRequestError' || isSocketError(error)) {
    return new CommandFailure('REDIS_UNAVAILABLE', `lost the connection to Redis at ${target.shown}: ${error.message}`, { cause: error });
  }
  return error;
}

export function isAuthenticationError(error: Error): boolean {
  return /^(WRONGPASS|NOAUTH)\b/.test(error.message) || /invalid (username-)?password/i.test(error.message);
}

export function authenticationFailure(error: Error, target: Target): CommandFailure {
  return new CommandFailure(
    'AUTHENTICATION_FAILED',
    `authentication failed at ${target.shown}: ${error.message} (check the user and password in the URL)`,
    { cause: error },
  );
}

function isSocketError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code);
}
