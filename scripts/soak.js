#!/usr/bin/env node
// npm run soak: the fault scenarios of test/faults at a larger size, one table row per scenario.
// The scenarios are the same tests `npm test` runs small; this sets their size and seed and
// collects the figures each one records (test/support/soak.ts). Writes docs/RELIABILITY.md with --write.
const { spawnSync, execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { dirname, join } = require('node:path');
const { lifecycleSection } = require('./soak-lifecycle-section');

const SCENARIOS = {
  1: 'reply-lost',
  2: 'crash',
  3: 'script-cache-loss',
  4: 'out-of-memory',
  5: 'races',
  6: 'hostile-input',
  7: 'access-control',
  8: 'tenancy',
  9: 'connection-loss',
  10: 'lifecycle-soak',
};
const USAGE = `npm run soak -- [--scale N] [--seed N] [--scenarios 1,2,...] [--write [file]]
  --scale N         multiply every scenario's operation count by N (default 20; npm test runs 1)
  --seed N          seed for reply drops, stage changes, fast-check and handler times (default 20240601)
  --scenarios LIST  which scenarios to run (default all: ${Object.keys(SCENARIOS).join(',')})
  --write [file]    write the document to docs/RELIABILITY.md (or file); it holds every scenario, so
                    --write to docs/RELIABILITY.md runs them all`;

function parseFlags(argv) {
  const flags = { scale: 20, seed: 20240601, scenarios: Object.keys(SCENARIOS).map(Number), write: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === '--scale' || flag === '--seed') {
      const number = Number(value);
      if (!(number > 0)) fail(`${flag} takes a positive number`);
      flags[flag.slice(2)] = number;
      i++;
    } else if (flag === '--scenarios') {
      flags.scenarios = String(value).split(',').map(Number);
      if (flags.scenarios.some((n) => !SCENARIOS[n])) fail(`--scenarios takes numbers from 1 to ${Object.keys(SCENARIOS).length}`);
      i++;
    } else if (flag === '--write') {
      flags.write = value && !value.startsWith('--') ? (i++, value) : join('docs', 'RELIABILITY.md');
    } else {
      fail(`unknown flag ${flag}`);
    }
  }
  // The document is one run's: writing it from some scenarios would drop the other rows.
  if (flags.write === join('docs', 'RELIABILITY.md') && flags.scenarios.length !== Object.keys(SCENARIOS).length) {
    fail('--write to docs/RELIABILITY.md needs every scenario (drop --scenarios, or --write another file)');
  }
  return flags;
}

function fail(message) {
  console.error(`soak: ${message}\n${USAGE}`);
  process.exit(2);
}

function runScenarios(flags) {
  const dir = mkdtempSync(join(tmpdir(), 'redis-dual-write-soak-'));
  const report = join(dir, 'rows.jsonl');
  const results = join(dir, 'jest.json');
  const files = flags.scenarios.map((n) => `test/faults/${SCENARIOS[n]}.test.ts`);
  const started = Date.now();
  const jest = spawnSync(
    process.execPath,
    [require.resolve('jest/bin/jest'), '--runInBand', '--testTimeout=1800000', '--json', `--outputFile=${results}`, ...files],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, SOAK_SCALE: String(flags.scale), SOAK_SEED: String(flags.seed), SOAK_REPORT: report },
    },
  );
  const rows = existsSync(report) ? readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];
  const summary = existsSync(results) ? JSON.parse(readFileSync(results, 'utf8')) : {};
  rmSync(dir, { recursive: true, force: true });
  return {
    rows,
    seconds: Math.round((Date.now() - started) / 1000),
    tests: { passed: summary.numPassedTests ?? 0, failed: summary.numFailedTests ?? 0 },
    failedTests: (summary.testResults ?? []).flatMap((file) =>
      file.assertionResults.filter((t) => t.status === 'failed').map((t) => `${file.name.replace(`${process.cwd()}/`, '')}: ${t.fullName}`),
    ),
    exitCode: jest.status ?? 1,
  };
}

/** One row per scenario: the sums of the rows its tests recorded. */
function aggregate(rows, flags) {
  return flags.scenarios.map((scenario) => {
    const own = rows.filter((row) => row.scenario === scenario);
    const sum = (field) => own.reduce((total, row) => total + (row[field] ?? 0), 0);
    const kinds = {};
    for (const row of own) {
      for (const [kind, count] of Object.entries(row.callerErrorKinds ?? {})) kinds[kind] = (kinds[kind] ?? 0) + count;
    }
    return {
      scenario,
      name: own[0]?.name ?? `${SCENARIOS[scenario]} (no figures recorded: its tests failed)`,
      recorded: own.length,
      operations: sum('operations'),
      faults: sum('faults'),
      faultKind: own[0]?.faultKind ?? '',
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      halfWritten: sum('halfWritten'),
      callerErrors: sum('callerErrors'),
      kinds,
      // A scenario that records its own figures and memory records one row: they are its row's.
      figures: own[0]?.figures,
      memory: own[0]?.memory,
      command: `npm run soak -- --scenarios ${scenario} --scale ${flags.scale} --seed ${flags.seed}`,
    };
  });
}

function table(aggregated) {
  const lines = [
    '| # | scenario | operations | faults injected | jobs lost | duplicated | half-written | errors that reached callers | reproduce |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const row of aggregated) {
    const kinds = Object.entries(row.kinds).map(([kind, count]) => `${count} ${kind}`).join('; ');
    lines.push(
      `| ${row.scenario} | ${row.name} | ${row.operations} | ${row.faults} ${row.faultKind} | ${row.lost} | ${row.duplicated} | ` +
        `${row.halfWritten} | ${row.callerErrors}${kinds ? ` (${kinds})` : ''} | \`${row.command}\` |`,
    );
  }
  return lines.join('\n');
}

function environment() {
  const version = (command, args) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    redis: /v=([0-9.]+)/.exec(version('redis-server', ['--version']))?.[1] ?? 'unknown',
    node: process.version,
    ioredis: require('ioredis/package.json').version,
  };
}

function document(flags, run, aggregated) {
  const env = environment();
  const failed = run.failedTests.length
    ? `\n\nTests that failed in this run (their rows carry no figures from them):\n\n${run.failedTests.map((t) => `- ${t}`).join('\n')}`
    : '';
  return `# Reliability figures

Produced by \`npm run soak -- --scale ${flags.scale} --seed ${flags.seed} --write\` on ${new Date().toISOString().slice(0, 10)}
(${run.seconds} s; Redis ${env.redis}, Node ${env.node}, ioredis ${env.ioredis}; ${run.tests.passed} tests passed, ${run.tests.failed} failed).
Every figure below comes from that run: rerun the command in a row to reproduce it. The same
scenarios run at scale 1 in \`npm test\` (test/faults/); rows 7 and 8 are a fixed matrix (every
operation, every stage) that the scale does not change. Row 10 has a section of its own below, with
what its workers did and memory over time.${failed}

${table(aggregated)}

## How each figure is obtained

- **operations**: calls the scenario made to the queue, retries included.
- **faults injected**: what the toolkit in \`redis-dual-write/testing\` did: replies dropped by the fault
  proxy after Redis ran the command, or answered later than \`commandTimeout\`; \`kill -9\` of
  redis-server followed by a restart on the same append-only file; \`SCRIPT FLUSH\` calls; calls a
  server over \`maxmemory\` refused; racing rounds and stage changes; hostile inputs and random
  operation sequences; ACL refusals; cross-workspace attempts; outages.
- **jobs lost**: jobs a caller was told exist (\`enqueue\` answered) that Redis does not hold. The
  scenarios also assert that every record holds the status a caller was last told it has.
- **duplicated**: jobs beyond one per request made, plus queue entries beyond one per job.
- **half-written**: jobs or keys that break an invariant (test/support/invariants.ts): a record
  missing from a layout the stage writes, layouts that disagree, a record missing a field, a job
  missing from its workspace index or an index entry without a job, a queue entry without a job or
  a queued job without its entry, an idempotency key pointing at no job or without a TTL.
- **errors that reached callers**: every error a call raised, by kind. Some are the answer the
  scenario expects (an \`OUT_OF_MEMORY\` from a full server, the \`STATUS_CONFLICT\` of the callers
  that lost a race, the refusals of an ACL or of another workspace, the client's error while Redis
  is unreachable). A \`STATUS_CONFLICT\` in rows 1 and 2 is a caller's own earlier attempt that won
  (its reply was lost and the update was sent again: see the README, "Retries"). Client errors
  (\`client: ...\`) mean the call may or may not have run; the scenario retried each with the same
  request, and the lost and duplicated columns show what that did. In row 10 the \`CLAIM_CONFLICT\`s
  are the workers that stalled past their deadline and were refused once the job was recovered.
  Its duplicated column counts jobs made twice while their idempotency key lived and claims that
  overlapped (two workers holding one job); its half-written column, records that disagree with
  each other or with what their workers were told, invariants broken and divergences verify found
  after the final sweep.
${aggregated.filter((row) => row.memory).map((row) => `\n${lifecycleSection(row)}`).join('')}`;
}

const flags = parseFlags(process.argv.slice(2));
const run = runScenarios(flags);
const aggregated = aggregate(run.rows, flags);
console.log(`\n${table(aggregated)}\n`);
console.log(`${run.tests.passed} tests passed, ${run.tests.failed} failed, in ${run.seconds} s`);
if (flags.write) {
  mkdirSync(dirname(flags.write), { recursive: true });
  writeFileSync(flags.write, document(flags, run, aggregated));
  console.log(`wrote ${flags.write}`);
}
const broken = aggregated.filter((row) => row.lost || row.duplicated || row.halfWritten || row.recorded === 0);
process.exit(run.exitCode !== 0 || broken.length > 0 ? 1 : 0);
