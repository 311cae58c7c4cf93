import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { Migration } from './migrate/migration';
import type { Logger } from './logger';
import { DualWriteQueue } from './queue';
import type { Stage } from './stages';
import { startRedis } from './testing';

/**
 * The README's walkthrough: a service instance in managed mode follows the layout's stage record
 * while an operator moves it from off to live, each step behind its guard: jobs from before the
 * migration, dual writes with an idempotent replay, an update that repairs, a backfill, a verify
 * that finds the layouts equal, a worker that takes the jobs, and where the migration stands.
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
    const operator = new Migration({ redis, stage: 'managed', metrics: { registry } });
    await operator.ready();
    const move = async (to: Stage, reason: string) => {
      const result = await operator.setStage(to, { reason, by: 'demo' });
      show('stage set', { from: result.from, to: result.to, epoch: result.epoch });
    };

    step("the operator creates the layout's stage record at 'off'; the service runs in managed mode");
    show('stage init', await operator.initStage('off', { reason: 'before the migration', by: 'demo' }));
    const queue = new DualWriteQueue({ redis, stage: 'managed', metrics: { registry }, logger, instanceId: 'demo-service' });
    await queue.ready();
    show('queue.stage', queue.stage);

    step("stage 'off': the service writes the legacy layout only");
    const old = await queue.enqueue({ workspaceId: 'acme', type: 'email.send', payload: { to: 'ops@acme.test' } });
    show('enqueue', old);
    const untouched = await queue.enqueue({ workspaceId: 'acme', type: 'report.build', payload: { month: '2024-01' } });
    show('enqueue', untouched);
    show('keys', await keys(redis));

    step("stage 'dualwrite': one transition moves every instance; each write now reaches both layouts in one script");
    await move('dualwrite', 'start dual writes');
    const request = { workspaceId: 'acme', type: 'invoice.render', payload: { invoice: 42 }, idempotencyKey: 'invoice-42' };
    show('enqueue', await queue.enqueue(request));
    show('same idempotency key again', await queue.enqueue(request));
    show('queue.stage', { stage: queue.stage, epoch: queue.epoch });

    step('an update of a job from before (its owner cancels it) copies it into the new layout and updates both');
    show('updateStatus', await queue.updateStatus({ workspaceId: 'acme', jobId: old.jobId, status: 'cancelled' }));

    step("leaving 'dualwrite' needs a backfill: the guard refuses until one has run in this stage");
    const refused = await operator.setStage('shadow', { reason: 'too early', by: 'demo' }).catch((error: Error & { rule?: string }) => error);
    show('stage set shadow', { refused: (refused as { rule?: string }).rule });
    const backfilled = await operator.backfill();
    show('backfill', backfilled.results);
    await move('shadow', 'backfill done');

    step("entering 'live' needs a clean verify in this stage; then reads come from the new layout");
    const verified = await operator.verify();
    show('verify', { clean: verified.clean, checked: verified.checked });
    await move('live', 'verify clean');
    const job = await queue.getJob({ workspaceId: 'acme', jobId: untouched.jobId });
    show('getJob', { id: job?.id, status: job?.status, source: job?.source });
    const page = await queue.listJobs({ workspaceId: 'acme', limit: 10 });
    show('listJobs', page.jobs.map((j) => ({ id: j.id, type: j.type, status: j.status, source: j.source })));

    step('a worker claims the jobs it finds queued, runs them and finishes them');
    for (let next = await queue.claim({ workerId: 'demo-worker' }); next; next = await queue.claim({ workerId: 'demo-worker' })) {
      const finished = await queue.updateStatus({ workspaceId: next.workspaceId, jobId: next.id, status: 'succeeded', workerId: 'demo-worker' });
      show(`claimed ${next.type}`, { id: next.id, was: finished.previousStatus, now: finished.status });
    }

    step('where the migration stands (redis-dual-write status shows the same)');
    const status = await operator.status();
    show('record', { stage: status.record?.stage, epoch: status.record?.epoch, by: status.record?.changedBy, reason: status.record?.reason });
    show('history', status.history.map((entry) => `${entry.from || '(init)'} -> ${entry.to}`));
    show('instances (heartbeats)', status.instances.map((instance) => ({ id: instance.id, mode: instance.mode, version: instance.version })));
    show('next', status.next_steps.map((next) => next.command));

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
