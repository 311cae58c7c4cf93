import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as timers from 'node:timers/promises';
import ts from 'typescript';
import * as pkg from '../../src';
import type { DualWriteQueue, Job } from '../../src';
import { makeQueue, metricValue, useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();

interface WorkerOptions {
  workerId: string;
  visibilityTimeoutMs?: number;
  maxAttempts?: number;
}
interface ReadmeLoop {
  runWorker(queue: DualWriteQueue, options: WorkerOptions, handle: (job: Job) => Promise<unknown>, signal: AbortSignal): Promise<void>;
  runMaintenance(queue: DualWriteQueue, signal: AbortSignal, everyMs?: number): Promise<void>;
}

/** The README's worker loop, compiled from the README itself so the docs cannot drift from the code. */
function readmeLoop(): ReadmeLoop {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const source = /```ts\n(import [^\n]*\n(?:(?!```)[\s\S])*?export async function runWorker[\s\S]*?)\n```\n/.exec(readme)?.[1];
  if (!source) throw new Error('README.md has no ```ts block with runWorker');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } });
  const module = { exports: {} as Partial<ReadmeLoop> };
  const modules: Record<string, unknown> = { 'redis-dual-write': pkg, 'node:timers/promises': timers };
  new Function('module', 'exports', 'require', outputText)(module, module.exports, (name: string) => {
    if (!(name in modules)) throw new Error(`the README loop requires ${name}`);
    return modules[name];
  });
  return module.exports as ReadmeLoop;
}

it("the README's loop: a long job kept by its heartbeat, results and errors stored, a retry budget, and retention swept", async () => {
  const { runWorker, runMaintenance } = readmeLoop();
  const { queue, registry } = await makeQueue(ctx.redis, 'dualwrite', { retention: { succeeded: 2, failed: 2 } });
  const ids: string[] = [];
  for (let n = 0; n < 5; n++) ids.push((await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n } })).jobId);
  const stop = new AbortController();
  const runs: number[] = [];

  // n=1 outlives its 300 ms visibility timeout; n=3 fails once; n=4 always fails (2 attempts allowed).
  const handle = async (job: Job) => {
    const { n } = job.payload as { n: number };
    runs.push(n);
    if (n === 1) await timers.setTimeout(800);
    if (n === 4 || (n === 3 && job.attempts === 1)) throw new Error(`job ${n} failed on attempt ${job.attempts}`);
    return { doubled: n * 2 };
  };
  const maintenance = runMaintenance(queue, stop.signal, 50);
  const workers = Promise.all([
    runWorker(queue, { workerId: 'w1', visibilityTimeoutMs: 300, maxAttempts: 2 }, handle, stop.signal),
    runWorker(queue, { workerId: 'w2', visibilityTimeoutMs: 300, maxAttempts: 2 }, handle, stop.signal),
  ]);
  const finished = async () => {
    const jobs = await Promise.all(ids.map((jobId) => queue.getJob({ workspaceId: 'acme', jobId })));
    return jobs.every((job) => job && (job.status === 'succeeded' || (job.status === 'failed' && job.attempts === 2)));
  };
  while (!(await finished())) await timers.setTimeout(20);
  const jobs = await Promise.all(ids.map((jobId) => queue.getJob({ workspaceId: 'acme', jobId })));
  stop.abort();
  await Promise.all([workers, maintenance]);

  // The long job ran once: its heartbeat kept the claim past three timeouts.
  expect(runs.sort()).toEqual([0, 1, 2, 3, 3, 4, 4]);
  expect(await metricValue(registry, 'dualwrite_stalled_recoveries_total')).toBe(0);
  expect(jobs.map((job) => [job!.status, job!.attempts, job!.result, job!.error])).toEqual([
    ['succeeded', 1, { doubled: 0 }, undefined],
    ['succeeded', 1, { doubled: 2 }, undefined],
    ['succeeded', 1, { doubled: 4 }, undefined],
    ['succeeded', 2, { doubled: 6 }, 'job 3 failed on attempt 1'],
    ['failed', 2, undefined, 'job 4 failed on attempt 2'],
  ]);
  expect(await metricValue(registry, 'dualwrite_requeues_total', { from: 'failed' })).toBe(2);

  // Retention: both copies of every job expire within 2 s; one maintenance pass leaves nothing.
  while ((await ctx.redis.exists(...ids.flatMap((id) => [`job:${id}`, `ws:acme:job:${id}`]))) > 0) await timers.setTimeout(100);
  expect((await queue.listJobs({ workspaceId: 'acme' })).jobs).toEqual([]);
  // One pass of the maintenance loop: the abort ends its wait.
  const once = new AbortController();
  const pass = runMaintenance(queue, once.signal, 10_000);
  once.abort();
  await pass;
  expect(await redisState(ctx.redis)).toEqual({});
  expect(await metricValue(registry, 'dualwrite_retention_removals_total')).toBe(5);
});
