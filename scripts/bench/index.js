#!/usr/bin/env node
// npm run bench [-- --quick] [--jobs N] [--runs 3] [--only a,b] [--no-write]
// Starts its own Redis (or uses REDIS_URL), warms up, runs each scenario `runs` times and keeps the
// median, then prints ratios against the baselines and writes bench/results.json, bench/jobs-per-second.svg
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
    const results = {};
    for (const [name, scenario] of Object.entries(scenarios)) {
      if (only && !only.has(name)) continue;
      const measured = [];
      let group;
      for (let run = 0; run < runs + 1; run++) {
        await redis.flushall();
        const plan = await scenario({ redis, jobs, bullmq });
        group = plan.group;
        const result = await measure(redis, plan);
        // Run 0 warms up the connection, the JIT, the script cache and the server's memory: Redis
        // pays page faults for memory it touches first, which would bill whichever scenario ran first.
        if (run > 0) measured.push(result);
      }
      results[name] = { group, ...median(measured, (r) => r.jobsPerSecond) };
      process.stdout.write(`${name.padEnd(28)} ${Math.round(results[name].jobsPerSecond)} jobs/s\n`);
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
