/**
 * describeWhen: tests a machine cannot run are skipped with one SKIPPED line naming them and why;
 * under DUALWRITE_REQUIRE_ALL=1 (CI) they fail instead, so CI never passes on proofs that did not run.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function runFixture(env: Record<string, string>) {
  const jest = require.resolve('jest/bin/jest');
  return spawnSync(process.execPath, [jest, '--ci', '--testMatch', '**/fixtures/unavailable.fixture.ts', '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, DUALWRITE_REQUIRE_ALL: '', ...env },
    timeout: 60_000,
  });
}

const counts = (stdout: string) => {
  const report = JSON.parse(stdout) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
  return { passed: report.numPassedTests, failed: report.numFailedTests, skipped: report.numPendingTests };
};

describe('describeWhen', () => {
  it('skips what the machine cannot run, with one SKIPPED line naming it, why, and what to install', () => {
    const run = runFixture({});

    expect(run.status).toBe(0);
    expect(counts(run.stdout)).toEqual({ passed: 0, failed: 0, skipped: 1 });
    expect(run.stderr).toContain('SKIPPED "needs the impossible": no such thing here; install the impossible');
  });

  it('under DUALWRITE_REQUIRE_ALL=1 fails instead, saying why', () => {
    const run = runFixture({ DUALWRITE_REQUIRE_ALL: '1' });

    expect(run.status).toBe(1);
    expect(counts(run.stdout)).toEqual({ passed: 0, failed: 1, skipped: 0 });
    expect(run.stderr).toContain('cannot run: no such thing here; install the impossible');
    expect(run.stderr).not.toContain('SKIPPED');
  });
});
