/**
 * `stage init` and `stage set` as an operator types them: each creates or moves the layout's stage
 * record through Migration, every guard's refusal exits 1 with its rule and remedy and changes
 * nothing, --force passes and is recorded, --expect-epoch makes two operators' moves exclusive,
 * and a bad command line exits 2 with nothing sent.
 */
import { readFileSync } from 'node:fs';
import { MANIFEST_PATH } from '../../src/scripts/manifest';
import Redis from 'ioredis';
import { startRedis, type RedisHandle } from '../../src/testing';
import { cli } from '../support/cli';
import { useRedis } from '../support/redis';
import { putJob, redisState } from '../support/state';
import { record } from '../migrate/fixtures';

const ctx = useRedis();

const url = () => ['--url', ctx.handle.url];
const manifestShas = () => (JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as { sha1: string }[]).map((script) => script.sha1);
const history = async () => (await ctx.redis.lrange('dualwrite:stage:history', 0, -1)).map((entry) => JSON.parse(entry));

async function init(stage: string, ...flags: string[]): Promise<void> {
  const run = await cli(['stage', 'init', stage, '--reason', 'test', ...flags, ...url()]);
  expect(run).toMatchObject({ code: 0 });
}

describe('redis-dual-write stage init', () => {
  it('creates the record at epoch 1 with who and why, prints the transition (--json: the TransitionResult), exit 0', async () => {
    const run = await cli(['stage', 'init', 'dualwrite', '--reason', 'first managed stage', '--by', 'ops@host', '--max-verify-age', '3600000', '--json', ...url()]);

    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toEqual({ from: null, to: 'dualwrite', epoch: 1, changedAt: expect.any(Number), forced: false, replicated: null });
    const state = await redisState(ctx.redis);
    expect(Object.keys(state)).toEqual(['dualwrite:stage', 'dualwrite:stage:history']);
    expect(state['dualwrite:stage'].value).toEqual({
      stage: 'dualwrite', plan: '11L00', epoch: '1', revision: '1', changed_at: String(result.changedAt), changed_by: 'ops@host',
      reason: 'first managed stage', forced: '0', max_verify_age_ms: '3600000', entered_dualwrite_epoch: '1', needs_resync: '0', cleanup_deleted: '0',
    });
    expect(await history()).toEqual([{ epoch: 1, from: '', to: 'dualwrite', at: result.changedAt, by: 'ops@host', reason: 'first managed stage', forced: false }]);
  });

  it('says in text what it created, and that there was no replica to wait for', async () => {
    const run = await cli(['stage', 'init', 'off', '--reason', 'start', ...url()]);

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^stage record dualwrite:stage created: off\n {2}epoch +1\n {2}changed at +\d{4}-\d\d-\d\dT[\d:.]+Z\n {2}forced +no\n {2}replica +none to wait for/);
  });

  it('with --prefix and --tag creates the record of that layout', async () => {
    const run = await cli(['stage', 'init', 'off', '--reason', 'start', '--prefix', 'app:', '--tag', 'emails', ...url()]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('stage record app:{emails}:dualwrite:stage created: off');
    expect(Object.keys(await redisState(ctx.redis))).toEqual(['app:{emails}:dualwrite:stage', 'app:{emails}:dualwrite:stage:history']);
  });

  it('refuses when a record exists: exit 1, the rule and the remedy (stage set, with the flags given), nothing changed', async () => {
    await init('off');
    const before = await redisState(ctx.redis);

    const run = await cli(['stage', 'init', 'live', '--reason', 'again', ...url()]);
    const json = await cli(['stage', 'init', 'live', '--reason', 'again', '--json', ...url()]);

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('stage (none) -> live refused; nothing changed\n  rule:   exists\n');
    expect(run.stderr).toContain(`remedy: dualwrite:stage exists already: use \`redis-dual-write stage set --url ${ctx.handle.url}\``);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'TRANSITION_REFUSED', message: expect.stringContaining('refused (exists)'), from: '(none)', to: 'live', rule: 'exists', remedy: expect.stringContaining('stage set') },
    });
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});

describe('redis-dual-write stage set: the guards', () => {
  it.each([
    ['a forward move of two stages', 'off', 'shadow', 'one_step', 'move forward one stage at a time: dualwrite next'],
    ['leaving dualwrite without a backfill', 'dualwrite', 'shadow', 'backfill_needed', `run \`redis-dual-write backfill --url URL\` to its end`],
    ['entering live without a verify', 'shadow', 'live', 'verify_needed', 'run `redis-dual-write verify --url URL` in shadow (epoch 1); it must come back clean'],
    ['entering complete without a verify', 'rampdown', 'complete', 'verify_needed', 'run `redis-dual-write verify --url URL` in rampdown'],
  ])('refuses %s (%s -> %s): exit 1, rule and remedy printed, nothing changed; --force passes and is recorded', async (_what, from, to, rule, remedy) => {
    await init(from);
    const before = await redisState(ctx.redis);

    const refused = await cli(['stage', 'set', to, '--reason', 'next', ...url()]);
    const afterRefusal = await redisState(ctx.redis);
    const forced = await cli(['stage', 'set', to, '--reason', 'incident 42', '--force', '--by', 'oncall', '--json', ...url()]);

    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`stage ${from} -> ${to} refused; nothing changed\n  rule:   ${rule}\n  remedy: ${remedy.replace('URL', ctx.handle.url)}`);
    expect(refused.stderr).toContain('or --force with a reason');
    expect(afterRefusal).toEqual(before);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ from, to, epoch: 2, changedAt: expect.any(Number), forced: true, replicated: null });
    expect(forced.stderr).toContain('[warn] redis-dual-write: stage transition forced past a guard');
    expect(await ctx.redis.hgetall('dualwrite:stage')).toMatchObject({ stage: to, epoch: '2', forced: '1', reason: 'incident 42', changed_by: 'oncall' });
    expect((await history())[0]).toMatchObject({ epoch: 2, from, to, forced: true, reason: 'incident 42', by: 'oncall' });
  });

  it('refuses the stage it is in, even with --force', async () => {
    await init('live');
    const before = await redisState(ctx.redis);

    const runs = [await cli(['stage', 'set', 'live', '--reason', 'x', ...url()]), await cli(['stage', 'set', 'live', '--reason', 'x', '--force', ...url()])];

    expect(runs.map((run) => run.code)).toEqual([1, 1]);
    for (const run of runs) expect(run.stderr).toContain('rule:   same_stage\n  remedy: the layout is in live already');
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('refuses a move out of dualwrite after a stay in off until a --resync backfill ran', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await init('dualwrite');
    for (const stage of ['off', 'dualwrite']) expect((await cli(['stage', 'set', stage, '--reason', 'rollback and back', ...url()])).code).toBe(0);
    expect((await cli(['backfill', ...url()])).code).toBe(0);
    const before = await redisState(ctx.redis);

    const refused = await cli(['stage', 'set', 'shadow', '--reason', 'next', ...url()]);
    const afterRefusal = await redisState(ctx.redis);
    const resync = await cli(['backfill', '--resync', ...url()]);
    const passed = await cli(['stage', 'set', 'shadow', '--reason', 'next', ...url()]);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`rule:   resync_needed\n  remedy: the new layout went stale in off: run \`redis-dual-write backfill --resync --url ${ctx.handle.url}\` to its end`);
    expect(afterRefusal).toEqual(before);
    expect(resync.code).toBe(0);
    expect(passed.code).toBe(0);
    expect(passed.stdout).toMatch(/^stage dualwrite -> shadow\n {2}epoch +4\n/);
    expect(await ctx.redis.hgetall('dualwrite:stage')).toMatchObject({ stage: 'shadow', epoch: '4', forced: '0', needs_resync: '0' });
  });

  it('refuses live once the clean verify is older than --max-verify-age', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await init('shadow', '--max-verify-age', '1');
    expect((await cli(['backfill', ...url()])).code).toBe(0);
    expect((await cli(['verify', ...url()])).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the 1 ms the verify counts for
    const before = await redisState(ctx.redis);

    const refused = await cli(['stage', 'set', 'live', '--reason', 'next', ...url()]);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`rule:   verify_stale\n  remedy: the last clean verify is older than 1 ms: run \`redis-dual-write verify --url ${ctx.handle.url}\` again`);
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('refuses, once cleanup deleted legacy records, every stage that reads them; rampdown passes', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await init('complete');
    expect((await cli(['backfill', ...url()])).code).toBe(0);
    expect((await cli(['cleanup', '--yes', ...url()])).code).toBe(0);
    const before = await redisState(ctx.redis);

    const refused = await Promise.all(['shadow', 'dualwrite', 'off'].map((to) => cli(['stage', 'set', to, '--reason', 'fault', ...url()])));
    const afterRefusals = await redisState(ctx.redis);
    const rampdown = await cli(['stage', 'set', 'rampdown', '--reason', 'fault', ...url()]);

    expect(refused.map((run) => run.code)).toEqual([1, 1, 1]);
    for (const run of refused) expect(run.stderr).toContain('rule:   legacy_deleted\n  remedy: cleanup has deleted 1 legacy records');
    expect(afterRefusals).toEqual(before);
    expect(rampdown.code).toBe(0);
    expect(await ctx.redis.hget('dualwrite:stage', 'stage')).toBe('rampdown');
  });

  it('without a record: exit 1, rule unset, the remedy names stage init with the flags given', async () => {
    const run = await cli(['stage', 'set', 'dualwrite', '--reason', 'x', '--prefix', 'app:', ...url()]);

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`rule:   unset\n  remedy: there is no stage record at app:dualwrite:stage: create it with \`redis-dual-write stage init <stage> --url ${ctx.handle.url} --prefix app:\``);
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it('--expect-epoch: refused at another epoch, nothing changed; passes at the one the record is at', async () => {
    await init('off');
    const before = await redisState(ctx.redis);

    const stale = await cli(['stage', 'set', 'dualwrite', '--reason', 'x', '--expect-epoch', '7', ...url()]);
    const afterRefusal = await redisState(ctx.redis);
    const current = await cli(['stage', 'set', 'dualwrite', '--reason', 'x', '--expect-epoch', '1', '--json', ...url()]);

    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`rule:   expected_epoch\n  remedy: the record is at epoch 1, not 7: look at \`redis-dual-write status --url ${ctx.handle.url}\` again`);
    expect(afterRefusal).toEqual(before);
    expect(current.code).toBe(0);
    expect(JSON.parse(current.stdout)).toMatchObject({ from: 'off', to: 'dualwrite', epoch: 2, forced: false });
  });

  it('of two operators naming the same epoch, exactly one moves the fleet', async () => {
    await init('live');

    const runs = await Promise.all(['rampdown', 'shadow'].map((to) => cli(['stage', 'set', to, '--reason', 'race', '--expect-epoch', '1', ...url()])));

    expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
    expect(await ctx.redis.hget('dualwrite:stage', 'epoch')).toBe('2');
    expect(await history()).toHaveLength(2);
  });
});

describe('redis-dual-write stage set with a replica', () => {
  let replica: RedisHandle;
  let replicaClient: Redis;
  beforeAll(async () => {
    const { hostname, port } = new URL(ctx.handle.url);
    replica = await startRedis({ via: 'binary', serverArgs: ['--replicaof', hostname, port, '--enable-debug-command', 'yes'] });
    replicaClient = new Redis(replica.url);
    for (let i = 0; i < 100 && !/master_link_status:up/.test(await replicaClient.info('replication')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(async () => {
    replicaClient?.disconnect();
    await replica?.stop();
  });

  it('says whether a replica acknowledged, and warns when none did within --replica-wait (the move stands: exit 0)', async () => {
    const acknowledged = await cli(['stage', 'init', 'off', '--reason', 'start', ...url()]);
    const asleep = replicaClient.call('DEBUG', 'SLEEP', '1').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const unacknowledged = await cli(['stage', 'set', 'dualwrite', '--reason', 'on', '--replica-wait', '300', ...url()]);
    await asleep;

    expect(acknowledged.code).toBe(0);
    expect(acknowledged.stdout).toMatch(/\n {2}replica +acknowledged\n$/);
    expect(unacknowledged.code).toBe(0);
    expect(unacknowledged.stdout).toContain(
      `replica     NOT acknowledged within 300 ms: an automatic failover now could lose this change; check the replicas, then \`redis-dual-write status --url ${ctx.handle.url}\``,
    );
    expect(unacknowledged.stderr).toContain('[warn] redis-dual-write: no replica acknowledged the stage change in time');
    expect(await ctx.redis.hget('dualwrite:stage', 'stage')).toBe('dualwrite');
  });
});

describe('redis-dual-write stage: usage', () => {
  it('`stage` alone prints its usage (exit 2; with --help exit 0)', async () => {
    const alone = await cli(['stage']);
    const help = await cli(['stage', '--help']);

    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('Usage: redis-dual-write stage <init|set> [options]');
    expect(alone.stderr).toMatch(/\n {2}stage init +create/);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/\n {2}stage set +move the whole fleet/);
  });

  it('a bad command line exits 2 and says what was wrong; nothing is sent', async () => {
    const runs = {
      noStage: await cli(['stage', 'set', '--reason', 'x', ...url()]),
      badStage: await cli(['stage', 'set', 'sideways', '--reason', 'x', ...url()]),
      noReason: await cli(['stage', 'init', 'off', ...url()]),
      blankReason: await cli(['stage', 'set', 'live', '--reason', '  ', ...url()]),
      badEpoch: await cli(['stage', 'set', 'live', '--reason', 'x', '--expect-epoch', 'latest', ...url()]),
      negativeEpoch: await cli(['stage', 'set', 'live', '--reason', 'x', '--expect-epoch=-1', ...url()]),
      longWait: await cli(['stage', 'set', 'live', '--reason', 'x', '--replica-wait', '600000', ...url()]),
      badAge: await cli(['stage', 'init', 'off', '--reason', 'x', '--max-verify-age', '0', ...url()]),
      forceOnInit: await cli(['stage', 'init', 'off', '--reason', 'x', '--force', ...url()]),
      unknownAction: await cli(['stage', 'show', ...url()]),
      twoStages: await cli(['stage', 'set', 'live', 'shadow', '--reason', 'x', ...url()]),
    };

    expect(Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, run.code]))).toEqual(
      Object.fromEntries(Object.keys(runs).map((name) => [name, 2])),
    );
    expect(runs.noStage.stderr).toContain('stage set needs <stage>: off, dualwrite, shadow, live, rampdown or complete');
    expect(runs.badStage.stderr).toContain('<stage>: sideways is not a stage');
    expect(runs.noReason.stderr).toContain('stage init needs --reason "<why>"');
    expect(runs.blankReason.stderr).toContain('--reason: must say why, in 1 to 500 characters');
    expect(runs.badEpoch.stderr).toContain('--expect-epoch must be a whole number, got latest');
    expect(runs.negativeEpoch.stderr).toContain('--expect-epoch: must be an integer from 0');
    expect(runs.longWait.stderr).toContain('--replica-wait: must be an integer from 0 to 60000');
    expect(runs.badAge.stderr).toContain('--max-verify-age: must be an integer from 1');
    expect(runs.forceOnInit.stderr).toContain("Unknown option '--force'");
    expect(runs.unknownAction.stderr).toContain("unknown command 'stage show'");
    expect(runs.twoStages.stderr).toContain('unexpected argument shadow');
    expect(await redisState(ctx.redis)).toEqual({});
    expect(await ctx.redis.script('EXISTS', ...manifestShas())).toEqual(manifestShas().map(() => 0));
  });
});

describe('stage and status against a stopped server', () => {
  it('exit 3: the command itself failed, and says it cannot reach Redis', async () => {
    const server = await startRedis({ via: 'binary' });
    await server.stop();

    const runs = await Promise.all([
      cli(['stage', 'init', 'off', '--reason', 'x', '--url', server.url]),
      cli(['stage', 'set', 'live', '--reason', 'x', '--url', server.url]),
      cli(['status', '--url', server.url]),
      cli(['status', '--json', '--url', server.url]),
      cli(['backfill', '--url', server.url]),
    ]);

    expect(runs.map((run) => run.code)).toEqual([3, 3, 3, 3, 3]);
    for (const run of runs) expect(run.stderr).toContain(`cannot reach Redis at ${server.url}`);
    expect(JSON.parse(runs[3].stdout)).toEqual({ error: { code: 'REDIS_UNAVAILABLE', message: expect.stringContaining('cannot reach Redis') } });
  });
});
