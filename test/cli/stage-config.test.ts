/**
 * `stage config` as an operator types it: the shared settings go into the stage record (not a
 * transition: stage, epoch and history stay), a managed queue's next finish takes the retention,
 * 0 takes a status's retention away, and a bad command line or a missing record changes nothing.
 */
import { DualWriteQueue } from '../../src';
import { cli } from '../support/cli';
import { useRedis } from '../support/redis';
import { redisState } from '../support/state';

const ctx = useRedis();
const url = () => ['--url', ctx.handle.url];

async function init(): Promise<void> {
  expect(await cli(['stage', 'init', 'dualwrite', '--reason', 'test', ...url()])).toMatchObject({ code: 0 });
}

describe('redis-dual-write stage config', () => {
  it('writes retention and the max verify age into the record; the stage, epoch and history stay; --json says what it wrote', async () => {
    await init();
    const before = await redisState(ctx.redis);

    const run = await cli(['stage', 'config', '--retention-succeeded', '86400', '--retention-failed', '604800', '--max-verify-age', '3600000', '--json', ...url()]);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      key: 'dualwrite:stage',
      revision: 2,
      settings: { maxVerifyAgeMs: 3600000, retention: { succeeded: 86400, failed: 604800 } },
    });
    const record = before['dualwrite:stage'].value as Record<string, string>;
    expect(await redisState(ctx.redis)).toEqual({
      ...before,
      'dualwrite:stage': {
        type: 'hash',
        value: { ...record, revision: '2', max_verify_age_ms: '3600000', retention_succeeded: '86400', retention_failed: '604800' },
      },
    });
    const status = await cli(['status', ...url()]);
    expect(status.stdout).toMatch(/retention +succeeded 1 d, failed 7 d/);
  });

  it("a managed queue's next finish takes the record's retention: the same absolute expiry on both copies", async () => {
    await init();
    expect((await cli(['stage', 'config', '--retention-succeeded', '3600', ...url()])).code).toBe(0);
    const queue = new DualWriteQueue({ redis: ctx.redis, stage: 'managed', metrics: false, heartbeat: false });
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });

    const { expiresAt } = await queue.updateStatus({ workspaceId: 'acme', jobId, status: 'succeeded' });

    const state = await redisState(ctx.redis);
    expect(expiresAt).toEqual(expect.any(Number));
    expect([state[`job:${jobId}`].expiresAt, state[`ws:acme:job:${jobId}`].expiresAt]).toEqual([expiresAt, expiresAt]);
    expect(state['queue:default:expiries']).toEqual({ type: 'zset', value: [[`acme:${jobId}`, expiresAt]] });
    expect(expiresAt! - Number((state[`ws:acme:job:${jobId}`].value as Record<string, string>).updated_at)).toBe(3_600_000);
  });

  it('0 takes a status retention away: its field leaves the record', async () => {
    await init();
    await cli(['stage', 'config', '--retention-cancelled', '60', ...url()]);

    const run = await cli(['stage', 'config', '--retention-cancelled', '0', ...url()]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('retention cancelled  none: its jobs stay for good');
    expect((await redisState(ctx.redis))['dualwrite:stage'].value).not.toHaveProperty('retention_cancelled');
  });

  it('without a stage record: exit 1, STAGE_UNSET, nothing written', async () => {
    const run = await cli(['stage', 'config', '--retention-failed', '60', ...url()]);

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no stage record at dualwrite:stage');
    expect(await redisState(ctx.redis)).toEqual({});
  });

  it.each([
    [['--retention-failed', '-5'], '--retention-failed'],
    [['--retention-failed', 'soon'], '--retention-failed must be a whole number'],
    [['--max-verify-age', '0'], '--max-verify-age'],
    [[], 'must change maxVerifyAgeMs or retention'],
  ])('%j is a usage error (exit 2) and nothing is sent', async (flags, said) => {
    await init();
    const before = await redisState(ctx.redis);

    const run = await cli(['stage', 'config', ...flags, ...url()]);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(said);
    expect(await redisState(ctx.redis)).toEqual(before);
  });
});
