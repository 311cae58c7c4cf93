/**
 * The migration and the command on a Redis Cluster: backfill, verify and cleanup scan every master,
 * an interrupted backfill resumes master by master, jobs of many workspaces spread over all masters
 * when they are spread over queues, and `scripts load --cluster` reaches every node.
 */
import type { Cluster } from 'ioredis';
import { main } from '../../src/cli';
import { clusterLayout, DualWriteQueue, keySlot, Migration, type Stage } from '../../src';
import { loadScripts } from '../../src/scripts/manifest';
import { record } from '../migrate/fixtures';
import { clusterState, describeCluster, keysPerMaster, useCluster } from '../support/cluster';
import { hash, jobFields, zset, type JobRecord, type KeyState } from '../support/state';

/** Slot ranges and the master (host:port) serving each, as the cluster says now. */
async function slotOwners(cluster: Cluster): Promise<(slot: number) => string> {
  const ranges = (await cluster.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  return (slot) => {
    const range = ranges.find(([first, last]) => first <= slot && slot <= last)!;
    return `${range[2][0]}:${range[2][1]}`;
  };
}

/** One queue name per master, each hashing (as its own tag) to a slot that master serves. */
async function queuePerMaster(cluster: Cluster): Promise<Map<string, string>> {
  const ownerOf = await slotOwners(cluster);
  const byMaster = new Map<string, string>();
  for (let n = 0; byMaster.size < 3; n++) {
    const master = ownerOf(keySlot(`q${n}`));
    if (!byMaster.has(master)) byMaster.set(master, `q${n}`);
  }
  return byMaster;
}

async function putLegacy(cluster: Cluster, tag: string, jobs: readonly JobRecord[]): Promise<void> {
  await Promise.all(jobs.map((job) => cluster.hset(`{${tag}}:job:${job.id}`, jobFields(job))));
}

function migrationOf(cluster: Cluster, tag: string, stage: Stage): Migration {
  return new Migration({ redis: cluster, queueName: tag, stage, keys: clusterLayout(tag), metrics: false });
}

/** What a backfill leaves: both records of each job and each workspace's index, under the queue's tag. */
function migrated(tag: string, jobs: readonly JobRecord[], { legacy = true } = {}): Record<string, KeyState> {
  const state: Record<string, KeyState> = {};
  const byWorkspace = new Map<string, JobRecord[]>();
  for (const job of jobs) {
    if (legacy) state[`{${tag}}:job:${job.id}`] = hash(jobFields(job));
    state[`{${tag}}:ws:${job.workspaceId}:job:${job.id}`] = hash(jobFields(job));
    byWorkspace.set(job.workspaceId, [...(byWorkspace.get(job.workspaceId) ?? []), job]);
  }
  for (const [workspaceId, own] of byWorkspace) {
    const entries = own.map((job): [string, number] => [job.id, job.createdAt]).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    state[`{${tag}}:ws:${workspaceId}:jobs`] = zset(...entries);
  }
  return state;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[]): Promise<Run> {
  const stdout = { text: '', write: (s: string) => (stdout.text += s) };
  const stderr = { text: '', write: (s: string) => (stderr.text += s) };
  const code = await main(argv, { stdout, stderr, env: {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describeCluster('the migration on a Redis Cluster', () => {
  const ctx = useCluster();
  const seeds = () => ['--cluster', ctx.handle.nodes.map((node) => `${node.host}:${node.port}`).join(',')];

  it('backfill, verify and cleanup find the legacy jobs of queues on every master', async () => {
    const queues = [...(await queuePerMaster(ctx.cluster)).entries()];
    const jobsOf = new Map(queues.map(([, tag]) => [tag, Array.from({ length: 30 }, (_, i) => record(`j${i}`, `ws${i % 4}`))]));
    for (const [tag, jobs] of jobsOf) await putLegacy(ctx.cluster, tag, jobs);

    const reports = [];
    for (const [, tag] of queues) {
      const backfill = await migrationOf(ctx.cluster, tag, 'dualwrite').backfill({ batchSize: 7 });
      const verify = await migrationOf(ctx.cluster, tag, 'rampdown').verify({ batchSize: 7 });
      const cleanup = await migrationOf(ctx.cluster, tag, 'complete').cleanup({ batchSize: 7, yes: true });
      reports.push({ backfill, verify, cleanup });
    }

    for (const { backfill, verify, cleanup } of reports) {
      expect(backfill).toMatchObject({ completed: true, examined: 30, results: { copied: 30, conflict: 0, skipped: 0 } });
      expect(verify).toMatchObject({ completed: true, clean: true, checked: { legacyJobs: 30, newJobs: 30, indexEntries: 30 } });
      expect(cleanup).toMatchObject({ completed: true, dryRun: false, examined: 30, results: { deleted: 30 } });
    }
    const expected = Object.assign({}, ...queues.map(([, tag]) => migrated(tag, jobsOf.get(tag)!, { legacy: false })));
    expect(await clusterState(ctx.cluster)).toEqual(expected);
    // Each queue's keys on its own master: the walks had to visit all three.
    const perMaster = await keysPerMaster(ctx.cluster);
    for (const [master] of queues) expect(perMaster[master]).toBe(30 + 4);
  });

  it('an interrupted backfill resumes where it stopped, master by master, and copies each job once', async () => {
    // The queue of the master walked last: the walk passes two masters before it reaches the jobs.
    const byMaster = await queuePerMaster(ctx.cluster);
    const walkOrder = [...byMaster.keys()].sort();
    const tag = byMaster.get(walkOrder[2])!;
    const runIdOf = async (name: string) => {
      const node = ctx.cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === name)!;
      return /run_id:([0-9a-f]+)/.exec(String(await node.info('server')))![1];
    };
    const jobs = Array.from({ length: 60 }, (_, i) => record(`j${i}`, `ws${i % 3}`));
    await putLegacy(ctx.cluster, tag, jobs);
    const stop = new AbortController();

    const first = await migrationOf(ctx.cluster, tag, 'dualwrite').backfill({
      batchSize: 10,
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.done > 0) stop.abort();
      },
    });
    const checkpoint = await ctx.cluster.hgetall(`{${tag}}:dualwrite:backfill:${tag}`);
    const second = await migrationOf(ctx.cluster, tag, 'dualwrite').backfill({ batchSize: 10 });

    expect(first.completed).toBe(false);
    expect(first.results.copied).toBeGreaterThan(0);
    expect(first.results.copied).toBeLessThan(60);
    expect(checkpoint).toMatchObject({ mode: 'copy', server_run_id: await runIdOf(walkOrder[2]) });
    expect(checkpoint.done.split(',').sort()).toEqual([await runIdOf(walkOrder[0]), await runIdOf(walkOrder[1])].sort());
    expect(second).toMatchObject({ completed: true, resumed: true, examined: 60, results: { copied: 60, same: 0 } });
    expect(await clusterState(ctx.cluster)).toEqual(migrated(tag, jobs));
  });

  it('spreads the jobs of many workspaces over every master when workspaces are spread over queues', async () => {
    const shards = Array.from({ length: 12 }, (_, i) => `jobs-${i}`);
    const queues = new Map(
      shards.map((name) => [name, new DualWriteQueue({ heartbeat: false, redis: ctx.cluster, queueName: name, stage: 'dualwrite', keys: clusterLayout(name), metrics: false })]),
    );
    const shardOf = (workspaceId: string) => shards[keySlot(workspaceId) % shards.length];
    const workspaces = Array.from({ length: 60 }, (_, i) => `tenant-${i}`);
    await queues.get(shards[0])!.ready();

    for (const workspaceId of workspaces) {
      await queues.get(shardOf(workspaceId))!.enqueueMany([
        { workspaceId, type: 't', payload: { n: 1 }, jobId: `${workspaceId}-a` },
        { workspaceId, type: 't', payload: { n: 2 }, jobId: `${workspaceId}-b` },
      ]);
    }

    const perMaster = await keysPerMaster(ctx.cluster);
    expect(Object.keys(perMaster)).toHaveLength(3);
    for (const count of Object.values(perMaster)) expect(count).toBeGreaterThan(0);
    // Each workspace's jobs live with its shard's queue: 2 jobs x 2 layouts + 1 index each, plus the queue.
    const state = await clusterState(ctx.cluster);
    const usedShards = new Set(workspaces.map(shardOf));
    expect(Object.keys(state)).toHaveLength(workspaces.length * 5 + usedShards.size);
    for (const workspaceId of workspaces) {
      const shard = shardOf(workspaceId);
      expect(state[`{${shard}}:ws:${workspaceId}:job:${workspaceId}-a`]).toMatchObject({ value: { status: 'queued' } });
      expect(state[`{${shard}}:job:${workspaceId}-b`]).toMatchObject({ value: { workspace_id: workspaceId } });
      expect(await queues.get(shard)!.getJob({ workspaceId, jobId: `${workspaceId}-b` })).toMatchObject({ payload: { n: 2 } });
    }
    for (const shard of usedShards) {
      expect(await migrationOf(ctx.cluster, shard, 'dualwrite').verify()).toMatchObject({ clean: true });
    }
  });

  it('scripts load --cluster loads every script on all six nodes; scripts check then passes', async () => {
    const shas = [...loadScripts().values()].map((script) => script.sha1);
    const before = await cli(['scripts', 'check', ...seeds()]);

    const load = await cli(['scripts', 'load', ...seeds(), '--json']);
    const check = await cli(['scripts', 'check', ...seeds()]);

    expect(before.code).toBe(1);
    expect(load.code).toBe(0);
    const loaded = JSON.parse(load.stdout) as { ok: boolean; scripts: { node: string; role: string; ok: boolean }[] };
    expect(loaded.ok).toBe(true);
    expect(new Set(loaded.scripts.map((s) => s.node)).size).toBe(6);
    expect(loaded.scripts.filter((s) => s.role === 'master')).toHaveLength(3 * shas.length);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`all ${shas.length} scripts loaded on each of 6 nodes`);
    for (const node of ctx.cluster.nodes('all')) expect(await node.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
    expect(await clusterState(ctx.cluster)).toEqual({});
  });

  it('--cluster takes host:port seeds only, never with --url, and says which cluster it cannot reach', async () => {
    const both = await cli(['scripts', 'check', ...seeds(), '--url', 'redis://127.0.0.1:1']);
    const noPort = await cli(['scripts', 'check', '--cluster', '127.0.0.1']);
    const closed = await cli(['scripts', 'check', '--cluster', '127.0.0.1:1']);

    expect([both.code, noPort.code, closed.code]).toEqual([2, 2, 3]);
    expect(both.stderr).toContain('--url and --cluster name different targets');
    expect(noPort.stderr).toContain('--cluster: 127.0.0.1 is not host:port');
    expect(closed.stderr).toContain('cannot reach Redis at the cluster seeded by 127.0.0.1:1');
    expect(await clusterState(ctx.cluster)).toEqual({});
  });

  it('backfill --cluster --tag copies the legacy jobs; without --tag it is refused, naming the flag', async () => {
    const jobs = Array.from({ length: 5 }, (_, i) => record(`j${i}`, 'acme'));
    await putLegacy(ctx.cluster, 'mail', jobs);

    const refused = await cli(['backfill', ...seeds(), '--queue', 'mail', '--stage', 'dualwrite']);
    const untouched = await clusterState(ctx.cluster);
    const copied = await cli(['backfill', ...seeds(), '--queue', 'mail', '--tag', 'mail', '--stage', 'dualwrite', '--json']);
    const verified = await cli(['verify', ...seeds(), '--queue', 'mail', '--tag', 'mail', '--stage', 'live']);

    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('one script may only touch keys of one slot');
    expect(refused.stderr).toContain('--tag <tag>');
    expect(Object.keys(untouched)).toHaveLength(5);
    expect(copied.code).toBe(0);
    expect(JSON.parse(copied.stdout)).toMatchObject({ completed: true, examined: 5, results: { copied: 5 } });
    expect(verified.code).toBe(0);
    expect(await clusterState(ctx.cluster)).toEqual(migrated('mail', jobs));
  });
});
