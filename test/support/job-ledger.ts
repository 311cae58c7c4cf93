import type { Job } from '../../src';

/**
 * What workers were told about each job, written down as they were told it, and checked at the end
 * against the promises of the worker lifecycle: a job is held by one claim at a time, attempts
 * counts claims, and every job a caller was told exists ends exactly once. Times are the server's
 * (a claim's updated_at, an extend's deadline), so the order is Redis', not the order replies
 * reached this process.
 */

export type ClaimEnd =
  /** The worker finished the job (a terminal updateStatus with its workerId went through). */
  | 'finished'
  /** The worker gave the running job back (requeue with its workerId), or failed it and requeued it. */
  | 'handed_back'
  /** The worker died holding it: recoverStalled must take it back, once its deadline passed. */
  | 'abandoned'
  /** The worker came back after its deadline and was refused (CLAIM_CONFLICT): recoverStalled took it. */
  | 'refused';

export interface ClaimRecord {
  worker: string;
  /** The job's attempts as this claim made it. */
  attempt: number;
  /** Server ms: the updated_at the claim wrote. */
  claimedAt: number;
  /** Server ms: the last deadline the worker was given, by the claim or an extend. */
  deadline: number;
  /** Server ms of each extend that went through. */
  extendedAt: number[];
  end?: ClaimEnd;
}

export type FinalStatus = 'succeeded' | 'failed' | 'cancelled';

export interface Outcome {
  status: FinalStatus;
  /** The claim that ended the job (0: cancelled before any claim). */
  attempt: number;
  /** When retention removes it (server ms), or null when it stays. */
  expiresAt: number | null;
  result?: unknown;
  error?: string;
}

export interface LedgerJob {
  workspaceId: string;
  jobId: string;
  /** The idempotency key it was made with. */
  request: string;
  claims: ClaimRecord[];
  outcomes: Outcome[];
}

export type LedgerViolationKind =
  | 'unknown_job' // a claim handed out a job no caller was told exists
  | 'attempts' // the claims' attempts are not 1, 2, ... n
  | 'overlap' // a claim began while an earlier one still held the job
  | 'ended_off_claim' // the job ended under a claim that was not its latest, or was claimed after it ended
  | 'finished_twice'
  | 'not_finished'; // lost: never ended

export interface LedgerViolation {
  kind: LedgerViolationKind;
  job: string;
  detail: string;
}

export class JobLedger {
  readonly jobs = new Map<string, LedgerJob>();
  private readonly unknown: string[] = [];

  enqueued(workspaceId: string, jobId: string, request: string): void {
    this.jobs.set(id(workspaceId, jobId), { workspaceId, jobId, request, claims: [], outcomes: [] });
  }

  job(workspaceId: string, jobId: string): LedgerJob | undefined {
    return this.jobs.get(id(workspaceId, jobId));
  }

  claimed(job: Job, worker: string, visibilityMs: number): ClaimRecord {
    const claim: ClaimRecord = { worker, attempt: job.attempts, claimedAt: job.updatedAt, deadline: job.updatedAt + visibilityMs, extendedAt: [] };
    const known = this.job(job.workspaceId, job.id);
    if (known) known.claims.push(claim);
    else this.unknown.push(id(job.workspaceId, job.id));
    return claim;
  }

  extended(claim: ClaimRecord, deadline: number, visibilityMs: number): void {
    claim.deadline = deadline;
    claim.extendedAt.push(deadline - visibilityMs);
  }

  finished(workspaceId: string, jobId: string, outcome: Outcome): void {
    this.job(workspaceId, jobId)!.outcomes.push(outcome);
  }

  /** Every job that ended, with its one outcome. */
  *ended(): Generator<[LedgerJob, Outcome]> {
    for (const job of this.jobs.values()) if (job.outcomes.length === 1) yield [job, job.outcomes[0]];
  }

  violations(): LedgerViolation[] {
    const found: LedgerViolation[] = this.unknown.map((job) => ({ kind: 'unknown_job' as const, job, detail: 'claimed, never enqueued' }));
    for (const job of this.jobs.values()) {
      const where = id(job.workspaceId, job.jobId);
      const violate = (kind: LedgerViolationKind, detail: string) => found.push({ kind, job: where, detail });
      const claims = [...job.claims].sort((a, b) => a.attempt - b.attempt);
      claims.forEach((claim, i) => {
        if (claim.attempt !== i + 1) violate('attempts', `claim ${i + 1} of ${claims.length} counted attempt ${claim.attempt}`);
      });
      for (let i = 1; i < claims.length; i++) {
        const [earlier, later] = [claims[i - 1], claims[i]];
        // One worker's last word on a claim comes before the next claim begins; and unless that worker
        // handed the job back, the next claim waits for its deadline (recoverStalled's rule).
        const lastWord = Math.max(earlier.claimedAt, ...earlier.extendedAt);
        if (later.claimedAt <= lastWord) violate('overlap', `${later.worker} claimed at ${later.claimedAt}, ${earlier.worker} still acted at ${lastWord}`);
        const handedBack = earlier.end === 'finished' || earlier.end === 'handed_back';
        if (!handedBack && later.claimedAt < earlier.deadline) {
          violate('overlap', `${later.worker} claimed at ${later.claimedAt}, before ${earlier.worker}'s deadline ${earlier.deadline}`);
        }
      }
      if (job.outcomes.length === 0) violate('not_finished', `${claims.length} claims, no outcome`);
      if (job.outcomes.length > 1) violate('finished_twice', job.outcomes.map((o) => o.status).join(', '));
      const [outcome] = job.outcomes;
      if (outcome && outcome.attempt !== claims.length) {
        violate('ended_off_claim', `ended ${outcome.status} at attempt ${outcome.attempt}, ${claims.length} claims`);
      }
    }
    return found;
  }
}

const id = (workspaceId: string, jobId: string) => `${workspaceId}/${jobId}`;
