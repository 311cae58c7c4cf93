import {
  ClaimConflictError,
  DuplicateJobError,
  IdempotencyConflictError,
  KeyTypeError,
  NotFoundError,
  OutOfMemoryError,
  PermissionError,
  StatusConflictError,
} from '../errors';

/** What a reply code needs to become an error the caller can act on. */
export interface ReplyContext {
  workspaceId: string;
  jobId: string;
  idempotencyKey?: string;
  expectedStatus?: string;
  workerId?: string;
}

/**
 * The one place where a script's refusal becomes a typed error. Every script replies with an array
 * whose first element is a code; success codes are handled by the caller, the rest land here.
 */
export function errorForReply(reply: readonly unknown[], context: ReplyContext): Error {
  const [code, a, b, c] = reply.map(String);
  switch (code) {
    case 'WRONGTYPE':
      return new KeyTypeError(a, b, c);
    case 'NOT_FOUND':
      return new NotFoundError(context.workspaceId, context.jobId);
    case 'DUPLICATE':
      return new DuplicateJobError(context.workspaceId, context.jobId, a as 'legacy' | 'new');
    case 'IDEMPOTENCY_CONFLICT':
      return new IdempotencyConflictError(context.workspaceId, context.idempotencyKey ?? '', a);
    case 'STATUS_CONFLICT':
      return new StatusConflictError(
        context.jobId,
        b ?? context.expectedStatus ?? '',
        a,
        c === 'queued_only'
          ? "status 'queued' puts no entry on the queue, so only a queued job may be set to it: requeue() puts a failed, cancelled or given-back job back on the queue"
          : undefined,
      );
    case 'CLAIM_CONFLICT':
      return new ClaimConflictError(context.jobId, context.workerId ?? '', a);
    case 'NO_PERMISSION':
      return new PermissionError(a, `the Redis user may not run ${a} on ${b}; nothing was written`);
    default:
      return new Error(`unexpected script reply ${JSON.stringify(reply)}`);
  }
}

/** Redis refusals that mean something to the caller; anything else passes through unchanged. */
export function translateRedisError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  if (error.message.startsWith('OOM ')) return new OutOfMemoryError(error);
  // NOPERM when the call itself is refused; an ERR naming the script when a command inside it is.
  if (error.message.startsWith('NOPERM') || error.message.includes("user executing the script can't")) {
    const command = /run the '([^']+)' command/.exec(error.message)?.[1]?.toUpperCase().replace('|', ' ') ?? 'a command';
    return new PermissionError(command, `the Redis user may not run ${command}: ${error.message}`, error);
  }
  return error;
}
