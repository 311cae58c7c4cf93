#!/usr/bin/env node
// npm run test:servers: the whole suite on each server of the matrix (scripts/servers/matrix.js),
// fetched from Debian's archive and built into a cache folder outside the repo on first use, and
// reused after. Prints a table of server, version, passed, failed and skipped.
const { mkdirSync } = require('node:fs');
const { homedir } = require('node:os');
const { join, resolve } = require('node:path');
const { PrivateApt, debianMirror } = require('./servers/debian');
const { MATRIX, describe } = require('./servers/matrix');
const { obtain, TLS_AVAILABLE } = require('./servers/obtain');
const { runSuite } = require('./servers/suite');

const DEFAULT_CACHE = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'redis-dual-write', 'servers');
const USAGE = `npm run test:servers -- [server ...] [--cache DIR] [--stream] [--skip-unavailable] [--build-only] [-- jest args]
  server              which servers (default all): ${MATRIX.map((s) => s.id).join(', ')}
  --cache DIR         where builds are kept and reused (default $REDIS_DUAL_WRITE_SERVERS or ${DEFAULT_CACHE})
  --stream            show jest's output as it runs (it always goes to <cache>/logs/<server>.log)
  --skip-unavailable  a server that cannot be had prints "SKIPPED <server>: <reason>" and fails nothing (CI)
  --build-only        fetch and build, print where each binary is (for npm run bench -- --server BIN), run no test
  -- jest args        passed to jest, e.g. -- test/cluster
Needs Debian's archive through the machine's apt (apt-get, a Debian mirror in its sources), make
and a C compiler; builds have TLS where libssl-dev is installed. Exits 1 when a test fails or a
server cannot be had, 2 when the archive cannot be reached and no earlier build serves.`;

function parseFlags(argv) {
  const flags = { servers: [], cache: process.env.REDIS_DUAL_WRITE_SERVERS || DEFAULT_CACHE, stream: false, skipUnavailable: false, buildOnly: false, jestArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      flags.jestArgs = argv.slice(i + 1);
      break;
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--cache') {
      if (!argv[i + 1]) usage('--cache takes a folder');
      flags.cache = resolve(argv[++i]);
    } else if (arg === '--stream') flags.stream = true;
    else if (arg === '--skip-unavailable') flags.skipUnavailable = true;
    else if (arg === '--build-only') flags.buildOnly = true;
    else if (MATRIX.some((server) => server.id === arg)) flags.servers.push(arg);
    else usage(`unknown server or flag: ${arg}`);
  }
  return flags;
}

function usage(problem) {
  console.error(`${problem}\n\n${USAGE}`);
  process.exit(2);
}

/** A PrivateApt with fresh lists for the suites these servers come from, or the reason there is none. */
function archive(servers, cache) {
  const suites = servers.filter((s) => s.kind !== 'path').map((s) => [s.kind === 'binary' ? 'deb' : 'deb-src', s.suite]);
  if (suites.length === 0) return {};
  try {
    const apt = new PrivateApt(join(cache, 'apt'), debianMirror(), [...new Map(suites.map((s) => [s.join(' '), s])).values()]);
    apt.update();
    return { apt };
  } catch (error) {
    return { problem: error.message };
  }
}

async function main() {
  const flags = parseFlags(process.argv.slice(2));
  const servers = flags.servers.length > 0 ? MATRIX.filter((s) => flags.servers.includes(s.id)) : MATRIX;
  mkdirSync(join(flags.cache, 'logs'), { recursive: true });
  const log = (line) => console.log(line);
  const { apt, problem } = archive(servers, flags.cache);
  if (problem) log(`Debian's archive: ${problem}`);

  const ready = [];
  const unavailable = [];
  for (const server of servers) {
    try {
      const got = obtain(server, { cache: flags.cache, apt, archiveProblem: problem, log });
      log(`${server.id}: ${got.version} at ${got.bin}${got.reused ? '' : ` (new, ${got.seconds} s)`}`);
      ready.push({ server, got });
    } catch (error) {
      unavailable.push({ server, reason: error.message });
      if (flags.skipUnavailable) console.log(`SKIPPED ${server.id}: ${oneLine(error.message)}`);
      else log(`${server.id}: cannot be had: ${error.message}`);
    }
  }
  if (unavailable.length > 0 && problem && !flags.skipUnavailable) {
    console.error(`
${unavailable.map((u) => u.server.id).join(', ')} cannot be had: ${problem}
test:servers needs a Debian machine whose apt reaches Debian's archive (the mirror in its own
sources list, for ${[...new Set(unavailable.map((u) => u.server.suite))].join(' and ')}), make and a C compiler, and
libssl-dev for TLS builds. Each server is: ${unavailable.map((u) => `${u.server.id}, ${describe(u.server)}`).join('; ')}.`);
    process.exit(2);
  }
  if (flags.buildOnly) {
    for (const { server, got } of ready) console.log(`${server.id}\t${got.bin}`);
    process.exit(unavailable.length > 0 && !flags.skipUnavailable ? 1 : 0);
  }

  const rows = [];
  for (const { server, got } of ready) {
    log(`\n== ${server.id}: the whole suite on ${got.version} (${got.bin})`);
    const result = await runSuite({ bin: got.bin, logFile: join(flags.cache, 'logs', `${server.id}.log`), stream: flags.stream, jestArgs: flags.jestArgs });
    log(`${server.id}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped in ${Math.round(result.seconds)} s; the log is ${result.logFile}`);
    rows.push({ server, got, result });
  }
  report(rows, unavailable, flags);
  const failed = rows.some((row) => row.result.failed > 0) || (unavailable.length > 0 && !flags.skipUnavailable);
  process.exit(failed ? 1 : 0);
}

function report(rows, unavailable, flags) {
  // Nothing ran: the lines above said why, server by server.
  if (rows.length === 0) return;
  const lines = [
    `\nRun at ${new Date().toISOString()}; builds ${TLS_AVAILABLE ? 'with' : 'without'} TLS; cache ${flags.cache}`,
    '',
    '| server | version | from | passed | failed | skipped | time |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(({ server, got, result }) =>
      `| ${server.id} | ${got.version}${got.tls ? ' (TLS)' : ''} | ${got.origin} | ${result.passed} | ${result.failed} | ${result.skipped} | ${Math.round(result.seconds)} s |`,
    ),
    ...unavailable.map(({ server, reason }) => `| ${server.id} | - | ${describe(server)} | - | - | - | not run: ${oneLine(reason)} |`),
  ];
  console.log(lines.join('\n'));
  for (const { server, result } of rows) {
    for (const line of result.skippedLines) console.log(`${server.id}: ${line}`);
    for (const failure of result.failures) console.log(`\n${server.id} FAILED ${failure.name}\n${failure.message}`);
  }
  const total = rows.reduce((sum, { result }) => ({ passed: sum.passed + result.passed, failed: sum.failed + result.failed, skipped: sum.skipped + result.skipped }), { passed: 0, failed: 0, skipped: 0 });
  console.log(`\nservers: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
}

const oneLine = (text) => text.split('\n')[0];

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
