#!/usr/bin/env node
// npm run bench [-- --quick] [--jobs N] [--runs 5] [--only a,b] [--no-write] [--server BIN]
// (--quick: 2,000 jobs and 1 round; by default 20,000 jobs and 5 rounds, as a shared machine's noise needs)
// Starts its own Redis, warms up, runs every scenario once per round for `runs` rounds, then prints
// the Targets table (each target a ratio of two scenarios of the same round, the median over the
// rounds) and writes bench/results.json (every round's figures), bench/jobs-per-second.svg and
// docs/BENCHMARKS.md. Not a test: nothing here asserts a timing.
// --server BIN runs it on that server binary (a redis-server or valkey-server, as for REDIS_SERVER_BIN)
// and files the run under bench/servers/ instead: docs/BENCHMARKS.md shows each server's ratios side by side.
const { parseArgs } = require('node:util');
const Redis = require('ioredis');
const { Queue } = require('bullmq');
const { startRedis } = require('../../dist/testing');
const { scenarios } = require('./scenarios');
const { measure, median } = require('./measure');
const { memoryPerJob } = require('./memory');
const { lifecycleRates } = require('./lifecycle');
const { report } = require('./report');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    runs: { type: 'string' },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    server: { type: 'string' },
  },
});
// The harness starts what REDIS_SERVER_BIN names, by the path given (never resolved: see src/testing).
if (flags.server) process.env.REDIS_SERVER_BIN = flags.server;
const jobs = Number(flags.jobs ?? (flags.quick ? 2_000 : 20_000));
const runs = Number(flags.runs ?? (flags.quick ? 1 : 5));
const only = flags.only ? new Set(flags.only.split(',')) : undefined;
// How this run was made, for the docs; a server's path is this machine's, so only its kind is shown.
const args = process.argv.slice(2).map((arg, i, all) => (all[i - 1] === '--server' ? '<binary>' : arg.replace(/^--server=.*/, '--server=<binary>')));
const command = `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;

async function main() {
  const server = await startRedis({ via: flags.server ? 'binary' : undefined, serverArgs: ['--appendonly', 'no', '--save', ''] });
  const redis = new Redis(server.url);
  const url = new URL(server.url);
  const bullmq = new Queue('bench', { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    // Rounds go over every scenario in turn, so drift on a shared machine (a noisy neighbour, the
    // server's memory growing) spreads over all of them instead of billing whichever ran first.
    // Round 0 warms up the connection, the JIT, the script cache and the server's memory.
    const chosen = Object.entries(scenarios).filter(([name]) => !only || only.has(name));
    const rounds = Object.fromEntries(chosen.map(([name]) => [name, []]));
    const groups = {};
    for (let round = 0; round <= runs; round++) {
      // Every other round runs backwards, so a drift (the machine getting busier) that favours a
      // target's first scenario in one round favours its second in the next.
      for (const [name, scenario] of round % 2 ? chosen : [...chosen].reverse()) {
        // SYNC: a lazy flush (Valkey 8+'s default) would free the last scenario's keys on a server
        // thread while the next one is measured, billing its CPU to that scenario.
        await redis.flushall('SYNC');
        const plan = await scenario({ redis, jobs, bullmq, url });
        if (!plan) continue;
        groups[name] = plan.group;
        const result = await measure(redis, plan);
        if (round > 0) rounds[name].push(result);
      }
      process.stdout.write(`round ${round} of ${runs} done${round === 0 ? ' (warm-up)' : ''}\n`);
    }
    // Each figure's median over the rounds, for the scenario table; the targets take their ratios
    // round by round (see targets.js).
    const results = {};
    for (const [name, measured] of Object.entries(rounds)) {
      if (measured.length === 0) continue;
      const figure = (field) => median(measured.map((r) => r[field]));
      results[name] = { group: groups[name], jobsPerSecond: figure('jobsPerSecond'), p50Ms: figure('p50Ms'), p99Ms: figure('p99Ms'), serverCpuUsPerJob: figure('serverCpuUsPerJob'), scriptUsPerCall: figure('scriptUsPerCall'), scriptP50Us: figure('scriptP50Us'), rounds: measured };
      process.stdout.write(`${name.padEnd(44)} ${Math.round(results[name].jobsPerSecond)} jobs/s\n`);
    }
    await redis.flushall('SYNC');
    if (!only || only.has('lifecycle')) Object.assign(results, await lifecycleRates(redis, flags.quick ? 2_000 : 10_000));
    const memory = !only || only.has('memory') ? await memoryPerJob(redis, bullmq, flags.quick ? 2_000 : 10_000) : {};
    await report({ results, memory, jobs, runs, command, write: !flags['no-write'], redis, server: flags.server });
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
