import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import * as pkg from '../../src';
import type { DualWriteQueue, Job } from '../../src';
import { makeQueue, useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();

type RunWorker = (queue: DualWriteQueue, workerId: string, handle: (job: Job) => Promise<void>, signal: AbortSignal) => Promise<void>;

/** The README's worker loop, compiled from the README itself so the docs cannot drift from the code. */
function readmeWorker(): RunWorker {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const source = /```ts\n(import type[^`]*export async function runWorker[^`]*)```/.exec(readme)?.[1];
  if (!source) throw new Error('README.md has no ```ts block with runWorker');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } });
  const module = { exports: {} as { runWorker?: RunWorker } };
  new Function('module', 'exports', 'require', outputText)(module, module.exports, (name: string) => {
    if (name !== 'redis-dual-write') throw new Error(`the README loop requires ${name}`);
    return pkg;
  });
  return module.exports.runWorker!;
}

it("the README's worker loop claims, runs and finishes every job, failing the ones whose handler throws", async () => {
  const runWorker = readmeWorker();
  const { queue } = await makeQueue(ctx.redis, 'live');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: i } })).jobId);
  const stop = new AbortController();
  const seen: number[] = [];

  await runWorker(
    queue,
    'readme-worker',
    async (job) => {
      const n = (job.payload as { n: number }).n;
      seen.push(n);
      if (seen.length === ids.length) stop.abort();
      if (n === 3) throw new Error('handler failed');
    },
    stop.signal,
  );

  expect(seen).toEqual([0, 1, 2, 3, 4]);
  const statuses = await Promise.all(ids.map(async (jobId) => (await queue.getJob({ workspaceId: 'acme', jobId }))?.status));
  expect(statuses).toEqual(['succeeded', 'succeeded', 'succeeded', 'failed', 'succeeded']);
  const keys = Object.keys(await redisState(ctx.redis));
  expect(keys.filter((key) => key.startsWith('queue:'))).toEqual([]);
});
