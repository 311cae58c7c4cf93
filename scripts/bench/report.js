// Turns one bench run into the tables on stdout, bench/results.json, the SVG chart and
// docs/BENCHMARKS.md. Ratios only compare figures of this one run.
const { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { renderChart } = require('./chart');
const { SCRIPTS } = require('./bare');
const { targetRows, medianCallRows, stageReadRows, metOf } = require('./targets');

const ROOT = join(__dirname, '..', '..');
const MAIN_RESULTS = join(ROOT, 'bench', 'results.json');
const SERVERS_DIR = join(ROOT, 'bench', 'servers');
const RUNS_KEPT = 5;

async function environment(redis) {
  const info = await redis.info('server');
  const version = (name) => require(`${name}/package.json`).version;
  const valkey = /valkey_version:([^\r\n]+)/.exec(info)?.[1];
  return {
    // Valkey reports redis_version:7.2.4 for compatibility: name the server by its own version.
    server: valkey ? `Valkey ${valkey}` : `Redis ${/redis_version:([^\r\n]+)/.exec(info)?.[1]}`,
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
    node: process.version,
    redis: /redis_version:([^\r\n]+)/.exec(info)?.[1],
    ioredis: version('ioredis'),
    bullmq: version('bullmq'),
    date: new Date().toISOString(),
  };
}

const fixed = (value, digits) => (value === null || value === undefined ? '-' : Number(value).toFixed(digits));
const verdict = (met) => (met === null ? '-' : met ? 'met' : 'not met');

function resultTable(results) {
  const lines = ['| scenario | group | jobs/s | p50 ms | p99 ms | server CPU µs/job | script µs/call | median script call µs |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const [name, r] of Object.entries(results)) {
    lines.push(`| ${name} | ${r.group} | ${Math.round(r.jobsPerSecond)} | ${fixed(r.p50Ms, 3)} | ${fixed(r.p99Ms, 3)} | ${fixed(r.serverCpuUsPerJob, 1)} | ${fixed(r.scriptUsPerCall, 1)} | ${fixed(r.scriptP50Us, 1)} |`);
  }
  return lines.join('\n');
}

function targetTable(rows) {
  const lines = ['| target | median | each round | wanted | met |', '| --- | ---: | ---: | ---: | :---: |'];
  for (const row of rows) {
    lines.push(`| ${row.what} | ${fixed(row.median, 2)}× | ${row.rounds.map((v) => fixed(v, 2)).join(', ')} | ${row.direction} ${row.wanted}× | ${verdict(row.met)} |`);
  }
  return lines.join('\n');
}

function stageReadTable(rows) {
  const lines = ['| managed − static, server µs per call | median | each round |', '| --- | ---: | ---: |'];
  for (const row of rows) lines.push(`| ${row.what} | ${fixed(row.median, 1)} | ${row.rounds.map((v) => fixed(v, 1)).join(', ')} |`);
  return lines.join('\n');
}

function memoryTable(memory) {
  const payloads = Object.keys(memory);
  const writers = Object.keys(memory[payloads[0]] ?? {});
  const lines = [`| writer | ${payloads.join(' | ')} |`, `| --- |${payloads.map(() => ' ---: |').join('')}`];
  for (const writer of writers) lines.push(`| ${writer} | ${payloads.map((p) => Math.round(memory[p][writer])).join(' | ')} |`);
  return lines.join('\n');
}

async function report({ results, memory, jobs, runs, command, write, redis, server }) {
  const env = await environment(redis);
  const rounds = Object.fromEntries(Object.entries(results).filter(([, r]) => r.rounds).map(([name, r]) => [name, r.rounds]));
  const targets = targetRows(rounds, memory);
  const medianCall = medianCallRows(rounds);
  const stageRead = stageReadRows(rounds);
  console.log(`\n${resultTable(results)}\n\n${stageReadTable(stageRead)}\n\nServer time by the median call (a cross-check, not the targets):\n\n${targetTable(medianCall)}\n`);
  if (Object.keys(memory).length > 0) console.log(`${memoryTable(memory)}\n`);
  console.log(`Targets (${runs} round${runs === 1 ? '' : 's'}):\n\n${targetTable(targets)}\n`);
  if (!write) return;
  mkdirSync(SERVERS_DIR, { recursive: true });
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  const run = { env, command, jobs, runs, results, targets, medianCall, stageRead, memory };
  if (server) {
    // A run on a chosen server joins that server's earlier runs (the last RUNS_KEPT), so the
    // per-server table shows each target's spread from run to run beside its median.
    const file = join(SERVERS_DIR, `${env.server.toLowerCase().replace(/[^a-z0-9.]+/g, '-')}.json`);
    const earlier = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).runs : [];
    writeFileSync(file, `${JSON.stringify({ server: env.server, runs: [...earlier, run].slice(-RUNS_KEPT) }, null, 2)}\n`);
    console.log(`wrote ${file.slice(ROOT.length + 1)}`);
  } else {
    writeFileSync(MAIN_RESULTS, `${JSON.stringify(run, null, 2)}\n`);
    writeFileSync(join(ROOT, 'bench', 'jobs-per-second.svg'), renderChart(results));
    console.log('wrote bench/results.json and bench/jobs-per-second.svg');
  }
  writeDocs();
}

/** docs/BENCHMARKS.md from bench/results.json and bench/servers/, as they are on disk. */
function writeDocs() {
  if (!existsSync(MAIN_RESULTS)) return;
  const main = JSON.parse(readFileSync(MAIN_RESULTS, 'utf8'));
  if (!main.targets) {
    console.log('bench/results.json is from before the bare-script targets: docs/BENCHMARKS.md is written by the next `npm run bench`');
    return;
  }
  writeFileSync(join(ROOT, 'docs', 'BENCHMARKS.md'), markdown(main, serverRuns()));
  console.log('wrote docs/BENCHMARKS.md');
}

/** The runs filed by --server, one entry per server: Redis before Valkey, older versions first. */
function serverRuns() {
  if (!existsSync(SERVERS_DIR)) return [];
  return readdirSync(SERVERS_DIR)
    .filter((file) => file.endsWith('.json'))
    .map((file) => JSON.parse(readFileSync(join(SERVERS_DIR, file), 'utf8')))
    .sort((a, b) => a.server.localeCompare(b.server, 'en', { numeric: true }));
}

/** The median, lowest and highest of some numbers (nulls left out), or null for none. */
function spread(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, low: sorted[0], high: sorted[sorted.length - 1] };
}

const cell = (s, digits, unit = '') =>
  s === null ? '-' : s.low === s.high ? `${fixed(s.median, digits)}${unit}` : `${fixed(s.median, digits)}${unit} (${fixed(s.low, digits)}–${fixed(s.high, digits)})`;

/**
 * Each target's ratio on each server, as the median of its runs (each run's own median over its
 * rounds) with their range, and whether the ratios hold against the first server's: which verdicts
 * on the medians differ, and which ranges do not even overlap the first server's (a move larger
 * than the run-to-run noise). Targets are matched by what they say.
 */
function perServer(servers) {
  if (servers.length === 0) return '';
  const [base] = servers;
  const targets = base.runs[base.runs.length - 1].targets;
  const ratiosOf = (server, what) => spread(server.runs.map((run) => run.targets.find((t) => t.what === what)?.median));
  const lines = [
    `| target | wanted | ${servers.map((s) => `${s.server} (${s.runs.length} run${s.runs.length > 1 ? 's' : ''})`).join(' | ')} |`,
    `| --- | --- |${servers.map(() => ' ---: |').join('')}`,
  ];
  const differing = [];
  const apart = [];
  const overlap = (a, b) => a && b && a.low <= b.high && b.low <= a.high;
  for (const target of targets) {
    const verdictOf = (s) => (s === null ? null : metOf(target.direction, target.wanted, s.median));
    const spreads = servers.map((server) => ratiosOf(server, target.what));
    lines.push(`| ${target.what} | ${target.direction} ${target.wanted}× | ${spreads.map((s) => `${cell(s, 2, '×')}${verdictOf(s) === null ? '' : ` ${verdict(verdictOf(s))}`}`).join(' | ')} |`);
    if (spreads.some((s) => verdictOf(s) !== verdictOf(spreads[0]))) {
      differing.push(`${target.what} (${spreads.map((s, k) => `${verdict(verdictOf(s))} on ${servers[k].server}`).join(', ')})`);
    }
    for (const [k, s] of spreads.entries()) {
      if (k > 0 && s && spreads[0] && !overlap(s, spreads[0])) {
        apart.push(`${target.what} on ${servers[k].server} (${cell(s, 2, '×')} against ${cell(spreads[0], 2, '×')})`);
      }
    }
  }
  const figure = (pick, digits, label) =>
    lines.push(`| ${label} | | ${servers.map((server) => cell(spread(server.runs.map(pick)), digits)).join(' | ')} |`);
  for (const scenario of ['enqueue x64', 'bare 5-write script x64', 'enqueueMany x100 (4 in flight)', 'bullmq add x64']) {
    figure((run) => run.results[scenario]?.jobsPerSecond, 0, `${scenario}: jobs/s`);
    figure((run) => run.results[scenario]?.scriptUsPerCall, 1, `${scenario}: script µs/call`);
  }
  for (const payload of Object.keys(base.runs[0].memory)) {
    figure((run) => run.memory[payload]?.['package, dualwrite'], 0, `memory per job, package in dualwrite, ${payload} (bytes)`);
  }
  const runs = servers.flatMap((server) => server.runs);
  const dates = runs.map((run) => run.env.date).sort();
  const moves = servers.length === 1 ? '' : apart.length === 0
    ? `The ratios hold: on no other server does a ratio's range leave ${base.server}'s, so what moves between servers is within the noise from run to run on one server.`
    : `These ratios leave ${base.server}'s range on another server, a move beyond the noise from run to run: ${apart.join('; ')}. The others hold within that noise.`;
  const verdicts = servers.length === 1 ? '' : differing.length === 0
    ? `Every target has the same verdict on every server.`
    : `On the medians, these verdicts differ between servers${apart.length === 0 ? ', all within that noise' : ''}: ${differing.join('; ')}.`;
  return `
## The same targets per server

\`${base.runs[0].command}\` on each server in turn, on this machine, between ${dates[0]} and
${dates[dates.length - 1]}: each figure is the median of that server's runs, with the lowest and
highest in brackets, which show the noise from run to run. Read the ratios against each other, not
the absolute numbers against the tables above (smaller runs).

${lines.join('\n')}

${moves} ${verdicts}
`;
}

function bareScripts() {
  return Object.values(SCRIPTS).map(({ what, body }) => `### ${what}\n\n\`\`\`lua\n${body}\n\`\`\``).join('\n\n');
}

function markdown({ env, command, jobs, runs, results, targets, medianCall, stageRead, memory }, servers) {
  return `# Benchmarks

One run of \`${command}\`: ${runs} round(s) over every scenario, ${jobs} jobs each, after a warm-up
round. Client and server share the machine, so absolute numbers hold only for it; the ratios are
what to read.

- Machine: ${env.machine}
- Node ${env.node}, ${env.server ?? `Redis ${env.redis}`}, ioredis ${env.ioredis}, bullmq ${env.bullmq}
- Run at ${env.date}; Redis started by the harness with persistence off

![jobs per second per scenario](../bench/jobs-per-second.svg)

## Targets

Each target is a ratio of two scenarios measured in the same round, against the layout's own limit
(a bare script, below) or bullmq; the median is over the rounds, and every round's ratio stands
beside it to show the noise. \`enqueue\` runs in stage \`dualwrite\`, an idempotency key given, in
static stage mode and in managed mode (the stage record set to \`dualwrite\`). "server µs per call"
is INFO commandstats' time per script call (the whole script). Memory per job is measured once
(it moves by bytes, not by noise).

${targetTable(targets)}

The server-time targets again, with each scenario's time per call taken as its median call's
(INFO latencystats) instead of commandstats' mean. commandstats books wall time, so a call the
kernel kept off the CPU on a busy machine is billed for the wait; the median call rarely is one of
those. Redis times each call in whole µs, so a median moves in steps of 1 µs: coarse for scripts
of 5 to 10 µs. A cross-check of the noise, not the targets:

${targetTable(medianCall)}

## Stage read

What reading the stage record costs a managed call: server µs per enqueue call in managed mode
minus static mode, per round, by the mean call and by the median call.

${stageReadTable(stageRead)}

## Scenarios

\`xN\` is the number of calls in flight; \`x100\` for the batch scenarios is the batch size, with
one batch in flight unless the name says otherwise. Each figure is the median over the rounds
(bench/results.json keeps every round's). "server CPU µs/job" is the server's user+system CPU over
the run divided by the jobs; "script µs/call" is INFO commandstats' time per script call (the mean),
"median script call µs" the median call's from INFO latencystats. The
\`redis-benchmark\` rows send the package's own enqueue command (as one real call sent it)
pipelined, 64 connections with 16 calls each in flight, with no Node client in the way.
\`updateStatus\` takes queued jobs to \`running\` and \`getJob\` reads them, both in stage \`live\`.

${resultTable(results)}

## Bare scripts

What each target measures against: the operation's work in one script with no check at all (no
key types, no ACL, no duplicate or stage checks), writing the same keys, fields and values as the
package. \`created_at\` and \`updated_at\` come from the client in ARGV: the bare scripts call no
\`TIME\`, where the package's scripts take the server's clock. The \`getJob\` script does not compare
the two records as the package does in \`live\`: that comparison, like the stage read, is the
package's own cost.

${bareScripts()}

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
- INFO commandstats books wall time: on a busy machine a script the kernel preempts is billed for
  the wait, which moves a round's "script µs/call" by far more than the scripts differ. The spread
  beside each target's median shows how much, and the median call's figures how little the scripts
  themselves moved; read a target on a quiet machine, or with more rounds (\`--runs\`).
- With one call in flight, each call wakes the server from idle; that fixed cost per round trip is
  why one script beats four separate commands by about the number of round trips saved, not more.
- Memory is the layout's own: while dual writing a job is two hashes (each with the payload), a
  queue entry, an index entry and the idempotency key; the package adds nothing of its own.
${perServer(servers)}`;
}

module.exports = { report, writeDocs };
