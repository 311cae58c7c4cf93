// Turns one bench run into the table on stdout, bench/results.json, the SVG chart and
// docs/BENCHMARKS.md. Ratios only compare figures of this one run.
const { mkdirSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { renderChart } = require('./chart');

const ROOT = join(__dirname, '..', '..');

/** The targets: [what, our scenario, baseline scenario, target, direction]. */
const TARGETS = [
  ['enqueue x64 vs bullmq add x64', 'enqueue x64', 'bullmq add x64', 1.6, 'at least'],
  ['enqueue x64 vs redis-benchmark (same script)', 'enqueue x64', 'redis-benchmark (EVALSHA, pipelined)', 0.9, 'at least'],
  ['enqueueMany x100 vs bullmq addBulk x100 (1 batch in flight)', 'enqueueMany x100', 'bullmq addBulk x100', 2.5, 'at least'],
  ['enqueueMany x100 vs bullmq addBulk x100 (4 batches in flight)', 'enqueueMany x100 (4 in flight)', 'bullmq addBulk x100 (4 in flight)', 2.5, 'at least'],
  ['enqueue x1 vs separate commands x1', 'enqueue x1', 'separate commands x1', 2.5, 'at least'],
];

function ratioRows(results, memory) {
  const rows = TARGETS.map(([what, ours, base, target, direction]) => {
    const ratio = results[ours] && results[base] ? results[ours].jobsPerSecond / results[base].jobsPerSecond : null;
    return { what, ratio, target, direction };
  });
  const script = results['enqueue x64']?.scriptUsPerCall;
  const bare = results['bare 5-write script x64']?.scriptUsPerCall;
  rows.push({ what: 'server µs per enqueue call vs bare 5-write script', ratio: script && bare ? script / bare : null, target: 1.3, direction: 'at most' });
  for (const [payload, bytes] of Object.entries(memory)) {
    const mine = bytes['package, dualwrite'];
    const layout = bytes['same keys by hand (dualwrite layout)'];
    rows.push({ what: `memory per job (dualwrite, ${payload}) vs the same keys by hand`, ratio: mine && layout ? mine / layout : null, target: 1.1, direction: 'at most' });
  }
  return rows.map((row) => ({
    ...row,
    met: row.ratio === null ? null : row.direction === 'at least' ? row.ratio >= row.target : row.ratio <= row.target,
  }));
}

async function environment(redis) {
  const info = await redis.info('server');
  const version = (name) => require(`${name}/package.json`).version;
  return {
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
    node: process.version,
    redis: /redis_version:([^\r\n]+)/.exec(info)?.[1],
    ioredis: version('ioredis'),
    bullmq: version('bullmq'),
    date: new Date().toISOString(),
  };
}

const fixed = (value, digits) => (value === null || value === undefined ? '-' : Number(value).toFixed(digits));

function resultTable(results) {
  const lines = ['| scenario | group | jobs/s | p50 ms | p99 ms | server CPU µs/job | script µs/call |', '| --- | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const [name, r] of Object.entries(results)) {
    lines.push(`| ${name} | ${r.group} | ${Math.round(r.jobsPerSecond)} | ${fixed(r.p50Ms, 3)} | ${fixed(r.p99Ms, 3)} | ${fixed(r.serverCpuUsPerJob, 1)} | ${fixed(r.scriptUsPerCall, 1)} |`);
  }
  return lines.join('\n');
}

function ratioTable(rows) {
  const lines = ['| target | measured | wanted | met |', '| --- | ---: | ---: | :---: |'];
  for (const row of rows) {
    lines.push(`| ${row.what} | ${fixed(row.ratio, 2)}× | ${row.direction} ${row.target}× | ${row.met === null ? '-' : row.met ? 'yes' : 'no'} |`);
  }
  return lines.join('\n');
}

function memoryTable(memory) {
  const payloads = Object.keys(memory);
  const writers = Object.keys(memory[payloads[0]] ?? {});
  const lines = [`| writer | ${payloads.join(' | ')} |`, `| --- |${payloads.map(() => ' ---: |').join('')}`];
  for (const writer of writers) lines.push(`| ${writer} | ${payloads.map((p) => Math.round(memory[p][writer])).join(' | ')} |`);
  return lines.join('\n');
}

async function report({ results, memory, jobs, runs, quick, write, redis }) {
  const env = await environment(redis);
  const ratios = ratioRows(results, memory);
  const command = `npm run bench${quick ? ' -- --quick' : ''}`;
  console.log(`\n${resultTable(results)}\n\n${ratioTable(ratios)}\n`);
  if (Object.keys(memory).length > 0) console.log(`${memoryTable(memory)}\n`);
  if (!write) return;
  mkdirSync(join(ROOT, 'bench'), { recursive: true });
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ env, command, jobs, runs, results, ratios, memory }, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench', 'jobs-per-second.svg'), renderChart(results));
  writeFileSync(join(ROOT, 'docs', 'BENCHMARKS.md'), markdown({ env, command, jobs, runs, results, ratios, memory }));
  console.log('wrote bench/results.json, bench/jobs-per-second.svg and docs/BENCHMARKS.md');
}

function markdown({ env, command, jobs, runs, results, ratios, memory }) {
  return `# Benchmarks

One run of \`${command}\`: ${runs} round(s) over every scenario, ${jobs} jobs each, after a warm-up
round, and each scenario's median run is shown. Client and server share the machine, so absolute numbers hold only for
it; the ratios are what to read.

- Machine: ${env.machine}
- Node ${env.node}, Redis ${env.redis}, ioredis ${env.ioredis}, bullmq ${env.bullmq}
- Run at ${env.date}; Redis started by the harness with persistence off

![jobs per second per scenario](../bench/jobs-per-second.svg)

## Targets

${ratioTable(ratios)}

## Scenarios

\`xN\` is the number of calls in flight; \`x100\` for the batch scenarios is the batch size, with
one batch in flight unless the name says otherwise. "server CPU µs/job" is the server's user+system CPU over the run divided by the
jobs; "script µs/call" is INFO commandstats' time per EVALSHA (the whole script).

${resultTable(results)}

## Memory per job

Bytes of Redis memory per job, by payload size (JSON bytes). Redis keeps a hash in its compact
listpack encoding while every value is at most 64 bytes (\`hash-max-listpack-value\`), so the
larger payload moves the job hashes to the bigger hashtable encoding for every writer.

${memoryTable(memory)}

## Reading the figures

- Redis runs scripts on one thread, so with many calls in flight every writer is bound by the
  server's CPU per job, not by the client: compare the "server CPU µs/job" column before jobs/s.
- The package's enqueue does what the bare 5-write script does, plus the checks that make it safe
  (key types, the idempotency key, duplicate jobIds, ACL permission for each write). Their price is
  the gap between the two "script µs/call" figures.
- With one call in flight, each call wakes the server from idle; that fixed cost per round trip is
  why one script beats four separate commands by about the number of round trips saved, not more.
- Memory is the layout's own: while dual writing a job is two hashes (each with the payload), a
  queue entry, an index entry and the idempotency key; the package adds nothing of its own.

What a job costs: while dual writing, two hashes (each holding the payload), a queue entry, an index
entry and, with an idempotency key, that key for its TTL; in \`complete\`, one hash fewer.
`;
}

module.exports = { report };
