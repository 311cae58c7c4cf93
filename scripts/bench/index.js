#!/usr/bin/env node
// npm run bench [-- --quick] [--jobs N] [--runs 3] [--only a,b] [--no-write]
// Starts its own Redis (or uses REDIS_URL), warms up, runs every scenario `runs` times in rounds and
// keeps each one's median, then prints ratios against the baselines and writes bench/results.json, bench/jobs-per-second.svg
// and docs/BENCHMARKS.md. Not a test: nothing here asserts a timing.
const { parseArgs } = require('node:util');
const Redis = require('ioredis');
const { Queue } = require('bullmq');
const { startRedis } = require('../../dist/testing');
const { scenarios } = require('./scenarios');
const { measure, median } = require('./measure');
const { memoryPerJob } = require('./memory');
const { redisBenchmark } = require('./redis-benchmark');
const { lifecycleRates } = require('./lifecycle');
const { report } = require('./report');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    runs: { type: 'string' },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const jobs = Number(flags.jobs ?? (flags.quick ? 2_000 : 20_000));
const runs = Number(flags.runs ?? (flags.quick ? 1 : 3));
const only = flags.only ? new Set(flags.only.split(',')) : undefined;

async function main() {
  const server = await startRedis({ serverArgs: ['--appendonly', 'no', '--save', ''] });
  const redis = new Redis(server.url);
  const url = new URL(server.url);
  const bullmq = new Queue('bench', { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    // Rounds go over every scenario in turn, so drift on a shared machine (a noisy neighbour, the
    // server's memory growing) spreads over all of them instead of billing whichever ran first.
    // Round 0 warms up the connection, the JIT, the script cache and the server's memory.
    const chosen = Object.entries(scenarios).filter(([name]) => !only || only.has(name));
    const measured = new Map(chosen.map(([name]) => [name, []]));
    const groups = new Map();
    for (let round = 0; round <= runs; round++) {
      for (const [name, scenario] of chosen) {
        await redis.flushall();
        const plan = await scenario({ redis, jobs, bullmq });
        groups.set(name, plan.group);
        const result = await measure(redis, plan);
        if (round > 0) measured.get(name).push(result);
      }
      process.stdout.write(`round ${round} of ${runs} done${round === 0 ? ' (warm-up)' : ''}\n`);
    }
    const results = {};
    for (const [name] of chosen) {
      results[name] = { group: groups.get(name), ...median(measured.get(name), (r) => r.jobsPerSecond) };
      process.stdout.write(`${name.padEnd(34)} ${Math.round(results[name].jobsPerSecond)} jobs/s\n`);
    }
    await redis.flushall();
    if (!only || only.has('redis-benchmark')) {
      const server = await redisBenchmark(url, jobs);
      if (server) results['redis-benchmark (EVALSHA, pipelined)'] = server;
    }
    if (!only || only.has('lifecycle')) Object.assign(results, await lifecycleRates(redis, flags.quick ? 2_000 : 10_000));
    const memory = !only || only.has('memory') ? await memoryPerJob(redis, bullmq, flags.quick ? 2_000 : 10_000) : {};
    await report({ results, memory, jobs, runs, quick: flags.quick, write: !flags['no-write'], redis });
  } finally {
    await bullmq.close();
    redis.disconnect();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
