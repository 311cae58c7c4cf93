import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { Migration } from './migrate/migration';
import type { Logger } from './logger';
import { DualWriteQueue } from './queue';
import { startRedis } from './testing';

/**
 * The README's walkthrough: a job from before the migration, dual writes, a read that falls back,
 * an update that repairs, a verify that finds the layouts equal, a worker that takes the jobs, and
 * the metrics that saw it all.
 * Runs against a Redis it starts itself; `npm run demo` and `redis-dual-write demo` both run this.
 */
export async function runDemo(say: (text: string) => void): Promise<void> {
  const step = (text: string) => say(`\n== ${text}`);
  const show = (label: string, value: unknown) => say(`   ${label}: ${JSON.stringify(value)}`);
  const server = await startRedis();
  const redis = new Redis(server.url);
  const registry = new Registry();
  const logger: Logger = {
    debug() {},
    info: (message) => say(`   [log info] ${message}`),
    warn: (message) => say(`   [log warn] ${message}`),
    error: (message) => say(`   [log error] ${message}`),
  };
  try {
    say(`redis-dual-write demo against ${server.url} (${server.via})`);
    const queue = new DualWriteQueue({ redis, queueName: 'default', stage: 'off', metrics: { registry }, logger });
    await queue.ready();

    step("stage 'off': the service writes the legacy layout only");
    const old = await queue.enqueue({ workspaceId: 'acme', type: 'email.send', payload: { to: 'ops@acme.test' } });
    show('enqueue', old);
    const untouched = await queue.enqueue({ workspaceId: 'acme', type: 'report.build', payload: { month: '2024-01' } });
    show('enqueue', untouched);
    show('keys', await keys(redis));

    step("stage 'dualwrite': every write reaches both layouts in one script");
    queue.setStage('dualwrite');
    const request = { workspaceId: 'acme', type: 'invoice.render', payload: { invoice: 42 }, idempotencyKey: 'invoice-42' };
    show('enqueue', await queue.enqueue(request));
    show('same idempotency key again', await queue.enqueue(request));
    show('keys', await keys(redis));

    step("stage 'live': reads prefer the new layout and fall back to the legacy one");
    queue.setStage('live');
    const fallback = await queue.getJob({ workspaceId: 'acme', jobId: old.jobId });
    show('getJob (old job)', { id: fallback?.id, status: fallback?.status, source: fallback?.source });

    step('an update of the old job copies it into the new layout and updates both');
    show('updateStatus', await queue.updateStatus({ workspaceId: 'acme', jobId: old.jobId, status: 'running' }));
    const repaired = await queue.getJob({ workspaceId: 'acme', jobId: old.jobId });
    show('getJob (old job)', { id: repaired?.id, status: repaired?.status, source: repaired?.source });

    step('listJobs reads the workspace index, newest first');
    const page = await queue.listJobs({ workspaceId: 'acme', limit: 10 });
    show('jobs', page.jobs.map((job) => ({ id: job.id, type: job.type, status: job.status, source: job.source })));

    step('backfill copies the job nothing touched since off; verify proves the layouts equal');
    const migration = new Migration({ redis, stage: 'live', metrics: { registry } });
    const backfilled = await migration.backfill();
    show('backfill', backfilled.results);
    const verified = await migration.verify();
    show('verify', { clean: verified.clean, checked: verified.checked });

    step('a worker claims the jobs it finds queued, runs them and finishes them');
    for (let job = await queue.claim({ workerId: 'demo-worker' }); job; job = await queue.claim({ workerId: 'demo-worker' })) {
      const finished = await queue.updateStatus({ workspaceId: job.workspaceId, jobId: job.id, status: 'succeeded', workerId: 'demo-worker' });
      show(`claimed ${job.type}`, { id: job.id, was: finished.previousStatus, now: finished.status });
    }
    show('queue and processing set', { queued: await redis.llen('queue:default'), claimed: await redis.zcard('queue:default:processing') });

    step('metrics (non-zero series)');
    for (const text of (await registry.metrics()).split('\n')) {
      if (text.startsWith('dualwrite_') && !text.includes('_bucket') && !text.endsWith(' 0')) say(`   ${text}`);
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

async function keys(redis: Redis): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 100);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}
