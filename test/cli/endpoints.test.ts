/**
 * The command against real endpoints that misbehave: silent, stopped, password-protected, ACL-limited,
 * a single server named as a cluster. Each failure of the run itself exits 3 with a message that says
 * what is wrong, within the time the operator allowed, and never prints a secret.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { serviceAclRules } from '../../src';
import { startRedis, type RedisHandle } from '../../src/testing';
import { loadScripts } from '../../src/scripts/manifest';
import { cli } from '../support/cli';
import { describeCluster } from '../support/cluster';
import { useRedis } from '../support/redis';
import { startSilentServer, type SilentServer } from '../support/silent-server';
import { jobHash, redisState, zset } from '../support/state';
import { indexOf, putLegacyJobs } from '../migrate/fixtures';

const ctx = useRedis();
const SHAS = [...loadScripts().values()].map((script) => script.sha1);

/** Every step of the command that talks to Redis, as an operator would type it. */
const STEPS = [
  ['scripts', 'check'],
  ['scripts', 'load'],
  ['verify', '--stage', 'live'],
  ['backfill', '--stage', 'live'],
  ['cleanup', '--stage', 'complete', '--yes'],
];

describe('a Redis that accepts connections and never answers', () => {
  let silent: SilentServer;
  beforeAll(async () => {
    silent = await startSilentServer();
  });
  afterAll(async () => {
    await silent?.close();
  });

  // The steps run side by side: each waits out its own connect timeout.
  it('every step gives up after --connect-timeout with exit 3 and says the server did not answer', async () => {
    const before = silent.connections();

    const runs = await Promise.all(STEPS.map((step) => cli([...step, '--url', silent.url, '--connect-timeout', '300'])));

    expect(runs.map((run) => run.code)).toEqual(STEPS.map(() => 3));
    for (const run of runs) expect(run.stderr).toContain(`Redis at ${silent.url} did not answer within 300 ms (--connect-timeout)`);
    expect(silent.connections()).toBeGreaterThanOrEqual(before + STEPS.length);
  }, 10_000);

  it('every step with --cluster gives up after --connect-timeout with exit 3 too', async () => {
    const before = silent.connections();

    const runs = await Promise.all(
      STEPS.map((step) => {
        const layout = step[0] === 'scripts' ? [] : ['--tag', 'default'];
        return cli([...step, ...layout, '--cluster', `127.0.0.1:${silent.port}`, '--connect-timeout', '300']);
      }),
    );

    expect(runs.map((run) => run.code)).toEqual(STEPS.map(() => 3));
    for (const run of runs) {
      expect(run.stderr).toContain(`Redis at the cluster seeded by 127.0.0.1:${silent.port} did not answer within 300 ms (--connect-timeout)`);
    }
    expect(silent.connections()).toBeGreaterThanOrEqual(before + STEPS.length);
  }, 10_000);

  it('says the server took the connection and then said nothing', async () => {
    const run = await cli(['scripts', 'check', '--url', silent.url, '--connect-timeout', '1000']);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`Redis at ${silent.url} did not answer within 1000 ms (--connect-timeout): it accepted the connection, then said nothing`);
  }, 10_000);

  it('with --json the error has a stable code', async () => {
    const run = await cli(['verify', '--stage', 'live', '--json', '--url', silent.url, '--connect-timeout', '200']);

    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toEqual({ error: { code: 'TIMEOUT', message: expect.stringContaining('did not answer within 200 ms') } });
  }, 10_000);
});

describe('a Redis that stops answering in the middle of a run', () => {
  it('a command not answered within --command-timeout fails the run with exit 3; the resume command it prints finishes the job', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 20, ['acme']);
    // Reads still answer, so the command connects and starts; every write waits until UNPAUSE.
    await ctx.redis.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    let failed;
    try {
      failed = await cli(['backfill', '--stage', 'live', '--command-timeout', '1000', '--url', ctx.handle.url]);
    } finally {
      // The timed-out script may still run now: a timeout never says whether it did, and the
      // backfill script re-checks each job, so running it twice is safe.
      await ctx.redis.call('CLIENT', 'UNPAUSE');
    }
    const resume = /Resume with:\n {2}redis-dual-write (.*)\n/.exec(failed.stderr)?.[1].split(' ') ?? [];
    const resumed = await cli(resume);

    expect(failed.code).toBe(3);
    expect(failed.stderr).toContain(`Redis at ${ctx.handle.url} did not answer a command within 1000 ms (--command-timeout)`);
    expect(resume).toEqual(['backfill', '--stage', 'live', '--command-timeout', '1000', '--url', ctx.handle.url]);
    expect(resumed.code).toBe(0);
    expect(await redisState(ctx.redis)).toEqual({
      ...Object.fromEntries(jobs.flatMap((job) => [[`job:${job.id}`, jobHash(job)], [`ws:acme:job:${job.id}`, jobHash(job)]])),
      'ws:acme:jobs': zset(...indexOf(jobs)),
    });
  }, 10_000);
});

describe('exit code 3: the run itself failed', () => {
  it('a stopped server: cannot reach Redis', async () => {
    const server = await startRedis({ via: 'binary' });
    await server.stop();

    const run = await cli(['verify', '--stage', 'live', '--url', server.url]);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot reach Redis at ${server.url}: connect ECONNREFUSED`);
  });

  it('an ACL user without a permission the step needs: the service user may not SCRIPT LOAD', async () => {
    await ctx.redis.call('ACL', 'SETUSER', 'service', 'reset', 'on', '>service-secret', ...serviceAclRules());
    try {
      const run = await cli(['scripts', 'load', '--url', `redis://service:service-secret@127.0.0.1:${port(ctx.handle)}`]);

      expect(run.code).toBe(3);
      expect(run.stderr).toContain('the Redis user may not run SCRIPT LOAD');
      expect(await ctx.redis.script('EXISTS', ...SHAS)).toEqual(SHAS.map(() => 0));
      expect(await redisState(ctx.redis)).toEqual({});
    } finally {
      await ctx.redis.call('ACL', 'DELUSER', 'service');
    }
  });

  it('a failure after the work: the metrics file cannot be written', async () => {
    await putLegacyJobs(ctx.redis, 5, ['acme']);
    const dir = mkdtempSync(join(tmpdir(), 'rdw-cli-'));
    try {
      const file = join(dir, 'no-such-dir', 'backfill.prom');
      const run = await cli(['backfill', '--stage', 'live', '--metrics-file', file, '--url', ctx.handle.url]);

      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`ENOENT: no such file or directory, open '${file}'`);
      expect(readdirSync(dir)).toEqual([]);
      expect(await ctx.redis.dbsize()).toBe(5 + 5 + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a Redis that requires a password', () => {
  let server: RedisHandle;
  let admin: Redis;
  const secret = 'p4ss-w0rd-never-printed';
  beforeAll(async () => {
    server = await startRedis({ via: 'binary', serverArgs: ['--requirepass', secret] });
    admin = new Redis(server.url, { password: secret });
  });
  beforeEach(async () => {
    await admin.flushall();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  const withPassword = (password: string) => `redis://:${password}@127.0.0.1:${port(server)}`;

  it('a wrong password: exit 3, reported as an authentication failure, neither password printed', async () => {
    const run = await cli(['verify', '--stage', 'live', '--url', withPassword('wrong-guess-also-secret')]);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`authentication failed at redis://:***@127.0.0.1:${port(server)}: WRONGPASS`);
    expect(run.stderr + run.stdout).not.toMatch(/wrong-guess-also-secret|p4ss-w0rd/);
  });

  it('no password at all: exit 3, NOAUTH reported as an authentication failure', async () => {
    const run = await cli(['scripts', 'check', '--json', '--url', `redis://127.0.0.1:${port(server)}`]);

    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: 'AUTHENTICATION_FAILED', message: expect.stringContaining(`authentication failed at redis://127.0.0.1:${port(server)}: NOAUTH`) },
    });
  });

  it('Ctrl-C: the resume command hides the password from --url and says how to give it', async () => {
    await putLegacyJobs(admin, 30, ['acme']);
    const ctrlC = new AbortController();
    ctrlC.abort();

    const run = await cli(['backfill', '--stage', 'live', '--batch-size', '10', '--url', withPassword(secret)], { signal: ctrlC.signal });

    expect(run.code).toBe(130);
    expect(run.stderr).toContain(`Resume with:\n  redis-dual-write backfill --stage live --batch-size 10 --url redis://:***@127.0.0.1:${port(server)}\n`);
    expect(run.stderr).toContain('the password is shown as ***: type it in, or put the URL in REDIS_URL and leave out --url');
    expect(run.stderr + run.stdout).not.toContain(secret);
  });

  it('a failed run: the resume command hides the password too, user name kept', async () => {
    await admin.call('ACL', 'SETUSER', 'ops', 'reset', 'on', `>${secret}`, '~*', '+@all');
    await putLegacyJobs(admin, 30, ['acme']);
    await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    let run;
    try {
      run = await cli(['backfill', '--stage', 'live', '--command-timeout', '1000', `--url=redis://ops:${secret}@127.0.0.1:${port(server)}`]);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
    }

    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`Failed. Resume with:\n  redis-dual-write backfill --stage live --command-timeout 1000 --url=redis://ops:***@127.0.0.1:${port(server)}\n`);
    expect(run.stderr).toContain('the password is shown as ***: type it in, or put the URL in REDIS_URL and leave out --url');
    expect(run.stderr + run.stdout).not.toContain(secret);
  }, 10_000);
});

describe('--cluster pointed at a single server', () => {
  it('says the endpoint is not a Redis Cluster and to use --url, exit 3', async () => {
    const run = await cli(['scripts', 'check', '--cluster', `127.0.0.1:${port(ctx.handle)}`]);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`127.0.0.1:${port(ctx.handle)} is not a Redis Cluster (cluster support is disabled there): for a single server, use --url`);
    expect(run.stderr).not.toContain('None of startup nodes');
  });
});

describeCluster('--cluster pointed at a cluster node that serves no slots', () => {
  let node: RedisHandle;
  beforeAll(async () => {
    node = await startRedis({ via: 'binary', serverArgs: ['--cluster-enabled', 'yes'] });
  });
  afterAll(async () => {
    await node?.stop();
  });

  // The client reads an empty slot map and fails its ready check (cluster_state:fail) over and over:
  // the run ends on the client's own give-up, long before this connect timeout, and says why.
  it('exits 3 saying the cluster failed its ready check and what the node says of its state, not that it was silent', async () => {
    const seed = `127.0.0.1:${port(node)}`;
    const admin = new Redis(node.url);
    try {
      const run = await cli(['verify', '--json', '--tag', 'orders', '--cluster', seed, '--connect-timeout', '20000']);

      expect(run.code).toBe(3);
      expect(run.stderr).toContain(
        `redis-dual-write: the cluster seeded by ${seed} gave its slot map but did not pass the client's ready check: ${seed} says cluster_state:fail with 0 of 16384 slots assigned; ` +
          'CLUSTER INFO must say cluster_state:ok',
      );
      expect(run.stderr).not.toContain('did not answer');
      expect(JSON.parse(run.stdout)).toEqual({ error: { code: 'CLUSTER_NOT_READY', message: expect.stringContaining('ready check') } });
      expect(await redisState(admin)).toEqual({});
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});

function port(handle: RedisHandle): number {
  return Number(new URL(handle.url).port);
}
