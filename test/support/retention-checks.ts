import { isDeepStrictEqual } from 'node:util';
import type Redis from 'ioredis';
import type { DualWriteQueue } from '../../src';
import type { JobLedger } from './job-ledger';

/**
 * Checks of jobs retention removes: that each ended job is in Redis as its workers were told, or
 * was removed by retention at its time, and that the sweep leaves nothing due.
 */

export interface OutcomeCheck {
  /** Ended jobs whose records are there, in both layouts, as told. */
  present: number;
  /** Ended jobs retention removed, at or after the expiry the finishing call returned. */
  removed: number;
  /** Succeeded jobs still carrying an earlier attempt's error beside their result. */
  succeededWithEarlierError: number;
  /** Jobs gone before their expiry, or that were never to expire: lost. */
  vanished: string[];
  /** Jobs whose records disagree with each other or with what the workers were told. */
  wrong: string[];
}

/** Reads both records of every ended job, 200 jobs per MULTI, so each job is seen at one instant. */
export async function checkOutcomes(redis: Redis, ledger: JobLedger): Promise<OutcomeCheck> {
  const check: OutcomeCheck = { present: 0, removed: 0, succeededWithEarlierError: 0, vanished: [], wrong: [] };
  const ended = [...ledger.ended()];
  for (let i = 0; i < ended.length; i += 200) {
    const batch = ended.slice(i, i + 200);
    const multi = redis.multi();
    for (const [job] of batch) {
      const legacyKey = `job:${job.jobId}`;
      const newKey = `ws:${job.workspaceId}:job:${job.jobId}`;
      multi.hgetall(legacyKey).hgetall(newKey).call('PEXPIRETIME', legacyKey).call('PEXPIRETIME', newKey);
    }
    const replies = (await multi.exec())!.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
    const readAt = Date.now();
    batch.forEach(([job, outcome], j) => {
      const [legacy, fresh] = replies.slice(4 * j, 4 * j + 2) as Record<string, string>[];
      const [legacyExpiresAt, newExpiresAt] = replies.slice(4 * j + 2, 4 * j + 4).map(Number);
      const where = `${job.workspaceId}/${job.jobId}`;
      const wrong = (detail: string) => check.wrong.push(`${where}: ${detail}`);
      const legacyThere = Object.keys(legacy).length > 0;
      const newThere = Object.keys(fresh).length > 0;
      if (!legacyThere && !newThere) {
        if (outcome.expiresAt !== null && readAt >= outcome.expiresAt) check.removed++;
        else check.vanished.push(`${where}: ${outcome.status}, expires ${outcome.expiresAt}, gone at ${readAt}`);
        return;
      }
      if (!legacyThere || !newThere) return wrong(`only the ${legacyThere ? 'legacy' : 'new'} record`);
      check.present++;
      if (!isDeepStrictEqual(legacy, fresh)) wrong(`layouts differ: ${JSON.stringify(legacy)} vs ${JSON.stringify(fresh)}`);
      if (legacyExpiresAt !== newExpiresAt) wrong(`expiries differ: legacy ${legacyExpiresAt}, new ${newExpiresAt}`);
      if (newExpiresAt !== (outcome.expiresAt ?? -1)) wrong(`expires at ${newExpiresAt}, the finishing call said ${outcome.expiresAt}`);
      if (fresh.status !== outcome.status) wrong(`status ${fresh.status}, told ${outcome.status}`);
      if (Number(fresh.attempts ?? 0) !== job.claims.length) wrong(`attempts ${fresh.attempts}, ${job.claims.length} claims`);
      if (outcome.result !== undefined && !isDeepStrictEqual(JSON.parse(fresh.result ?? 'null'), outcome.result)) wrong(`result ${fresh.result}`);
      if (outcome.error !== undefined && fresh.error !== outcome.error) wrong(`error ${fresh.error}, told ${outcome.error}`);
      if (outcome.status === 'succeeded' && fresh.error !== undefined) check.succeededWithEarlierError++;
    });
  }
  return check;
}

export interface SweepResult {
  removed: number;
  rescheduled: number;
  kept: number;
  /** Entries of the expiries set still due after the sweep: must be 0. */
  due: number;
}

/** maintain() until a call finds nothing due, as an operator's last sweep would. */
export async function sweepUntilClean(queue: DualWriteQueue, redis: Redis, expiriesKey: string): Promise<SweepResult> {
  const total = { removed: 0, rescheduled: 0, kept: 0 };
  for (let calls = 0; calls < 10_000; calls++) {
    const swept = await queue.maintain();
    total.removed += swept.removed;
    total.rescheduled += swept.rescheduled;
    total.kept += swept.kept;
    if (swept.removed + swept.rescheduled + swept.kept === 0) break;
  }
  return { ...total, due: await redis.zcount(expiriesKey, '-inf', Date.now()) };
}
