/**
 * Every error the package raises on purpose extends DualWriteError and carries a stable `code`.
 * Callers branch on `code` (or `instanceof`), never on the message, which may be reworded.
 */
export type ErrorCode =
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'DUPLICATE_JOB'
  | 'IDEMPOTENCY_CONFLICT'
  | 'STATUS_CONFLICT'
  | 'KEY_TYPE'
  | 'OUT_OF_MEMORY'
  | 'SCRIPT_MISMATCH'
  | 'REDIS_UNAVAILABLE'
  | 'UNSUPPORTED_REDIS'
  | 'NO_PERMISSION'
  | 'CLAIM_CONFLICT'
  | 'CLAIM_CONTENTION'
  | 'EVICTION_POLICY'
  | 'WRONG_STAGE'
  | 'VERIFY_NOT_CLEAN'
  | 'CROSS_SLOT'
  | 'STAGE_UNSET'
  | 'STAGE_CHANGED'
  | 'TRANSITION_REFUSED'
  | 'MANAGED_LAYOUT';

export abstract class DualWriteError extends Error {
  abstract readonly code: ErrorCode;
  /** From enqueueMany: the position (0-based) of the job in the batch that the error is about. */
  index?: number;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input, found before anything is sent to Redis. `rule` is a stable machine-readable name. */
export class ValidationError extends DualWriteError {
  readonly code = 'VALIDATION' as const;
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(`${field}: ${message} (rule: ${rule})`);
  }
}

export class NotFoundError extends DualWriteError {
  readonly code = 'NOT_FOUND' as const;
  constructor(
    readonly workspaceId: string,
    readonly jobId: string,
  ) {
    super(`job ${jobId} not found in workspace ${workspaceId}`);
  }
}

export class DuplicateJobError extends DualWriteError {
  readonly code = 'DUPLICATE_JOB' as const;
  constructor(
    readonly workspaceId: string,
    readonly jobId: string,
    /** The layout in which the jobId already exists. */
    readonly layout: 'legacy' | 'new',
  ) {
    super(`job ${jobId} already exists in the ${layout} layout; nothing was written`);
  }
}

export class IdempotencyConflictError extends DualWriteError {
  readonly code = 'IDEMPOTENCY_CONFLICT' as const;
  constructor(
    readonly workspaceId: string,
    readonly idempotencyKey: string,
    /** The job the key was first used for. */
    readonly originalJobId: string,
  ) {
    super(
      `idempotency key ${idempotencyKey} was used for job ${originalJobId} with a different ` +
        `request (type, payload or jobId); nothing was written`,
    );
  }
}

export class StatusConflictError extends DualWriteError {
  readonly code = 'STATUS_CONFLICT' as const;
  constructor(
    readonly jobId: string,
    /** The status the job had to have: the caller's expectedStatus, or the one a rule requires. */
    readonly expected: string,
    readonly actual: string,
    /** Why `expected` was required, when the caller did not ask for it. */
    why?: string,
  ) {
    super(`job ${jobId} has status ${actual}, expected ${expected}${why ? ` (${why})` : ''}; nothing was written`);
  }
}

export class KeyTypeError extends DualWriteError {
  readonly code = 'KEY_TYPE' as const;
  constructor(
    readonly key: string,
    readonly expectedType: string,
    readonly actualType: string,
  ) {
    super(`key ${key} holds a ${actualType}, expected a ${expectedType}; nothing was written`);
  }
}

export class OutOfMemoryError extends DualWriteError {
  readonly code = 'OUT_OF_MEMORY' as const;
  constructor(cause: unknown) {
    super('Redis is over maxmemory and refused the write before it started; nothing was written', {
      cause,
    });
  }
}

/** Redis holds a different script under a name's sha1 than the manifest says: a corrupt deploy. */
export class ScriptMismatchError extends DualWriteError {
  readonly code = 'SCRIPT_MISMATCH' as const;
  constructor(
    readonly script: string,
    readonly expectedSha1: string,
    readonly actualSha1: string,
  ) {
    super(`script ${script}: Redis returned sha1 ${actualSha1}, the manifest says ${expectedSha1}`);
  }
}

export class RedisUnavailableError extends DualWriteError {
  readonly code = 'REDIS_UNAVAILABLE' as const;
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

export class UnsupportedRedisError extends DualWriteError {
  readonly code = 'UNSUPPORTED_REDIS' as const;
  constructor(readonly version: string) {
    super(`Redis ${version} is not supported: redis-dual-write needs Redis 7.0 or later`);
  }
}

/** The Redis ACL user may not run a command the package needs. */
export class PermissionError extends DualWriteError {
  readonly code = 'NO_PERMISSION' as const;
  constructor(
    /** The refused command, e.g. 'SCRIPT LOAD' or 'EVAL'. */
    readonly command: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/** maxmemory-policy lets Redis evict keys, which silently deletes jobs. */
export class EvictionPolicyError extends DualWriteError {
  readonly code = 'EVICTION_POLICY' as const;
  constructor(readonly policy: string) {
    super(`maxmemory-policy is ${policy}: Redis may evict job keys and lose jobs; set it to noeviction`);
  }
}

/** A migration step that is unsafe in the stage the service runs in; nothing was done. */
export class WrongStageError extends DualWriteError {
  readonly code = 'WRONG_STAGE' as const;
  constructor(
    readonly operation: string,
    readonly stage: string,
    readonly allowedStages: readonly string[],
  ) {
    super(`${operation} is refused in stage ${stage}; it runs in: ${allowedStages.join(', ')}`);
  }
}

/** Cleanup found divergences in its own verify, so no legacy key may go yet; nothing was deleted. */
export class VerifyNotCleanError extends DualWriteError {
  readonly code = 'VERIFY_NOT_CLEAN' as const;
  constructor(
    /** Divergences by kind, as the verify report counted them (only kinds above zero). */
    readonly divergences: Readonly<Record<string, number>>,
    /** A few of them, to start from: the key and, for field_mismatch, the fields that differ. */
    readonly samples: readonly { kind: string; key: string; fields?: readonly string[] }[] = [],
  ) {
    const found = Object.entries(divergences).map(([kind, count]) => `${kind} ${count}`).join(', ');
    super(`cleanup refused: verify found divergences (${found}); nothing was deleted`);
  }
}

/** An update guarded by a workerId came from a worker that does not hold the job's claim. */
export class ClaimConflictError extends DualWriteError {
  readonly code = 'CLAIM_CONFLICT' as const;
  constructor(
    readonly jobId: string,
    /** The worker the update came from. */
    readonly workerId: string,
    /** The worker holding the claim, or '' when the job is not claimed. */
    readonly claimant: string,
    /** Why the claim mattered, when the call was not a worker's (say, a delete). */
    why?: string,
  ) {
    super(
      why
        ? `job ${jobId} is claimed by ${claimant}: ${why}; nothing was written`
        : claimant
          ? `job ${jobId} is claimed by ${claimant}, not ${workerId}; nothing was written`
          : `job ${jobId} is not claimed, so ${workerId} may not finish it; nothing was written`,
    );
  }
}

/** So many workers raced for the same entries that a claim lost every try; retry after a pause. */
export class ClaimContentionError extends DualWriteError {
  readonly code = 'CLAIM_CONTENTION' as const;
  constructor(readonly attempts: number) {
    super(`lost the race for a queue entry ${attempts} times in a row; nothing was claimed`);
  }
}

/**
 * In Redis Cluster one script may only touch keys of one hash slot, and this call's keys (or, at
 * construction, the key layout's keys for one operation) span several. Nothing was sent.
 */
export class CrossSlotError extends DualWriteError {
  readonly code = 'CROSS_SLOT' as const;
  constructor(
    /** The operation (or script) whose keys span slots. */
    readonly operation: string,
    /** The first key of the call and the first key in another slot than it. */
    readonly keys: readonly { key: string; slot: number }[],
  ) {
    const [first, other] = keys;
    super(
      `${operation}: key ${first.key} is in hash slot ${first.slot} and ${other.key} in slot ${other.slot}, but in ` +
        'Redis Cluster one script may only touch keys of one slot, so this operation could not be atomic. Use the ' +
        "preset `keys: clusterLayout('<tag>')`, which puts every key of a queue behind the hash tag {<tag>}, or " +
        'give every key of your layout the same {hash tag}. Nothing was sent.',
    );
  }
}

/** Managed mode found no stage record for the layout. Nothing was written. */
export class StageUnsetError extends DualWriteError {
  readonly code = 'STAGE_UNSET' as const;
  constructor(
    /** The stage record's key. */
    readonly key: string,
  ) {
    super(
      `no stage record at ${key}: a managed queue takes its stage from there. Create it once for the layout with ` +
        '`redis-dual-write stage init <stage> --reason "..."` (or Migration.initStage); nothing was written',
    );
  }
}

/**
 * The stage changed while a call that spans several scripts was running, and it kept changing on
 * every restart (or, for a migration run, the run stopped so it never mixes two stages). Nothing of
 * the interrupted script was written; run the call again.
 */
export class StageChangedError extends DualWriteError {
  readonly code = 'STAGE_CHANGED' as const;
  constructor(
    readonly operation: string,
    /** The epoch the call started under, and the one it found. */
    readonly startedEpoch: string,
    readonly currentEpoch: string,
  ) {
    super(`${operation}: the stage changed from epoch ${startedEpoch} to ${currentEpoch} while it ran; run it again`);
  }
}

/** A stage transition that a guard refused; nothing changed. `force` with a reason overrides it. */
export class TransitionRefusedError extends DualWriteError {
  readonly code = 'TRANSITION_REFUSED' as const;
  constructor(
    readonly from: string,
    readonly to: string,
    /** The guard's stable name, e.g. 'one_step', 'backfill_needed', 'verify_needed'. */
    readonly rule: string,
    /** What would satisfy it. */
    readonly remedy: string,
  ) {
    super(`stage ${from} -> ${to} refused (${rule}): ${remedy}; nothing changed`);
  }
}

/**
 * A static-mode step that must be recorded in the layout's stage record, run while the layout has
 * one: a cleanup that deletes legacy records must raise the record's count of them, or the guard
 * that stops rollbacks into stages reading the legacy layout never hears of it. Nothing was written.
 */
export class ManagedLayoutError extends DualWriteError {
  readonly code = 'MANAGED_LAYOUT' as const;
  constructor(
    readonly operation: string,
    /** The stage record's key, and the stage it holds. */
    readonly key: string,
    readonly stage: string,
  ) {
    super(
      `${operation} with yes in static mode is refused: the layout's stage record ${key} (stage ${stage}) manages it, and ` +
        'the stage guard that stops rollbacks into stages reading the legacy layout would never hear of these deletions; ' +
        'nothing was deleted. Run it in managed mode: `redis-dual-write cleanup --yes` (without --stage), or ' +
        "new Migration({ stage: 'managed' }).cleanup({ yes: true })",
    );
  }
}
