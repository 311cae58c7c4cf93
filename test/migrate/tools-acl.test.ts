/**
 * The migration tools' ACL rules (migrationAclRules) are what the tools send. Every command of every
 * tool, captured with MONITOR (scripts' inner commands included) while the tools run as a user that
 * may do anything, is granted by the rules on the keys it names (ACL DRYRUN); the list holds
 * nothing they do not send; and every tool runs as a user with exactly those rules, refused nothing.
 * The tour walks the managed path too (stage init, stage set through every stage, status, and the
 * steps without --stage), so the same user runs the whole migration; the service's rules stay
 * without what a transition writes. test/cluster/access-control.test.ts does the same on a cluster.
 */
import Redis from 'ioredis';
import {
  clientCommandsFor,
  clusterLayout,
  IOREDIS_DEFAULT_COMMANDS,
  Migration,
  MIGRATION_COMMANDS,
  migrationAclRules as migrationRulesFor,
  SERVICE_COMMANDS,
  serviceAclRules as serviceRulesFor,
} from '../../src';
import { cli } from '../support/cli';
import { aclNames, captureCommands, refusedTo, type SentCommand } from '../support/capture';
import { serverVersion, useRedis } from '../support/redis';
import { redisState } from '../support/state';
import { TOUR_EXIT_CODES, toolsTour, type ToolsTarget, type ToolsUser } from '../support/tools-tour';

const ctx = useRedis();
const TOOLS: ToolsUser = { name: 'tools', password: 'tools-secret' };
let version = '';
beforeAll(async () => {
  version = await serverVersion(ctx.redis);
});
/** The documented rules, for this server's version (CLIENT SETINFO from 7.2 on). */
const migrationAclRules = (keyPrefix = '') => migrationRulesFor(keyPrefix, { serverVersion: version });
const serviceAclRules = (keyPrefix = '') => serviceRulesFor(keyPrefix, { serverVersion: version });

function standalone(): ToolsTarget {
  const { hostname, port } = new URL(ctx.handle.url);
  return {
    admin: ctx.redis,
    cliTarget: (user) => {
      const url = new URL(ctx.handle.url);
      if (user) [url.username, url.password] = [user.name, user.password];
      return ['--url', url.toString()];
    },
    clientAs: (user) => new Redis({ host: hostname, port: Number(port), ...(user ? { username: user.name, password: user.password } : {}), disconnectTimeout: 50 }),
    flushScripts: async () => void (await ctx.redis.script('FLUSH')),
  };
}

/** What the tour leaves, by kind of key under `prefix` (a key outside it counts as such): the same whoever runs the tools. */
async function stateSummary(prefix = ''): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const key of Object.keys(await redisState(ctx.redis))) {
    const kind = key.startsWith(prefix) ? key.slice(prefix.length).replace(/:(j|live)\d+$/, ':<id>') : `OUTSIDE THE PREFIX: ${key}`;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

const END_STATE = {
  // the stage record and its history, and the heartbeat of the instance status lists
  'dualwrite:stage': 1,
  'dualwrite:stage:history': 1,
  'dualwrite:instances': 1,
  'dualwrite:instances:info': 1,
  // cleanup --yes deleted every legacy record but the four a bare entry still names (two waiting, two claimed)
  'job:<id>': 4,
  'ws:acme:job:<id>': 24,
  'ws:globex:job:<id>': 20,
  'ws:acme:jobs': 1,
  'ws:globex:jobs': 1,
  'queue:orders': 1,
  'queue:orders:processing': 1,
  'queue:orders:claims': 1,
  'queue:orders:orphans': 1,
};

describe("the migration tools' ACL rules, on one server", () => {
  beforeEach(async () => {
    await ctx.redis.call('ACL', 'SETUSER', TOOLS.name, 'reset', 'on', `>${TOOLS.password}`, ...migrationAclRules());
    await ctx.redis.call('ACL', 'LOG', 'RESET');
  });
  afterEach(async () => {
    await ctx.redis.call('ACL', 'DELUSER', TOOLS.name);
  });

  it('grant every command every tool sends, on the keys it names, and nothing the tools never send', async () => {
    const { hostname, port } = new URL(ctx.handle.url);
    const sent: SentCommand[] = [];
    const steps = await toolsTour(standalone(), undefined, async (_step, run) => {
      let code = -1;
      sent.push(...(await captureCommands([{ host: hostname, port: Number(port) }], async () => void (code = await run()))));
      return code;
    });

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await stateSummary()).toEqual(END_STATE);
    const names = await aclNames(ctx.redis, sent);
    const granted = [...MIGRATION_COMMANDS, ...clientCommandsFor(version)];
    expect([...names].filter((name) => !granted.includes(name))).toEqual([]);
    // One server: the Cluster client's own commands are not sent here, nor WAIT, which a transition
    // sends only when the record's master has a replica (the cluster test sends it).
    const clusterOnly = IOREDIS_DEFAULT_COMMANDS.filter((name) => name !== 'info');
    expect(MIGRATION_COMMANDS.filter((name) => !names.has(name)).sort()).toEqual([...clusterOnly, 'wait'].sort());
    expect(await refusedTo(TOOLS.name, sent, () => ctx.redis)).toEqual([]);
    expect(sent.length).toBeGreaterThan(100);
  });

  it('let every tool run as a user with exactly those rules: same exit codes, same end state, nothing refused', async () => {
    const steps = await toolsTour(standalone(), TOOLS);

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await ctx.redis.call('ACL', 'LOG')).toEqual([]);
    expect(await stateSummary()).toEqual(END_STATE);
    expect(await ctx.redis.hgetall('dualwrite:stage')).toMatchObject({ stage: 'complete', epoch: '5', forced: '0', cleanup_deleted: '40' });
  });

  it("run with --prefix and --tag together as exactly migrationAclRules('app:{orders}:'): every key under that prefix once, none outside it, nothing refused", async () => {
    await ctx.redis.call('ACL', 'SETUSER', TOOLS.name, 'reset', 'on', `>${TOOLS.password}`, ...migrationAclRules('app:{orders}:'));
    const target = { ...standalone(), keys: clusterLayout('orders'), keyPrefix: 'app:', layoutArgs: ['--tag', 'orders'] };

    const steps = await toolsTour(target, TOOLS);

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await ctx.redis.call('ACL', 'LOG')).toEqual([]);
    expect(await stateSummary('app:{orders}:')).toEqual(END_STATE);
  });

  it("stage control is not the service's: its rules stay without what a transition writes, and the service user cannot move the fleet", async () => {
    const service = { name: 'service', password: 'service-secret' };
    await ctx.redis.call('ACL', 'SETUSER', service.name, 'reset', 'on', `>${service.password}`, ...serviceAclRules());
    try {
      const url = new URL(ctx.handle.url);
      [url.username, url.password] = [service.name, service.password];
      const asService = ['--url', url.toString()];
      // The deploy user loads the scripts (a service user may not).
      const tools = new Migration({ redis: ctx.redis, stage: 'managed', metrics: false });
      await tools.ready();
      const init = await cli(['stage', 'init', 'off', '--reason', 'x', ...asService]);
      const afterInit = await redisState(ctx.redis);
      await tools.initStage('dualwrite', { reason: 'by the tools user' });
      const before = await redisState(ctx.redis);
      const set = await cli(['stage', 'set', 'off', '--reason', 'x', '--json', ...asService]);

      expect(['lpush', 'ltrim', 'hincrby', 'wait'].filter((name) => (SERVICE_COMMANDS as readonly string[]).includes(name))).toEqual([]);
      expect(init.code).toBe(3);
      // The history is no key of the service's: Redis refuses the script before it runs.
      expect(init.stderr).toMatch(/NOPERM .*permissions to access .*key/i);
      expect(afterInit).toEqual({});
      expect(set.code).toBe(3);
      expect(JSON.parse(set.stdout)).toMatchObject({ error: { code: 'NO_PERMISSION' } });
      expect(await redisState(ctx.redis)).toEqual(before);
    } finally {
      await ctx.redis.call('ACL', 'DELUSER', service.name);
    }
  });
});
