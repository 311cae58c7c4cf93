import { StatusConflictError, type DualWriteQueue } from '../../src';
import type { JobLedger } from './job-ledger';

/**
 * A service enqueueing at a steady rate, every request with an idempotency key, some of them sent
 * again (a retry right away, or the same request seconds later, past the key's TTL or not), and a
 * few jobs cancelled while they wait. Every answer is checked against the key's lifetime, by the
 * clock Redis and this process share: a replay while the key lives must name the job the key names;
 * a new job for a request is allowed only once the key can have expired.
 */
export interface ProducerOptions {
  queue: DualWriteQueue;
  ledger: JobLedger;
  /** Enqueue calls to make, new requests and replays together. */
  calls: number;
  perSecond: number;
  workspaces: readonly string[];
  idempotencyTtlSeconds: number;
  random: () => number;
  /** Chances per call: send an earlier request again (from the last 3 TTLs), or the same one right after its answer. */
  replayChance: number;
  retryChance: number;
  /** Chance a new job is cancelled while it waits. */
  cancelChance: number;
  /** After each call, with the number made so far. */
  onCall?: (calls: number) => void;
}

export interface ProducerCounts {
  /** Calls made: enqueues and cancels. */
  operations: number;
  requests: number;
  created: number;
  /** Replays answered with the job the key names (nothing written). */
  replaysSameJob: number;
  /** Of those, replays whose job retention had already removed. */
  replaysOfRemovedJob: number;
  /** Replays sent after the key could have expired that made a new job: allowed, a new request. */
  replaysNewJob: number;
  cancelled: number;
  /** Cancels that lost to a claim (STATUS_CONFLICT): the job runs instead. */
  cancelsTooLate: number;
  /** A new job made while the request's key must still have held (the key failed its purpose). */
  duplicates: string[];
  /** A replay answered from a key that must have expired, or naming another job than the key's. */
  wrongReplays: string[];
  errors: Record<string, number>;
}

interface Request {
  key: string;
  workspaceId: string;
  payload: unknown;
  /** Each job the request made: when the making call was sent and answered (this process' clock). */
  generations: { jobId: string; sentAt: number; answeredAt: number }[];
}

export async function produce(options: ProducerOptions): Promise<ProducerCounts> {
  const { queue, ledger, random } = options;
  const ttlMs = options.idempotencyTtlSeconds * 1000;
  const counts: ProducerCounts = {
    operations: 0, requests: 0, created: 0, replaysSameJob: 0, replaysOfRemovedJob: 0, replaysNewJob: 0,
    cancelled: 0, cancelsTooLate: 0, duplicates: [], wrongReplays: [], errors: {},
  };
  const requests: Request[] = [];
  const started = Date.now();

  const send = async (request: Request): Promise<void> => {
    const sentAt = Date.now();
    counts.operations++;
    const answer = await queue.enqueue({ workspaceId: request.workspaceId, type: 'soak.lifecycle', payload: request.payload, idempotencyKey: request.key });
    const answeredAt = Date.now();
    const latest = request.generations.at(-1);
    if (answer.created) {
      // The key the latest job set expired TTL after that call ran (at or after it was sent): a new
      // job before then means the key did not hold.
      if (latest && answeredAt <= latest.sentAt + ttlMs) counts.duplicates.push(`${request.key}: ${latest.jobId}, then ${answer.jobId}`);
      if (latest) counts.replaysNewJob++;
      request.generations.push({ jobId: answer.jobId, sentAt, answeredAt });
      ledger.enqueued(request.workspaceId, answer.jobId, request.key);
      counts.created++;
      if (random() < options.cancelChance) await cancel(request.workspaceId, answer.jobId);
      return;
    }
    // A replay: the key was still there when the call ran (at or before it was answered).
    if (!latest || answer.jobId !== latest.jobId) counts.wrongReplays.push(`${request.key}: answered ${answer.jobId}, made ${latest?.jobId ?? 'nothing'}`);
    else if (sentAt > latest.answeredAt + ttlMs) counts.wrongReplays.push(`${request.key}: key outlived its ${options.idempotencyTtlSeconds} s`);
    counts.replaysSameJob++;
    const outcome = ledger.job(request.workspaceId, answer.jobId)?.outcomes[0];
    if (outcome?.expiresAt && outcome.expiresAt <= sentAt) counts.replaysOfRemovedJob++;
  };

  const cancel = async (workspaceId: string, jobId: string): Promise<void> => {
    counts.operations++;
    try {
      const done = await queue.updateStatus({ workspaceId, jobId, status: 'cancelled', expectedStatus: 'queued' });
      ledger.finished(workspaceId, jobId, { status: 'cancelled', attempt: ledger.job(workspaceId, jobId)!.claims.length, expiresAt: done.expiresAt });
      counts.cancelled++;
    } catch (error) {
      if (!(error instanceof StatusConflictError)) throw error;
      counts.errors.STATUS_CONFLICT = (counts.errors.STATUS_CONFLICT ?? 0) + 1;
      counts.cancelsTooLate++;
    }
  };

  for (let call = 0; call < options.calls; call++) {
    // A steady rate: call n goes out at n / perSecond, however long the ones before took.
    const due = started + (call * 1000) / options.perSecond;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const recent = requests.filter((r) => r.generations.at(-1)!.sentAt >= Date.now() - 3 * ttlMs);
    let request: Request;
    if (recent.length > 0 && random() < options.replayChance) {
      request = recent[Math.floor(random() * recent.length)];
    } else {
      request = {
        key: `request-${call}`,
        workspaceId: options.workspaces[call % options.workspaces.length],
        payload: { call, note: 'x'.repeat(100 + Math.floor(random() * 200)) },
        generations: [],
      };
      requests.push(request);
      counts.requests++;
    }
    await send(request);
    if (random() < options.retryChance) await send(request);
    options.onCall?.(call + 1);
  }
  return counts;
}
