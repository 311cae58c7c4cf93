import type { Cluster, Redis } from 'ioredis';
import { Migration, STAGES, type DualWriteQueue } from '../../src';
import { record } from '../migrate/fixtures';
import { jobFields } from './state';

/**
 * Every call of the service API in every stage, and every path of each that reaches Redis: ready()
 * (which loads the scripts), enqueue and its replay, enqueueMany, updateStatus (guarded by the
 * expected status, by the worker, and repairing a job only the legacy layout holds), getJob,
 * listJobs and its next pages (one whose cursor's job left the index), claim (a job, and an entry with no job, which goes to the orphans list),
 * recoverStalled (a claim whose time is up), the worker lifecycle (extendClaim, updateStatus with an
 * error and a result under retention, requeue, deleteJob, maintain), and a script resent with EVAL
 * after the cache was emptied. The queue is managed: every script reads the stage record, which `admin` moves through
 * the stages; `admin` also arranges what the calls find (a legacy job with an expiry, which the
 * repair copies, and entries with no job).
 */
export async function everyServiceCall(queue: DualWriteQueue, admin: Redis | Cluster, flushScripts: () => Promise<void>): Promise<number> {
  let calls = 0;
  const call = async <T>(work: Promise<T>): Promise<T> => {
    calls++;
    return work;
  };
  const operator = new Migration({ redis: admin, stage: 'managed', queueName: queue.queueName, keys: queue.keys, metrics: false });
  await operator.initStage('off', { reason: 'tour' });
  await operator.configure({ retention: { succeeded: 3600, failed: 3600, cancelled: 3600 } });
  await admin.hset(queue.keys.legacyJob('old'), jobFields(record('old', 'acme')));
  await admin.pexpire(queue.keys.legacyJob('old'), 3_600_000);
  await call(queue.ready());
  for (const stage of STAGES) {
    if (stage !== 'off') await operator.setStage(stage, { reason: 'tour', force: true });
    const request = { workspaceId: 'acme', type: 't', payload: { stage }, jobId: `a-${stage}`, idempotencyKey: `request-${stage}` };
    await call(queue.enqueue(request));
    await call(queue.enqueue(request));
    await call(queue.enqueueMany([
      { workspaceId: 'globex', type: 't', payload: 'batch', jobId: `g-${stage}` },
      { workspaceId: 'globex', type: 't', payload: 'batch', jobId: `h-${stage}` },
    ]));
    // Started outside the queue's workers: it leaves the queue. h's entry was popped by a consumer
    // of the legacy kind, so its update looks for it in vain.
    await call(queue.updateStatus({ workspaceId: 'globex', jobId: `g-${stage}`, status: 'running', expectedStatus: 'queued' }));
    const hEntry = (await admin.lrange(queue.keys.queue(queue.queueName), 0, -1)).find((entry) => entry.endsWith(`h-${stage}`))!;
    await admin.lrem(queue.keys.queue(queue.queueName), 1, hEntry);
    await call(queue.updateStatus({ workspaceId: 'globex', jobId: `h-${stage}`, status: 'running' }));
    await call(queue.updateStatus({ workspaceId: 'globex', jobId: `h-${stage}`, status: 'failed' }));
    await call(queue.requeue({ workspaceId: 'globex', jobId: `h-${stage}` }));
    await call(queue.getJob({ workspaceId: 'acme', jobId: `a-${stage}` }));
    const page = await call(queue.listJobs({ workspaceId: 'globex', limit: 1 }));
    // Once, the job the cursor names leaves the index between the pages: the next page is found by score.
    if (stage === 'shadow') await admin.zrem(queue.keys.workspaceIndex('globex'), page.jobs[0].id);
    await call(queue.listJobs({ workspaceId: 'globex', limit: 1, cursor: page.nextCursor! }));
    await admin.lpush(queue.keys.queue(queue.queueName), `ghost-${stage}`);
    const claimed = await call(queue.claim({ workerId: 'w1' }));
    if (claimed) await call(queue.updateStatus({ workspaceId: claimed.workspaceId, jobId: claimed.id, status: 'succeeded', workerId: 'w1' }));
    await call(queue.claim({ workerId: 'w2', visibilityTimeoutMs: 1 }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await call(queue.recoverStalled());
    // The worker lifecycle: the recovered job again, its claim extended, failed with an error and a
    // result (retention sets its expiry), requeued (which lifts it), then deleted while it waits.
    const held = await call(queue.claim({ workerId: 'w3' }));
    if (held) {
      const job = { workspaceId: held.workspaceId, jobId: held.id };
      await call(queue.extendClaim({ ...job, workerId: 'w3', visibilityTimeoutMs: 60_000 }));
      await call(queue.updateStatus({ ...job, status: 'failed', workerId: 'w3', error: 'boom', result: { partial: true } }));
      await call(queue.requeue({ ...job, reason: 'retry 1 of 3' }));
      await call(queue.deleteJob(job));
    }
    // A job made with an idempotency key, deleted with it; and a job retention removed, swept.
    await call(queue.deleteJob({ workspaceId: 'acme', jobId: `a-${stage}` }));
    await admin.zadd(queue.keys.expiries(queue.queueName), 1, `acme:gone-${stage}`);
    await call(queue.maintain());
    if (stage === 'dualwrite') await call(queue.updateStatus({ workspaceId: 'acme', jobId: 'old', status: 'running' }));
    if (stage === 'live') {
      await flushScripts();
      await call(queue.getJob({ workspaceId: 'acme', jobId: 'old' }));
    }
  }
  return calls;
}
