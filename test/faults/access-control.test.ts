/**
 * Scenario 7, access control: a Redis ACL user allowed only the layout's key patterns and the
 * commands the scripts run (serviceAclRules) does every operation, and reaches nothing else.
 * test/integration/scripts.test.ts covers ready() with and without a deploy user's preload.
 */
import Redis from 'ioredis';
import { clientCommandsFor, DualWriteQueue, IOREDIS_DEFAULT_COMMANDS, PermissionError, SERVICE_COMMANDS, serviceAclRules as rulesFor, STAGES } from '../../src';
import { aclNames, captureCommands, refusedTo, type SentCommand } from '../support/capture';
import { everyServiceCall } from '../support/service-tour';
import { checkInvariants } from '../support/invariants';
import { makeQueue, metricValue, serverVersion, useRedis } from '../support/redis';
import { recordRow } from '../support/soak';
import { putJob, redisState } from '../support/state';

const ctx = useRedis();
let service: Redis;
let version = '';
beforeAll(async () => {
  version = await serverVersion(ctx.redis);
});
/** The documented rules, for this server's version (CLIENT SETINFO from 7.2 on). */
const serviceAclRules = (keyPrefix = '') => rulesFor(keyPrefix, { serverVersion: version });

async function serviceUser(rules: string[]): Promise<Redis> {
  await ctx.redis.call('ACL', 'SETUSER', 'service', 'reset', 'on', '>service-secret', ...rules);
  const url = new URL(ctx.handle.url);
  // ioredis' default options (its ready check runs INFO), but for a short wait on disconnect.
  service = new Redis({ host: url.hostname, port: Number(url.port), username: 'service', password: 'service-secret', disconnectTimeout: 50 });
  await ctx.redis.call('ACL', 'LOG', 'RESET');
  return service;
}

/** What the server refused, as "<user> <reason> <command or key>". */
async function refusals(): Promise<string[]> {
  const entries = (await ctx.redis.call('ACL', 'LOG')) as unknown[][];
  return entries.map((entry) => {
    const fields = Object.fromEntries(Array.from({ length: entry.length / 2 }, (_, i) => [entry[2 * i], entry[2 * i + 1]]));
    return `${fields.username} ${fields.reason} ${fields.object}`;
  });
}

/** The deploy user (here the default user) loads the scripts; the service user may not. */
async function preloadAsDeployUser(): Promise<void> {
  await new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false }).ready();
}

afterEach(async () => {
  service?.disconnect();
  await ctx.redis.call('ACL', 'DELUSER', 'service');
});

describe('scenario 7: access control', () => {
  it('the minimal ACL user runs every operation in every stage, repairs and script reloads included', async () => {
    await preloadAsDeployUser();
    await putJob(ctx.redis, 'job:old', {
      id: 'old', workspaceId: 'acme', type: 't', payload: 1, status: 'queued', createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000,
    });
    const { queue, registry } = await makeQueue(await serviceUser(serviceAclRules()), 'off');
    let operations = 0;
    const run = async <T>(call: Promise<T>): Promise<T> => {
      operations++;
      return call;
    };

    for (const stage of STAGES) {
      queue.setStage(stage);
      const request = { workspaceId: 'acme', type: 't', payload: { stage }, idempotencyKey: `request-${stage}` };
      const { jobId, created } = await run(queue.enqueue(request));
      expect([stage, created]).toEqual([stage, true]);
      expect(await run(queue.enqueue(request))).toEqual({ jobId, created: false });
      await run(queue.enqueueMany([{ workspaceId: 'acme', type: 't', payload: 'batch' }]));
      await run(queue.updateStatus({ workspaceId: 'acme', jobId, status: 'running', expectedStatus: 'queued' }));
      expect((await run(queue.getJob({ workspaceId: 'acme', jobId })))?.status).toBe('running');
      expect((await run(queue.listJobs({ workspaceId: 'acme', limit: 100 }))).jobs.map((j) => j.id)).toContain(jobId);
      const claimed = await run(queue.claim({ workerId: 'worker-1' }));
      expect(claimed).not.toBeNull();
      await run(queue.updateStatus({ workspaceId: claimed!.workspaceId, jobId: claimed!.id, status: 'succeeded', workerId: 'worker-1' }));
      await run(queue.recoverStalled());
      if (stage === 'dualwrite') {
        // A job from before the package: the update copies it into the new layout.
        expect((await run(queue.updateStatus({ workspaceId: 'acme', jobId: 'old', status: 'running' }))).repaired).toBe('new');
      }
      if (stage === 'live') {
        await ctx.redis.script('FLUSH'); // a restart or failover: the next call resends its script with EVAL
        expect((await run(queue.getJob({ workspaceId: 'acme', jobId: 'old' })))?.status).toBe('running');
      }
    }

    expect(await metricValue(registry, 'dualwrite_script_reloads_total', { script: 'read_with_fallback.v4' })).toBe(1);
    // Nothing refused but the SCRIPT LOAD that ready() tries before it checks the deploy user's preload.
    expect(await refusals()).toEqual(['service command script|load']);
    const report = await checkInvariants(ctx.redis, { layouts: 'any', layoutsAgree: false });
    expect(report.violations).toEqual([]);
    recordRow({
      scenario: 7, name: 'access control (minimal ACL user)', operations, faults: 0, faultKind: 'ACL refusals',
      lost: 0, duplicated: 0, halfWritten: report.violations.length, callerErrors: 0,
    });
  });

  it('serviceAclRules grant every command the service sends, on the keys it names, and nothing it never sends', async () => {
    await ctx.redis.call('ACL', 'SETUSER', 'service', 'reset', 'on', '>service-secret', ...serviceAclRules());
    const { hostname, port } = new URL(ctx.handle.url);
    let client: Redis | undefined;
    let calls = 0;
    // What the code sends, as a user that may do anything; a new client, so its own start is in it too.
    const sent: SentCommand[] = await captureCommands(
      [{ host: hostname, port: Number(port) }],
      async () => {
        client = new Redis({ host: hostname, port: Number(port) });
        const queue = new DualWriteQueue({ redis: client, stage: 'managed', metrics: false, heartbeat: { intervalMs: 1000 } });
        calls = await everyServiceCall(queue, ctx.redis, async () => void (await ctx.redis.script('FLUSH')));
      },
      { ignoreClients: [ctx.redis] },
    );
    client?.disconnect();

    const names = await aclNames(ctx.redis, sent);
    // ready() tries SCRIPT LOAD first; a service user is refused it by design, and then checks the preload.
    const refusedByDesign = ['script|load'];
    const granted = [...SERVICE_COMMANDS, ...clientCommandsFor(version)];
    expect([...names].filter((name) => !granted.includes(name))).toEqual(refusedByDesign);
    // Never sent here: SCRIPT EXISTS (only after that refusal), and the Cluster client's own commands.
    const clusterOnly = IOREDIS_DEFAULT_COMMANDS.filter((name) => name !== 'info');
    expect(SERVICE_COMMANDS.filter((name) => !names.has(name))).toEqual(['script|exists', ...clusterOnly]);
    const checked = sent.filter(({ args }) => !(args[0].toLowerCase() === 'script' && args[1].toLowerCase() === 'load'));
    expect(await refusedTo('service', checked, () => ctx.redis)).toEqual([]);
    expect(names).toContain('eval'); // the flushed script came back with EVAL
    expect(calls).toBeGreaterThan(60);
  });

  it('keys outside the patterns are unreachable: through the package, plain commands, or a script of its own', async () => {
    await preloadAsDeployUser();
    await ctx.redis.set('secret', 'password');
    await ctx.redis.hset('job:other', 'id', 'other', 'workspace_id', 'acme');
    const before = await redisState(ctx.redis);
    const redis = await serviceUser(serviceAclRules('svc:')); // this service owns the svc: prefix only
    const mine = await makeQueue(redis, 'dualwrite', { keyPrefix: 'svc:' });
    const outside = new DualWriteQueue({ heartbeat: false, redis, stage: 'dualwrite', metrics: false }); // no prefix: outside

    const attempts: [string, Promise<unknown>][] = [
      ['enqueue', outside.enqueue({ workspaceId: 'acme', type: 't', payload: 1 })],
      ['updateStatus', outside.updateStatus({ workspaceId: 'acme', jobId: 'other', status: 'failed' })],
      ['getJob', outside.getJob({ workspaceId: 'acme', jobId: 'other' })],
      ['listJobs', outside.listJobs({ workspaceId: 'acme' })],
      ['claim', outside.claim({ workerId: 'w' })],
    ];
    for (const [name, attempt] of attempts) {
      const error = await attempt.catch((e) => e);
      expect([name, error]).toEqual([name, expect.any(PermissionError)]);
    }
    const direct: [string, Promise<unknown>][] = [
      ['GET', redis.get('secret')],
      ['HGETALL', redis.hgetall('job:other')],
      ['KEYS', redis.keys('*')],
      ['SCAN', redis.scan('0')],
      ['FLUSHALL', redis.flushall()],
      ['CONFIG', redis.config('GET', 'maxmemory')],
      ['SCRIPT LOAD', redis.script('LOAD', 'return 1')],
      ['EVAL, key declared', redis.eval("return redis.call('GET', KEYS[1])", 1, 'secret')],
      ['EVAL, key not declared', redis.eval("return redis.call('GET', 'secret')", 0)],
      ['EVAL, a write', redis.eval("return redis.call('DEL', 'job:other')", 0)],
    ];
    for (const [name, attempt] of direct) {
      const error = await attempt.catch((e: Error) => e);
      // Redis 7.0 words a refusal inside a script as "The user executing the script can't ...".
      expect([name, error instanceof Error && /NOPERM|permission|executing the script can't/i.test(error.message)]).toEqual([name, true]);
    }
    expect(await mine.queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'j1' })).toEqual({ jobId: 'j1', created: true });

    const after = await redisState(ctx.redis);
    expect(Object.keys(after).filter((key) => !key.startsWith('svc:'))).toEqual(Object.keys(before));
    expect(Object.fromEntries(Object.entries(after).filter(([key]) => !key.startsWith('svc:')))).toEqual(before);
    recordRow({
      scenario: 7, name: 'access control (minimal ACL user)', operations: attempts.length + direct.length + 1,
      faults: attempts.length + direct.length, faultKind: 'ACL refusals', lost: 0, duplicated: 0, halfWritten: 0,
      callerErrors: attempts.length + direct.length, callerErrorKinds: { 'NO_PERMISSION (expected refusals)': attempts.length + direct.length },
    });
  });

  it('without +eval a lost script cache cannot be recovered: the call fails with PermissionError naming EVAL, nothing written', async () => {
    await preloadAsDeployUser();
    const { queue } = await makeQueue(await serviceUser([...serviceAclRules(), '-eval']), 'dualwrite');
    await ctx.redis.script('FLUSH');

    const error = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1 }).catch((e) => e);

    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ code: 'NO_PERMISSION', command: 'EVAL' });
    expect(await redisState(ctx.redis)).toEqual({});
  });
});
