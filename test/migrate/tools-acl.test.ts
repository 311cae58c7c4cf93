/**
 * The migration tools' ACL rules (migrationAclRules) are what the tools send. Every command of every
 * tool, captured with MONITOR (scripts' inner commands included) while the tools run as a user that
 * may do anything, is granted by the rules on the keys it names (ACL DRYRUN); the list holds
 * nothing they do not send; and every tool runs as a user with exactly those rules, refused nothing.
 * test/cluster/access-control.test.ts does the same on a cluster.
 */
import Redis from 'ioredis';
import { IOREDIS_DEFAULT_COMMANDS, MIGRATION_COMMANDS, migrationAclRules } from '../../src';
import { aclNames, captureCommands, refusedTo, type SentCommand } from '../support/capture';
import { useRedis } from '../support/redis';
import { redisState } from '../support/state';
import { TOUR_EXIT_CODES, toolsTour, type ToolsTarget, type ToolsUser } from '../support/tools-tour';

const ctx = useRedis();
const TOOLS: ToolsUser = { name: 'tools', password: 'tools-secret' };

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

/** What the tour leaves, by kind of key: the same whoever runs the tools. */
async function stateSummary(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const key of Object.keys(await redisState(ctx.redis))) {
    const kind = key.replace(/:(j|live)\d+$/, ':<id>');
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

const END_STATE = {
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
    expect([...names].filter((name) => !(MIGRATION_COMMANDS as readonly string[]).includes(name))).toEqual([]);
    // One server: the Cluster client's own commands are the only ones the tools do not send here.
    const clusterOnly = IOREDIS_DEFAULT_COMMANDS.filter((name) => name !== 'info');
    expect(MIGRATION_COMMANDS.filter((name) => !names.has(name))).toEqual(clusterOnly);
    expect(await refusedTo(TOOLS.name, sent, () => ctx.redis)).toEqual([]);
    expect(sent.length).toBeGreaterThan(100);
  });

  it('let every tool run as a user with exactly those rules: same exit codes, same end state, nothing refused', async () => {
    const steps = await toolsTour(standalone(), TOOLS);

    expect(steps).toEqual(TOUR_EXIT_CODES);
    expect(await ctx.redis.call('ACL', 'LOG')).toEqual([]);
    expect(await stateSummary()).toEqual(END_STATE);
  });
});
