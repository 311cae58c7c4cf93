/**
 * The legacy service running beside the package, as it did before: a Python program (redis-py) that
 * writes jobs with HSET then RPUSH, with dotted ids, and consumes the same queue with LPOP, updating
 * the legacy record only and expiring finished jobs. Meanwhile the package enqueues, claims and
 * finishes in dualwrite and verify runs. Every job must be taken exactly once by one consumer or the
 * other, nothing may be set aside, and a resync must bring the layouts level.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DualWriteQueue } from '../../src';
import { makeMigration } from '../migrate/fixtures';
import { useRedis } from '../support/redis';
import { describeWhen } from '../support/requires';
import { redisState } from '../support/state';

const PYTHON = process.env.LEGACY_PYTHON ?? '/usr/bin/python3';
const SERVICE = join(__dirname, '..', 'support', 'legacy', 'legacy_service.py');

const probe = spawnSync(PYTHON, ['-c', 'import redis'], { encoding: 'utf8' });
const python = { supported: probe.status === 0, reason: `${PYTHON} cannot import redis` };

const ctx = useRedis();

function runLegacyService(url: string, jobs: number, seconds: number): Promise<{ written: number; consumed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SERVICE, url, 'queue:default', String(jobs), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`legacy service exited ${code}: ${err}`))));
  });
}

describeWhen(python, 'the legacy service beside the package', "install Debian's python3-redis, or set LEGACY_PYTHON", () => {
  it('in dualwrite: every job taken exactly once, none set aside, verify runs throughout, and a resync levels the layouts', async () => {
    const clients = Array.from({ length: 3 }, () => new Redis(ctx.handle.url));
    const [producer, workerA, workerB] = clients.map((redis) => new DualWriteQueue({ heartbeat: false, redis, stage: 'dualwrite', metrics: false }));
    await producer.ready();
    const stop = new AbortController();
    let finished = 0;
    let tookLegacyJobs = 0;
    const work = async (queue: DualWriteQueue, workerId: string) => {
      while (!stop.signal.aborted) {
        // Polling as often as the legacy consumer does, so both take jobs of both writers.
        const job = await queue.claim({ workerId });
        if (!job) {
          await new Promise((resolve) => setTimeout(resolve, 3));
          continue;
        }
        if (job.id.startsWith('order.')) tookLegacyJobs += 1;
        await queue.updateStatus({ workspaceId: job.workspaceId, jobId: job.id, status: 'succeeded', workerId });
        finished += 1;
      }
    };
    const ours: string[] = [];
    try {
      const legacy = runLegacyService(ctx.handle.url, 150, 3);
      const workers = [work(workerA, 'pkg-a'), work(workerB, 'pkg-b')];
      const verifies: number[] = [];
      for (let i = 0; i < 150; i++) {
        ours.push((await producer.enqueue({ workspaceId: `ws${i % 3}`, type: 'pkg.send', payload: { i } })).jobId);
        if (i % 50 === 0) {
          const report = await makeMigration(ctx.redis, 'dualwrite').migration.verify({ batchSize: 20 });
          verifies.push(report.completed ? 1 : 0);
        }
      }
      const service = await legacy;
      while ((await ctx.redis.llen('queue:default')) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      stop.abort();
      await Promise.all(workers);

      expect(service.written).toBe(150);
      expect(verifies).toEqual([1, 1, 1]);
      expect(finished + service.consumed).toBe(300);
      expect(tookLegacyJobs).toBeGreaterThan(0);
      const state = await redisState(ctx.redis);
      for (const key of ['queue:default', 'queue:default:processing', 'queue:default:claims', 'queue:default:orphans', 'queue:default:unsupported']) {
        expect({ key, state: state[key] }).toEqual({ key, state: undefined });
      }

      // The legacy service wrote and updated the legacy layout alone: a resync brings the new one level.
      const resynced = await makeMigration(ctx.redis, 'dualwrite').migration.backfill({ mode: 'resync' });
      const verified = await makeMigration(ctx.redis, 'dualwrite').migration.verify();
      expect(resynced.results.conflict + resynced.results.skipped).toBe(0);
      expect(verified.divergences).toEqual(Object.fromEntries(Object.keys(verified.divergences).map((kind) => [kind, 0])));
      const statuses = await Promise.all(
        [...ours.map((id, i) => ({ id, ws: `ws${i % 3}` })), ...Array.from({ length: 150 }, (_, i) => ({ id: `order.${i}`, ws: `ws${i % 3}` }))].map(
          async ({ id, ws }) => (await producer.getJob({ workspaceId: ws, jobId: id }))?.status,
        ),
      );
      expect(statuses.filter((status) => status !== 'succeeded')).toEqual([]);
    } finally {
      stop.abort();
      for (const redis of clients) redis.disconnect();
    }
  });
});
