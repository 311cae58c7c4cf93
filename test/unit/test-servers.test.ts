/**
 * npm run test:servers where Debian's archive cannot be had (here: no apt-get on PATH) and nothing
 * is cached: it says what it needs and exits 2; with --skip-unavailable (as CI runs it) it prints
 * one SKIPPED line per server and fails nothing. Neither fetches, builds nor runs a test.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'test-servers.js');

function testServers(...args: string[]) {
  const work = mkdtempSync(join(tmpdir(), 'test-servers-'));
  try {
    // Only node on PATH (node's own folder may hold apt-get too): no apt-get, so no archive.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    const cache = join(work, 'cache');
    return spawnSync(process.execPath, [SCRIPT, ...args, '--cache', cache], { encoding: 'utf8', env: { PATH: bin }, timeout: 30_000 });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe('npm run test:servers without Debian\'s archive', () => {
  it('says what it needs and exits 2, running nothing', () => {
    const run = testServers('valkey-8.0', 'redis-trixie');

    expect(run.status).toBe(2);
    expect(run.stdout).toContain("Debian's archive: apt-get is not available");
    expect(run.stderr).toContain('valkey-8.0, redis-trixie cannot be had');
    expect(run.stderr).toContain("test:servers needs a Debian machine whose apt reaches Debian's archive");
    expect(run.stdout).not.toContain('servers:');
  });

  it('with --skip-unavailable prints one SKIPPED line per server and exits 0, as CI runs it', () => {
    const run = testServers('valkey-8.0', '--skip-unavailable');

    expect(run.status).toBe(0);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('SKIPPED '))).toEqual([
      expect.stringMatching(/^SKIPPED valkey-8\.0: .*apt-get is not available/),
    ]);
  });

  it('refuses an unknown server or flag with its usage (exit 2)', () => {
    const run = testServers('redis-6.2');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown server or flag: redis-6.2');
  });
});
