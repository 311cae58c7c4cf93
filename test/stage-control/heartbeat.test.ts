/**
 * Heartbeats: each queue says, at most every interval and after a call that went through, which
 * package, scripts, mode and epoch it runs; status shows the instances and flags those a person
 * should look at. A user the ACL does not let beat still serves traffic.
 */
import Redis from 'ioredis';
import { DualWriteQueue, Migration, serviceAclRules, type Logger } from '../../src';
import { SCRIPTS_SHA1 } from '../../src/stage-control/heartbeat';
import { useRedis } from '../support/redis';

const ctx = useRedis();

const operator = () => new Migration({ redis: ctx.redis, stage: 'managed', metrics: false });
const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
};
const beats = async () => ctx.redis.zcard('dualwrite:instances');

describe('heartbeats', () => {
  it('a managed queue beats after a call, with what it runs; status lists it and is healthy', async () => {
    await operator().initStage('dualwrite', { reason: 'test' });
    const queue = new DualWriteQueue({ redis: ctx.redis, stage: 'managed', metrics: false, instanceId: 'svc-1', heartbeat: { intervalMs: 1000 } });

    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await until(async () => (await beats()) === 1);
    const status = await operator().status();

    expect(JSON.parse((await ctx.redis.hget('dualwrite:instances:info', 'svc-1'))!)).toMatchObject({
      queue: 'default', mode: 'managed', stage: 'dualwrite', epoch: '1', scripts: SCRIPTS_SHA1, version: expect.any(String), pid: process.pid,
    });
    expect(status.instances).toEqual([expect.objectContaining({ id: 'svc-1', mode: 'managed', epoch: '1', ageMs: expect.any(Number) })]);
    expect(status.findings).toEqual([]);
    expect(status.healthy).toBe(true);
  });

  it('status flags a static instance beside the record, and one on an older epoch', async () => {
    await operator().initStage('dualwrite', { reason: 'test' });
    const stale = new DualWriteQueue({ redis: ctx.redis, stage: 'managed', metrics: false, instanceId: 'svc-old', heartbeat: { intervalMs: 1000 } });
    const lone = new DualWriteQueue({ redis: ctx.redis, stage: 'dualwrite', metrics: false, instanceId: 'svc-static', heartbeat: { intervalMs: 1000 } });
    await stale.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await lone.enqueue({ workspaceId: 'acme', type: 't', payload: 2 });
    await until(async () => (await beats()) === 2);
    await operator().setStage('off', { reason: 'rollback' });

    const status = await operator().status();

    expect(status.healthy).toBe(false);
    expect(status.findings.map((finding) => finding.kind).sort()).toEqual(['instance_epoch', 'static_instance']);
  });

  it('status flags an instance that runs other scripts than this package (a rolling deploy half done)', async () => {
    await operator().initStage('dualwrite', { reason: 'test' });
    const queue = new DualWriteQueue({ redis: ctx.redis, stage: 'managed', metrics: false, instanceId: 'svc-new', heartbeat: { intervalMs: 1000 } });
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await until(async () => (await beats()) === 1);
    // Another version's instance, as its own heartbeat would say it: the same epoch, other scripts.
    const info = JSON.parse((await ctx.redis.hget('dualwrite:instances:info', 'svc-new'))!);
    await ctx.redis.zadd('dualwrite:instances', Date.now(), 'svc-old-version');
    await ctx.redis.hset('dualwrite:instances:info', 'svc-old-version', JSON.stringify({ ...info, version: '0.0.9', scripts: 'f'.repeat(40) }));

    const status = await operator().status();

    expect(status.findings).toEqual([{ kind: 'instance_scripts', detail: 'svc-old-version runs other scripts (package 0.0.9) than this one' }]);
    expect(status.healthy).toBe(false);
  });

  it('prunes instances gone quiet for a minute, a bounded number per beat', async () => {
    await operator().initStage('off', { reason: 'test' });
    const longAgo = Date.now() - 120_000;
    for (let i = 0; i < 15; i++) {
      await ctx.redis.zadd('dualwrite:instances', longAgo, `gone-${i}`);
      await ctx.redis.hset('dualwrite:instances:info', `gone-${i}`, '{}');
    }
    const queue = new DualWriteQueue({ redis: ctx.redis, stage: 'managed', metrics: false, instanceId: 'svc-1', heartbeat: { intervalMs: 1000 } });

    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
    await until(async () => (await ctx.redis.zscore('dualwrite:instances', 'svc-1')) !== null);

    // Ten per beat: five of the fifteen wait for the next one. Status never shows them either way.
    expect(await beats()).toBe(6);
    expect(await ctx.redis.hlen('dualwrite:instances:info')).toBe(6);
    expect((await operator().status()).instances.map((instance) => instance.id)).toEqual(['svc-1']);
  });

  it('a user the ACL does not let beat serves traffic, is warned about once, and is unseen in status', async () => {
    await operator().initStage('dualwrite', { reason: 'test' });
    // The stage record, but not the heartbeat keys, of the layout's own keys.
    const rules = serviceAclRules().filter((rule) => rule !== '~dualwrite:instances*');
    expect(rules).toHaveLength(serviceAclRules().length - 1);
    await ctx.redis.call('ACL', 'SETUSER', 'quiet', 'reset', 'on', '>pw', ...rules);
    const { hostname, port } = new URL(ctx.handle.url);
    const restricted = new Redis({ host: hostname, port: Number(port), username: 'quiet', password: 'pw', enableReadyCheck: false });
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} };
    try {
      const queue = new DualWriteQueue({ redis: restricted, stage: 'managed', metrics: false, logger, instanceId: 'svc-q', heartbeat: { intervalMs: 1000 } });

      const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 });
      await until(async () => warnings.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await queue.getJob({ workspaceId: 'acme', jobId });
      await new Promise((resolve) => setTimeout(resolve, 100));

      expect(await ctx.redis.exists(`job:${jobId}`, `ws:acme:job:${jobId}`)).toBe(2);
      expect(warnings.filter((w) => w.includes('may not write heartbeats'))).toHaveLength(1);
      expect(await beats()).toBe(0);
      expect((await operator().status()).instances).toEqual([]);
    } finally {
      restricted.disconnect();
      await ctx.redis.call('ACL', 'DELUSER', 'quiet');
    }
  });
});
