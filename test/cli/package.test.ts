/**
 * The package as users get it: packed, installed into a fresh project without the network, then
 * used through require, through import, through its type declarations, and through its bin.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { manifestEntries } from '../../src/scripts/deploy';
import { useRedis } from '../support/redis';
import { startSilentServer } from '../support/silent-server';
import { putJob } from '../support/state';
import { record } from '../migrate/fixtures';

const ctx = useRedis();
const ROOT = resolve(__dirname, '..', '..');
const PACKAGE_FILES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src', 'lua', 'scripts', 'docs', 'deploy'];

let work: string;
let app: string;

/** Packs a copy of the checkout, so the build never writes into the working tree under test. */
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rdw-pack-'));
  const source = join(work, 'source');
  for (const file of PACKAGE_FILES) cpSync(join(ROOT, file), join(source, file), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: source, stdio: 'pipe', timeout: 60_000 });
  const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack made no tarball');

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  // Peer dependencies come from this checkout, linked: the install needs no network.
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', '--ignore-scripts', join(work, tarball)], {
    cwd: app,
    stdio: 'pipe',
    // An offline install that waits on the network anyway fails here, not at jest's hook timeout.
    timeout: 60_000,
  });
  for (const peer of ['ioredis', 'prom-client', '@types']) {
    mkdirSync(join(app, 'node_modules', peer, '..'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', peer), join(app, 'node_modules', peer), 'dir');
  }
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function node(file: string, source: string): { status: number | null; stdout: string; stderr: string } {
  writeFileSync(join(app, file), source);
  const run = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8', env: { ...process.env, REDIS_URL: ctx.handle.url } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const USE = (load: string) => `${load}
const redis = new Redis(process.env.REDIS_URL);
const main = async () => {
  const queue = new DualWriteQueue({ heartbeat: false, redis, stage: 'dualwrite', metrics: false });
  await queue.ready();
  const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { from: process.argv[1] } });
  const job = await queue.getJob({ workspaceId: 'acme', jobId });
  const report = await new Migration({ redis, stage: 'dualwrite', metrics: false }).verify();
  console.log(JSON.stringify({ source: job.source, clean: report.clean, handle: typeof startRedis }));
};
main().finally(() => redis.disconnect());
`;

describe('the packed package', () => {
  it('ships its compiled code, type declarations, Lua scripts with their manifest, the runbook, the deploy files and the bin', () => {
    const installed = join(app, 'node_modules', 'redis-dual-write');
    for (const file of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli.js',
      'dist/testing/index.d.ts',
      'lua/manifest.json',
      ...manifestEntries().map((script) => `lua/${script.file}`),
      'docs/MIGRATION.md',
      'deploy/grafana-dashboard.json',
      'deploy/prometheus-rules.yml',
    ]) {
      expect({ file, shipped: existsSync(join(installed, file)) }).toEqual({ file, shipped: true });
    }
    expect(existsSync(join(installed, 'src'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', '.bin', 'redis-dual-write'))).toBe(true);
  });

  it('works through require', () => {
    const run = node('use.cjs', USE(`const Redis = require('ioredis');
const { DualWriteQueue, Migration } = require('redis-dual-write');
const { startRedis } = require('redis-dual-write/testing');`));

    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ source: 'legacy', clean: true, handle: 'function' });
  });

  it('works through import', () => {
    const run = node('use.mjs', USE(`import Redis from 'ioredis';
import { DualWriteQueue, Migration } from 'redis-dual-write';
import { startRedis } from 'redis-dual-write/testing';`));

    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ source: 'legacy', clean: true, handle: 'function' });
  });

  it('type-checks a TypeScript user against the shipped declarations', () => {
    writeFileSync(
      join(app, 'use.ts'),
      `import { Migration, type BackfillReport, type VerifyReport, WrongStageError } from 'redis-dual-write';
import Redis from 'ioredis';
const migration = new Migration({ redis: new Redis(), stage: 'live' });
const reports: Promise<[BackfillReport, VerifyReport]> = Promise.all([migration.backfill({ mode: 'resync' }), migration.verify()]);
export const code: string = new WrongStageError('cleanup', 'live', ['complete']).code;
export { reports };
`,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--esModuleInterop', '--skipLibCheck', '--module', 'commonjs', '--moduleResolution', 'node', '--types', 'node', 'use.ts'],
      { cwd: app, encoding: 'utf8' },
    );

    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('runs its bin: --help lists the subcommands, and verify answers against real Redis with its exit code', async () => {
    const bin = join(app, 'node_modules', '.bin', 'redis-dual-write');
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));

    const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    const verify = spawnSync(bin, ['verify', '--stage', 'dualwrite', '--json'], { encoding: 'utf8', env: { ...process.env, REDIS_URL: ctx.handle.url } });

    expect(help.status).toBe(0);
    for (const name of ['scripts load', 'scripts check', 'scripts manifest', 'backfill', 'verify', 'cleanup', 'demo']) {
      expect(help.stdout).toContain(`  ${name} `);
    }
    expect(verify.status).toBe(1);
    expect(JSON.parse(verify.stdout)).toMatchObject({ clean: false, divergences: { missing_new: 1 } });
  });

  it('its bin ends, exit 3, against a Redis that accepts connections and never answers: a deploy gate never hangs', async () => {
    const bin = join(app, 'node_modules', '.bin', 'redis-dual-write');
    const silent = await startSilentServer();
    try {
      // The kill after 20 s only stops a hang from holding the suite; the exit code says the rest.
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(bin, ['scripts', 'check', '--url', silent.url, '--connect-timeout', '500'], { timeout: 20_000 }, (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
        );
      });

      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`Redis at ${silent.url} did not answer within 500 ms (--connect-timeout)`);
      expect(silent.connections()).toBeGreaterThan(0);
    } finally {
      await silent.close();
    }
  });
});
