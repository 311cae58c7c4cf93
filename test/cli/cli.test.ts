import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands';
import { MANIFEST_PATH } from '../../src/scripts/manifest';
import { cli } from '../support/cli';
import { useRedis } from '../support/redis';
import { putJob, redisState } from '../support/state';
import { makeMigration, putLegacyJobs, record } from '../migrate/fixtures';

const ctx = useRedis();

const url = () => ['--url', ctx.handle.url];
const manifestShas = () => (JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as { sha1: string }[]).map((script) => script.sha1);

describe('redis-dual-write --help', () => {
  it('lists every subcommand and exits 0', async () => {
    const run = await cli(['--help']);

    expect(run.code).toBe(0);
    for (const name of ['scripts load', 'scripts check', 'scripts manifest', 'backfill', 'verify', 'cleanup', 'stage init', 'stage set', 'status', 'demo']) {
      expect(run.stdout).toContain(`\n  ${name} `);
    }
  });

  it.each(COMMANDS.map((c) => c.name))('%s --help prints its usage and options and exits 0', async (name) => {
    const run = await cli([...name.split(' '), '--help']);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Usage: redis-dual-write ${name}`);
    expect(run.stdout).toContain('--help');
    if (name !== 'demo' && name !== 'scripts manifest') expect(run.stdout).toContain('--url <url>');
    for (const code of ['0', '1', '2', '3', '130']) expect(run.stdout).toMatch(new RegExp(`^  ${code} +\\w`, 'm'));
  });

  it('usage errors exit 2 and say what was wrong: no command, unknown command or flag, missing or bad values', async () => {
    const runs = {
      none: await cli([]),
      unknownCommand: await cli(['migrate']),
      scriptsAlone: await cli(['scripts']),
      unknownFlag: await cli(['verify', '--stage', 'live', '--colour']),
      stageAlone: await cli(['stage']),
      badStage: await cli(['verify', '--stage', 'nope', ...url()]),
      badBatch: await cli(['verify', '--stage', 'live', '--batch-size', '0', ...url()]),
      badRate: await cli(['backfill', '--stage', 'live', '--rate', 'fast', ...url()]),
      strayUrl: await cli(['verify', '--stage', 'live', 'redis://ops:stray-secret@127.0.0.1:1']),
    };

    expect(Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, run.code]))).toEqual(
      Object.fromEntries(Object.keys(runs).map((name) => [name, 2])),
    );
    expect(runs.unknownCommand.stderr).toContain("unknown command 'migrate'");
    expect(runs.unknownFlag.stderr).toContain("Unknown option '--colour'");
    expect(runs.stageAlone.stderr).toContain('Usage: redis-dual-write stage <init|set> [options]');
    expect(runs.badStage.stderr).toContain("--stage: must be 'managed' or one of off, dualwrite, shadow, live, rampdown, complete");
    expect(runs.badBatch.stderr).toContain('--batch-size: must be an integer from 1 to 500');
    expect(runs.badRate.stderr).toContain('--rate must be a number above 0');
    expect(runs.strayUrl.stderr).toContain('unexpected argument redis://ops:***@127.0.0.1:1');
    expect(runs.strayUrl.stderr).not.toContain('stray-secret');
    expect(await redisState(ctx.redis)).toEqual({});
    expect(await ctx.redis.script('EXISTS', ...manifestShas())).toEqual(manifestShas().map(() => 0));
  });
});

describe('redis-dual-write scripts', () => {
  it('manifest prints lua/manifest.json', async () => {
    const run = await cli(['scripts', 'manifest', '--json']);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')));
  });

  it('check exits 1 while scripts are missing; load loads each under its sha1; then check exits 0', async () => {
    const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as { id: string; sha1: string }[];

    const before = await cli(['scripts', 'check', '--json', ...url()]);
    const load = await cli(['scripts', 'load', ...url()]);
    const after = await cli(['scripts', 'check', '--json', ...url()]);

    expect(before.code).toBe(1);
    expect(JSON.parse(before.stdout)).toEqual({ ok: false, scripts: manifest.map((s) => ({ id: s.id, sha1: s.sha1, loaded: false })) });
    expect(load.code).toBe(0);
    for (const script of manifest) expect(load.stdout).toMatch(new RegExp(`${script.id.replace('.', '\\.')} +${script.sha1} +${script.sha1} +ok`));
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout).scripts.every((s: { loaded: boolean }) => s.loaded)).toBe(true);
    expect(await ctx.redis.script('EXISTS', ...manifest.map((s) => s.sha1))).toEqual(manifest.map(() => 1));
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it('uses REDIS_URL when no --url is given', async () => {
    const run = await cli(['scripts', 'load', '--json'], { env: { REDIS_URL: ctx.handle.url } });

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).ok).toBe(true);
  });

  it('exits 3 (the run failed, not the check) with a clear message when Redis cannot be reached', async () => {
    const run = await cli(['scripts', 'check', '--url', 'redis://127.0.0.1:1']);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain('cannot reach Redis at redis://127.0.0.1:1');
  });
});

describe('redis-dual-write backfill, verify, cleanup', () => {
  it('backfill --json copies every legacy job, prints the report, shows plain progress lines off a terminal, exits 0', async () => {
    await putLegacyJobs(ctx.redis, 500, ['acme', 'globex']);

    const run = await cli(['backfill', '--stage', 'dualwrite', '--json', '--batch-size', '100', ...url()]);

    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ operation: 'backfill', completed: true, results: { copied: 500, conflict: 0, skipped: 0 } });
    expect(run.stderr).toMatch(/^backfill legacy: \d+(\/~\d+)? legacy keys \(\d+%\)/m);
    expect(run.stderr).not.toContain('\r');
    expect(Object.keys(await redisState(ctx.redis))).toHaveLength(1002);
  });

  it('backfill exits 1 when it finds a conflict, and the human report names it', async () => {
    await putJob(ctx.redis, 'job:c1', record('c1', 'acme'));
    await putJob(ctx.redis, 'ws:acme:job:c1', record('c1', 'acme', { status: 'failed' }));

    const run = await cli(['backfill', '--stage', 'live', ...url()]);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('backfill (copy) in stage live: completed');
    expect(run.stdout).toMatch(/conflict +job:c1 +fields: status/);
  });

  it('verify exits 0 when clean and 1 when anything diverges, with the divergences in --json', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    const dirty = await cli(['verify', '--stage', 'dualwrite', '--json', ...url()]);
    await makeMigration(ctx.redis, 'dualwrite').migration.backfill();
    const clean = await cli(['verify', '--stage', 'dualwrite', ...url()]);

    expect(dirty.code).toBe(1);
    expect(JSON.parse(dirty.stdout)).toMatchObject({ clean: false, divergences: { missing_new: 1 }, samples: [{ kind: 'missing_new', key: 'job:j1' }] });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('verify in stage dualwrite: clean');
  });

  it('cleanup: refused outside complete (exit 1), a dry run writes nothing (exit 0), --yes deletes (exit 0)', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await putJob(ctx.redis, 'ws:acme:job:j1', record('j1', 'acme'));
    await ctx.redis.zadd('ws:acme:jobs', record('j1', 'acme').createdAt, 'j1');
    const before = await redisState(ctx.redis);

    const wrongStage = await cli(['cleanup', '--stage', 'rampdown', '--yes', '--json', ...url()]);
    const afterRefusal = await redisState(ctx.redis);
    const dryRun = await cli(['cleanup', '--stage', 'complete', ...url()]);
    const afterDryRun = await redisState(ctx.redis);
    const real = await cli(['cleanup', '--stage', 'complete', '--yes', '--json', ...url()]);

    expect(wrongStage.code).toBe(1);
    expect(JSON.parse(wrongStage.stdout)).toEqual({ error: { code: 'WRONG_STAGE', message: expect.stringContaining('cleanup is refused in stage rampdown') } });
    expect(afterRefusal).toEqual(before);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('dry run (nothing deleted; --yes deletes)');
    expect(dryRun.stdout).toMatch(/would_delete +1/);
    expect(afterDryRun).toEqual(before);
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toMatchObject({ dryRun: false, results: { deleted: 1 } });
    const { 'job:j1': _deleted, ...rest } = before;
    expect(await redisState(ctx.redis)).toEqual(rest);
  });

  it('cleanup exits 1 and prints the divergences when its verify is not clean', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    const before = await redisState(ctx.redis);

    const run = await cli(['cleanup', '--stage', 'complete', '--yes', '--json', ...url()]);

    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'VERIFY_NOT_CLEAN', divergences: { missing_new: 1 } } });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('Ctrl-C stops backfill after the batch in flight, exits 130 and says how to resume; the resumed run finishes', async () => {
    await putLegacyJobs(ctx.redis, 600, ['acme']);
    const ctrlC = new AbortController();
    ctrlC.abort();

    const stopped = await cli(['backfill', '--stage', 'live', '--batch-size', '50', ...url()], { signal: ctrlC.signal });
    const checkpoint = await ctx.redis.hget('dualwrite:backfill:default', 'cursor');
    const resumed = await cli(['backfill', '--stage', 'live', '--batch-size', '50', '--json', ...url()]);

    expect(stopped.code).toBe(130);
    expect(stopped.stdout).toContain('stopped before the end');
    expect(stopped.stderr).toContain(`Resume with:\n  redis-dual-write backfill --stage live --batch-size 50 --url ${ctx.handle.url}`);
    expect(stopped.stderr).toContain('the checkpoint in dualwrite:backfill:default continues where it stopped');
    expect(checkpoint).toMatch(/^[1-9][0-9]*$/);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true, completed: true, results: { copied: 600 } });
    expect(await ctx.redis.exists('dualwrite:backfill:default')).toBe(0);
  });

  it('--rate without --batch-size works in batches of at most one second of the rate, not one burst after a long pause', async () => {
    await putLegacyJobs(ctx.redis, 30, ['acme']);

    const run = await cli(['backfill', '--stage', 'live', '--rate', '20', '--json', ...url()], { tty: true });

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ completed: true, results: { copied: 30 } });
    // One progress redraw per page (each a second or more apart at this rate): more than one page.
    const done = [...run.stderr.matchAll(/backfill legacy: (\d+)\//g)].map((match) => Number(match[1]));
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done[0]).toBeLessThan(30);
    expect(done[done.length - 1]).toBe(30);
  });

  it('draws a progress bar in place on a terminal, and writes --metrics-file for the textfile collector', async () => {
    await putLegacyJobs(ctx.redis, 50, ['acme']);
    const dir = mkdtempSync(join(tmpdir(), 'rdw-cli-'));
    try {
      const file = join(dir, 'backfill.prom');
      const run = await cli(['backfill', '--stage', 'live', '--metrics-file', file, ...url()], { tty: true });

      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(/\r\x1b\[2K\[#+-*\] backfill legacy: 50\/~50 legacy keys \(100%\)/);
      expect(run.stderr.endsWith('\n')).toBe(true);
      expect(readFileSync(file, 'utf8')).toContain('dualwrite_backfill_jobs_total{result="copied"} 50');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
