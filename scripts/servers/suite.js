// Runs the whole jest suite with the harness pointed at one server binary, and reads the counts
// from jest's JSON report, the SKIPPED lines from its output.
const { spawn } = require('node:child_process');
const { createWriteStream, readFileSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');

/**
 * { passed, failed, skipped, failures: [{ name, message }], skippedLines, seconds, logFile }.
 * `stream` echoes jest's output as it comes; it always goes to `logFile`.
 */
async function runSuite({ bin, logFile, stream, jestArgs = [] }) {
  const jsonFile = `${logFile}.json`;
  rmSync(jsonFile, { force: true });
  const env = { ...process.env, REDIS_SERVER_BIN: bin };
  // The suite must start its own servers from `bin`, never reach one given from outside.
  delete env.REDIS_URL;
  const started = Date.now();
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [require.resolve('jest/bin/jest', { paths: [ROOT] }), '--json', '--outputFile', jsonFile, ...jestArgs], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const source of [child.stdout, child.stderr]) {
    source.on('data', (chunk) => {
      output += chunk;
      log.write(chunk);
      if (stream) process.stdout.write(chunk);
    });
  }
  const exitCode = await new Promise((resolve) => child.on('close', resolve));
  await new Promise((resolve) => log.end(resolve));
  const seconds = (Date.now() - started) / 1000;
  const skippedLines = [...new Set(output.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('SKIPPED ')))];
  let report;
  try {
    report = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch {
    // jest ended before it could report (it did not start, or a suite crashed it): a failure to show.
    return { passed: 0, failed: 1, skipped: 0, failures: [{ name: `jest exited with code ${exitCode} and no report`, message: output.slice(-2000) }], skippedLines, seconds, logFile };
  }
  const failures = report.testResults.flatMap((file) => {
    const tests = file.assertionResults
      .filter((test) => test.status === 'failed')
      .map((test) => ({ name: `${relative(file.name)} › ${test.fullName}`, message: firstLines(test.failureMessages.join('\n')) }));
    // A file that failed before any test ran (it did not compile, a beforeAll threw) has no failed test.
    if (tests.length === 0 && file.status === 'failed') tests.push({ name: relative(file.name), message: firstLines(file.message) });
    return tests;
  });
  return {
    passed: report.numPassedTests,
    failed: Math.max(report.numFailedTests, failures.length),
    skipped: report.numPendingTests + report.numTodoTests,
    failures,
    skippedLines,
    seconds,
    logFile,
  };
}

const relative = (file) => file.slice(ROOT.length + 1);
const firstLines = (text) => (text ?? '').split('\n').filter((line) => line.trim()).slice(0, 6).join('\n');

module.exports = { runSuite };
