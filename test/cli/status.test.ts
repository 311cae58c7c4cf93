/**
 * `status` as an operator reads it, and backfill, verify and cleanup in managed mode (no --stage):
 * the whole migration walked off -> complete with the commands only, each step's result recorded
 * for the next `stage set`, and what status says and exits along the way.
 */
import { DualWriteQueue } from '../../src';
import { main } from '../../src/cli';
import { SCRIPTS_SHA1 } from '../../src/stage-control/heartbeat';
import { cli, type CliRun } from '../support/cli';
import { useRedis } from '../support/redis';
import { hash, jobHash, putJob, redisState, zset } from '../support/state';
import { CREATED, indexOf, putLegacyJobs, record } from '../migrate/fixtures';

const ctx = useRedis();

const url = () => ['--url', ctx.handle.url];
const statusJson = async (...flags: string[]) => {
  const run = await cli(['status', '--json', ...flags, ...url()]);
  return { code: run.code, status: JSON.parse(run.stdout) };
};

/** Runs a command the way an operator would and insists it worked: the path below is the happy one. */
async function ok(...argv: string[]): Promise<CliRun> {
  const run = await cli([...argv, ...url()]);
  if (run.code !== 0) throw new Error(`redis-dual-write ${argv.join(' ')} exited ${run.code}:\n${run.stderr}`);
  return run;
}

/** A queue that beats once: one call (a read of a job that is not there), then its heartbeat lands. */
async function instanceThatBeat(stage: 'managed' | 'dualwrite', instanceId: string): Promise<DualWriteQueue> {
  const queue = new DualWriteQueue({ redis: ctx.redis, stage, heartbeat: { intervalMs: 1000 }, instanceId, metrics: false });
  await queue.getJob({ workspaceId: 'acme', jobId: 'none' });
  for (let i = 0; i < 100 && (await ctx.redis.zscore('dualwrite:instances', instanceId)) === null; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await ctx.redis.zscore('dualwrite:instances', instanceId)).not.toBeNull();
  return queue;
}

describe('redis-dual-write status', () => {
  it('without a record: exit 1, the finding, and the next step creates it; reads only', async () => {
    const text = await cli(['status', ...url()]);
    const { code, status } = await statusJson();

    expect(text.code).toBe(1);
    expect(text.stdout).toContain('status: 1 finding needs a person');
    expect(text.stdout).toContain('stage record dualwrite:stage: none');
    expect(text.stdout).toContain('findings:\n  stage_unset  the layout has no stage record: managed instances cannot run');
    expect(text.stdout).toContain(`next:\n  1. create the stage record at the stage the service runs in now\n     redis-dual-write stage init off --reason "<why>" --url ${ctx.handle.url}`);
    expect(code).toBe(1);
    expect(status).toEqual({
      key: 'dualwrite:stage',
      record: null,
      history: [],
      runs: { backfill: null, verify: null, cleanup: null },
      instances: [],
      findings: [{ kind: 'stage_unset', detail: expect.any(String) }],
      healthy: false,
      next_steps: [{ description: expect.any(String), command: `redis-dual-write stage init off --reason "<why>" --url ${ctx.handle.url}` }],
    });
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it('right after init, with no instance: healthy, exit 0; the record, its history and the next step', async () => {
    await ok('stage', 'init', 'off', '--reason', 'start managed', '--by', 'ops@host');
    const before = await redisState(ctx.redis);

    const text = await cli(['status', ...url()]);
    const { code, status } = await statusJson();

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^status: healthy\n\nstage record dualwrite:stage: off, epoch 1\n {2}since +\S+Z\n {2}by +ops@host\n {2}reason +start managed\n {2}forced +no\n {2}max verify age +1 d\n/);
    expect(text.stdout).toMatch(/history, newest first:\n {2}epoch +at +change +by +forced +reason\n {2}1 +\S+Z +\(init\) -> off +ops@host +start managed\n/);
    expect(text.stdout).toMatch(/last runs \(managed mode records them\):\n.*\n {2}backfill +never\n {2}verify +never\n {2}cleanup +never\n/);
    expect(text.stdout).toContain('instances seen in the last 60 s: none');
    expect(text.stdout).toContain('findings: none');
    expect(text.stdout).toContain(`next:\n  1. move the whole fleet to dualwrite\n     redis-dual-write stage set dualwrite --reason "<why>" --url ${ctx.handle.url}`);
    expect(code).toBe(0);
    expect(status).toEqual({
      key: 'dualwrite:stage',
      record: {
        stage: 'off', plan: '10L00', epoch: 1, revision: 1, changedAt: expect.any(Number), changedBy: 'ops@host', reason: 'start managed', forced: false, retention: {},
        maxVerifyAgeMs: 86_400_000, enteredDualwriteEpoch: -1, needsResync: false, cleanupDeleted: 0,
      },
      history: [{ epoch: 1, from: '', to: 'off', at: status.record.changedAt, by: 'ops@host', reason: 'start managed', forced: false }],
      runs: { backfill: null, verify: null, cleanup: null },
      instances: [],
      findings: [],
      healthy: true,
      next_steps: [{ description: 'move the whole fleet to dualwrite', command: `redis-dual-write stage set dualwrite --reason "<why>" --url ${ctx.handle.url}` }],
    });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('a managed instance that beat at the current epoch keeps it healthy; one on an old epoch, or a static one, is a finding (exit 1)', async () => {
    await ok('stage', 'init', 'dualwrite', '--reason', 'start');
    await instanceThatBeat('managed', 'web-1');

    const healthy = await statusJson();
    const text = await cli(['status', ...url()]);
    await ok('stage', 'set', 'off', '--reason', 'rollback');
    const oldEpoch = await statusJson();
    await instanceThatBeat('dualwrite', 'cron-1');
    const withStatic = await statusJson();

    expect(healthy.code).toBe(0);
    expect(healthy.status.instances).toEqual([
      {
        id: 'web-1', queue: 'default', version: expect.any(String), scripts: SCRIPTS_SHA1, mode: 'managed', stage: 'dualwrite', epoch: '1',
        host: expect.any(String), pid: process.pid, lastSeen: expect.any(Number), ageMs: expect.any(Number),
      },
    ]);
    expect(healthy.status.findings).toEqual([]);
    expect(text.stdout).toMatch(new RegExp(`instances seen in the last 60 s:\\n {2}id +mode +stage/epoch +version +scripts +last beat\\n {2}web-1 +managed +dualwrite/1 +\\S+ +${SCRIPTS_SHA1.slice(0, 12)} +\\d+ (ms|s) ago\\n`));
    expect(oldEpoch.code).toBe(1);
    expect(oldEpoch.status.findings).toEqual([{ kind: 'instance_epoch', detail: 'web-1 last ran under epoch 1, the record is at 2' }]);
    expect(withStatic.code).toBe(1);
    expect(withStatic.status.findings).toContainEqual({ kind: 'static_instance', detail: 'cron-1 runs a static stage (dualwrite) beside the managed record' });
    expect(withStatic.status.instances.map((i: { id: string; mode: string }) => [i.id, i.mode]).sort()).toEqual([['cron-1', 'static'], ['web-1', 'managed']]);
  });

  it('the next steps carry --prefix, --queue, --tag and the URL with its password masked, in text and JSON', async () => {
    await ctx.redis.call('ACL', 'SETUSER', 'ops', 'reset', 'on', '>s3cret-pass', '~*', '+@all');
    try {
      const secretUrl = `redis://ops:s3cret-pass@127.0.0.1:${new URL(ctx.handle.url).port}`;
      const layout = ['--prefix', 'app:', '--queue', 'emails', '--tag', 'mail', '--connect-timeout', '2000'];
      const flags = `--url 'redis://ops:***@127.0.0.1:${new URL(ctx.handle.url).port}' --connect-timeout 2000 --prefix app: --queue emails --tag mail`;
      expect((await cli(['stage', 'init', 'dualwrite', '--reason', 'start', ...layout, '--url', secretUrl])).code).toBe(0);

      const text = await cli(['status', ...layout, '--url', secretUrl]);
      const json = await cli(['status', '--json', ...layout, `--url=${secretUrl}`]);
      const refused = await cli(['stage', 'set', 'shadow', '--reason', 'x', ...layout, '--url', secretUrl]);

      expect(text.code).toBe(0);
      expect(text.stdout).toContain('stage record app:{mail}:dualwrite:stage: dualwrite, epoch 1');
      expect(text.stdout).toContain(
        `next:\n  1. copy the legacy jobs written before dual writes\n     redis-dual-write backfill ${flags}\n` +
          `  2. move the whole fleet to shadow\n     redis-dual-write stage set shadow --reason "<why>" ${flags}\n` +
          '(the password is shown as ***: type it in, or put the URL in REDIS_URL and leave out --url)',
      );
      expect(JSON.parse(json.stdout).next_steps).toEqual([
        { description: 'copy the legacy jobs written before dual writes', command: `redis-dual-write backfill ${flags}` },
        { description: 'move the whole fleet to shadow', command: `redis-dual-write stage set shadow --reason "<why>" ${flags}` },
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`remedy: run \`redis-dual-write backfill ${flags}\` to its end`);
      for (const run of [text, json, refused]) expect(run.stdout + run.stderr).not.toContain('s3cret-pass');
    } finally {
      await ctx.redis.call('ACL', 'DELUSER', 'ops');
    }
  });

  it('--history bounds the transitions shown; out of range is a usage error', async () => {
    await ok('stage', 'init', 'live', '--reason', 'start');
    for (const stage of ['rampdown', 'live', 'rampdown']) await ok('stage', 'set', stage, '--reason', `to ${stage}`, '--force');

    const { status } = await statusJson('--history', '2');
    const tooMany = await cli(['status', '--history', '201', ...url()]);

    expect(status.history.map((h: { epoch: number }) => h.epoch)).toEqual([4, 3]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain('--history: must be an integer from 1 to 200');
  });
});

describe('backfill, verify and cleanup in managed mode', () => {
  it('walks off -> complete with the commands only, each step recorded for the next stage set; status follows', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 6, ['acme', 'globex']);

    await ok('stage', 'init', 'off', '--reason', 'managed from here');
    await ok('stage', 'set', 'dualwrite', '--reason', 'dual writes on');
    const backfill = await ok('backfill', '--json');
    await ok('stage', 'set', 'shadow', '--reason', 'backfilled');
    const verifyShadow = await ok('verify');
    await ok('stage', 'set', 'live', '--reason', 'verified in shadow');
    const liveBeforeVerify = await cli(['status', ...url()]);
    await ok('verify');
    const liveAfterVerify = await statusJson();
    await ok('stage', 'set', 'rampdown', '--reason', 'reads from new');
    const completeTooSoon = await cli(['stage', 'set', 'complete', '--reason', 'done', ...url()]);
    await ok('verify');
    await ok('stage', 'set', 'complete', '--reason', 'verified in rampdown');
    const dryRun = await ok('cleanup');
    const cleanup = await ok('cleanup', '--yes');
    const done = await cli(['status', ...url()]);
    const doneJson = await statusJson();

    expect(JSON.parse(backfill.stdout)).toMatchObject({ stage: 'dualwrite', completed: true, results: { copied: 6 } });
    expect(verifyShadow.stdout).toContain('verify in stage shadow: clean');
    expect(verifyShadow.stdout).toContain('(managed mode: the result is recorded in dualwrite:stage for `stage set`\'s guards)');
    // Entering live began a new epoch: the verify of shadow no longer counts, and status says so.
    expect(liveBeforeVerify.code).toBe(1);
    expect(liveBeforeVerify.stdout).toContain('verify_stale');
    expect(liveBeforeVerify.stdout).toMatch(/verify +\S+Z +3 +clean +stale: from epoch 3, the record is at 4/);
    expect(liveAfterVerify.code).toBe(0);
    expect(liveAfterVerify.status.runs.verify).toMatchObject({ startedEpoch: 4, endedEpoch: 4, fresh: true, spannedTransition: false, summary: { clean: true, stage: 'live' } });
    expect(completeTooSoon.code).toBe(1);
    expect(completeTooSoon.stderr).toContain('rule:   verify_needed');
    expect(dryRun.stdout).toMatch(/would_delete +6/);
    expect(cleanup.stdout).toMatch(/deleted +6/);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/cleanup +\S+Z +6 +6 deleted +fresh/);
    expect(done.stdout).toContain('next:\n  1. the migration is complete and the legacy layout cleaned up');
    expect(doneJson.status.history.map((h: { from: string; to: string; forced: boolean }) => `${h.from}->${h.to}${h.forced ? '!' : ''}`)).toEqual([
      'rampdown->complete', 'live->rampdown', 'shadow->live', 'dualwrite->shadow', 'off->dualwrite', '->off',
    ]);
    const state = await redisState(ctx.redis);
    const { 'dualwrite:stage': stageRecord, 'dualwrite:stage:history': _history, ...data } = state;
    expect(data).toEqual({
      ...Object.fromEntries(jobs.map((job) => [`ws:${job.workspaceId}:job:${job.id}`, jobHash(job)])),
      'ws:acme:jobs': zset(...indexOf(jobs.filter((job) => job.workspaceId === 'acme'))),
      'ws:globex:jobs': zset(...indexOf(jobs.filter((job) => job.workspaceId === 'globex'))),
    });
    expect(stageRecord.value).toMatchObject({ stage: 'complete', epoch: '6', forced: '0', cleanup_deleted: '6' });
  });

  it('without a record each step is refused (exit 1, STAGE_UNSET) naming stage init with the flags given; nothing written', async () => {
    await putLegacyJobs(ctx.redis, 2, ['acme']);
    const before = await redisState(ctx.redis);

    const runs = await Promise.all([
      cli(['backfill', '--prefix', '', ...url()]),
      cli(['verify', '--json', ...url()]),
      cli(['cleanup', '--yes', ...url()]),
    ]);

    expect(runs.map((run) => run.code)).toEqual([1, 1, 1]);
    expect(runs[0].stderr).toContain(`no stage record at dualwrite:stage: a managed queue takes its stage from there. Create it once for the layout with \`redis-dual-write stage init <stage> --reason "..." --url ${ctx.handle.url} --prefix ''\``);
    expect(JSON.parse(runs[1].stdout)).toEqual({ error: { code: 'STAGE_UNSET', message: expect.stringContaining('stage init'), key: 'dualwrite:stage' } });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('with --stage runs in static mode as before, records nothing, and warns when the layout has a record', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await ok('stage', 'init', 'shadow', '--reason', 'managed');
    const recordBefore = await ctx.redis.hgetall('dualwrite:stage');

    const run = await cli(['backfill', '--stage', 'dualwrite', ...url()]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('backfill (copy) in stage dualwrite: completed');
    expect(run.stdout).not.toContain('managed mode');
    expect(run.stderr).toContain(
      '[warn] dualwrite:stage holds the fleet\'s stage (shadow, epoch 1); the fleet runs in shadow, not dualwrite: this backfill --stage dualwrite runs in static mode',
    );
    expect(await ctx.redis.hgetall('dualwrite:stage')).toEqual(recordBefore);
  });

  it('cleanup --stage complete --yes beside a record is refused (exit 1), nothing deleted, pointing to the managed cleanup --yes, which records its deletions', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 3, ['acme']);
    await ok('stage', 'init', 'dualwrite', '--reason', 'start');
    await ok('backfill');
    for (const stage of ['shadow', 'live', 'rampdown', 'complete']) await ok('stage', 'set', stage, '--reason', 'next', '--force');
    const before = await redisState(ctx.redis);

    const refused = await cli(['cleanup', '--stage', 'complete', '--yes', ...url()]);
    const json = await cli(['cleanup', '--stage', 'complete', '--yes', '--json', ...url()]);
    const afterRefusals = await redisState(ctx.redis);
    const managed = await ok('cleanup', '--yes');

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('redis-dual-write: cleanup with yes in static mode is refused: the layout\'s stage record dualwrite:stage (stage complete) manages it');
    expect(refused.stderr).toContain(`nothing was deleted. Run it in managed mode: \`redis-dual-write cleanup --yes --url ${ctx.handle.url}\` (without --stage)`);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'MANAGED_LAYOUT', message: expect.stringContaining('refused'), operation: 'cleanup', key: 'dualwrite:stage', stage: 'complete' },
    });
    expect(afterRefusals).toEqual(before);
    expect(managed.stdout).toMatch(/deleted +3/);
    expect(Object.keys(await redisState(ctx.redis)).filter((key) => key.startsWith('job:'))).toEqual([]);
    expect(await ctx.redis.hget('dualwrite:stage', 'cleanup_deleted')).toBe(String(jobs.length));
    expect((await cli(['stage', 'set', 'shadow', '--reason', 'fault', ...url()])).stderr).toContain('rule:   legacy_deleted');
  });

  it('a stage change under a managed backfill stops it: exit 1, recorded as spanning a transition, and it says to start over', async () => {
    await putLegacyJobs(ctx.redis, 40, ['acme']);
    await ok('stage', 'init', 'dualwrite', '--reason', 'start');
    let moved: Promise<CliRun> | undefined;
    const stdout = { text: '', write: (s: string) => (stdout.text += s) };
    // The rollback lands as soon as the first page is done; at 20 jobs/s the next one is 250 ms away.
    const stderr = {
      text: '',
      write: (s: string) => {
        stderr.text += s;
        moved ??= s.startsWith('backfill legacy') ? cli(['stage', 'set', 'off', '--reason', 'fault', ...url()]) : undefined;
      },
    };

    const code = await main(['backfill', '--rate', '20', '--batch-size', '5', ...url()], { stdout, stderr, env: {} });
    const rollback = await moved!;
    const { status } = await statusJson();

    expect(rollback.code).toBe(0);
    expect(code).toBe(1);
    expect(stderr.text).toContain('redis-dual-write: backfill: the stage changed from epoch 1 to 2 while it ran; run it again');
    expect(stderr.text).toContain(
      `The stage changed while backfill ran: it stopped and satisfies no guard (its checkpoint in dualwrite:backfill:default is of the old epoch: the next run walks the layout anew). ` +
        `Look at \`redis-dual-write status --url ${ctx.handle.url}\`, then run it again in the new stage:\n  redis-dual-write backfill --rate 20 --batch-size 5 --url ${ctx.handle.url}`,
    );
    expect(status.runs.backfill).toMatchObject({ startedEpoch: 1, endedEpoch: 2, spannedTransition: true, fresh: false, summary: { completed: false, stoppedBy: 'stage_changed' } });
  });

  it('--exclude (repeatable) passes over other hashes under the job pattern in every step', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await putJob(ctx.redis, 'job:j2', record('j2', 'acme'));
    await ctx.redis.hset('job:j1:meta', { attempts: '3' });
    await ctx.redis.hset('job:j2:audit:2024', { by: 'ops' });
    const exclude = ['--exclude', 'job:*:meta', '--exclude=job:*:audit:*'];
    await ok('stage', 'init', 'dualwrite', '--reason', 'start');

    const without = await cli(['verify', '--json', ...url()]);
    const backfill = await ok('backfill', '--json', ...exclude);
    const verify = await ok('verify', '--json', ...exclude);
    for (const stage of ['shadow', 'live', 'rampdown', 'complete']) await ok('stage', 'set', stage, '--reason', 'next', '--force');
    const cleanup = await ok('cleanup', '--yes', '--json', ...exclude);

    expect(without.code).toBe(1);
    expect(JSON.parse(without.stdout)).toMatchObject({ divergences: { bad_legacy_record: 2 } });
    expect(JSON.parse(backfill.stdout)).toMatchObject({ excluded: 2, results: { copied: 2, skipped: 0 } });
    expect(JSON.parse(verify.stdout)).toMatchObject({ clean: true, excluded: 2 });
    expect(JSON.parse(cleanup.stdout)).toMatchObject({ completed: true, excluded: 2, results: { deleted: 2 } });
    const { 'dualwrite:stage': _record, 'dualwrite:stage:history': _history, ...data } = await redisState(ctx.redis);
    expect(data).toEqual({
      'job:j1:meta': hash({ attempts: '3' }),
      'job:j2:audit:2024': hash({ by: 'ops' }),
      'ws:acme:job:j1': jobHash(record('j1', 'acme')),
      'ws:acme:job:j2': jobHash(record('j2', 'acme')),
      'ws:acme:jobs': zset(['j1', CREATED + 1], ['j2', CREATED + 2]),
    });
  });

  it('a bad --exclude pattern is a usage error (exit 2) before anything is sent, one that can never match too', async () => {
    await putJob(ctx.redis, 'app:job:j1', record('j1', 'acme'));
    const before = await redisState(ctx.redis);

    const runs = {
      empty: await cli(['backfill', '--exclude', '', ...url()]),
      tooLong: await cli(['verify', '--exclude', 'job:*', '--exclude', `job:${'x'.repeat(600)}`, ...url()]),
      withoutPrefix: await cli(['cleanup', '--prefix', 'app:', '--exclude', 'job:*:meta', ...url()]),
      elsewhere: await cli(['verify', '--exclude', 'session:*', ...url()]),
    };

    expect(Object.values(runs).map((run) => run.code)).toEqual([2, 2, 2, 2]);
    expect(runs.empty.stderr).toContain('--exclude (pattern 1): must be a glob pattern of 1 to 512 characters');
    expect(runs.tooLong.stderr).toContain('--exclude (pattern 2): must be a glob pattern of 1 to 512 characters');
    expect(runs.withoutPrefix.stderr).toContain(
      "--exclude 'job:*:meta' can never match: patterns are matched against the whole key, prefix included, and the walks see only keys matching app:job:*, app:ws:*:job:*, app:ws:*:jobs (did you mean 'app:job:*:meta'?)",
    );
    expect(runs.elsewhere.stderr).toContain("--exclude 'session:*' can never match");
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});
