import type { Cluster, Redis } from 'ioredis';
import { DualWriteQueue, Migration, type KeyLayoutOption } from '../../src';
import { main } from '../../src/cli';
import { record } from '../migrate/fixtures';
import { jobFields } from './state';

/** Where the tools run and how the test arranges data there, standalone or on a cluster. */
export interface ToolsTarget {
  /** A client with every right, to arrange the data the tools find. */
  admin: Redis | Cluster;
  /** The service's layout (clusterLayout on a cluster), for the arranging queue and the library step. */
  keys?: KeyLayoutOption;
  /** The service's keyPrefix, given to the command as --prefix. */
  keyPrefix?: string;
  /** The command's arguments that name the target, connecting as `user` (the default user when absent). */
  cliTarget(user?: ToolsUser): string[];
  /** What backfill, verify and cleanup are told of the layout besides --queue (on a cluster, --tag). */
  layoutArgs?: string[];
  /** A client connecting as `user`, for the step that uses the library. */
  clientAs(user?: ToolsUser): Redis | Cluster;
  /** Empties the script cache of every node, as a restart does. */
  flushScripts(): Promise<void>;
}

export interface ToolsUser {
  name: string;
  password: string;
}

/** One step of the tour: a subcommand's argv (or the library step), and the exit code it must end with. */
export interface TourStep {
  name: string;
  code: number;
}

const QUEUE = 'orders';

/** Every step of the tour ends as it should: a refusal or a finding with 1, Ctrl-C with 130, the rest with 0. */
export const TOUR_EXIT_CODES: readonly TourStep[] = [
  { name: 'scripts load', code: 0 },
  { name: 'scripts check', code: 0 },
  // Static mode (--stage), for a service not yet on managed mode: nothing is recorded.
  { name: 'backfill stopped by Ctrl-C', code: 130 },
  { name: 'backfill resumed from its checkpoint', code: 0 },
  { name: 'backfill --stage dualwrite --resync', code: 0 },
  { name: 'verify --stage dualwrite', code: 0 },
  { name: 'verify with an entry that leads to no job', code: 1 },
  { name: 'library verify after SCRIPT FLUSH', code: 0 },
  { name: 'cleanup --stage complete', code: 0 },
  // Managed mode: the stage record, moved through every stage behind guards the runs satisfy.
  { name: 'status without a stage record', code: 1 },
  { name: 'stage init dualwrite', code: 0 },
  { name: 'stage config: retention set', code: 0 },
  { name: 'stage config: a retention taken away', code: 0 },
  { name: 'stage set shadow refused: no backfill in this epoch', code: 1 },
  { name: 'backfill', code: 0 },
  { name: 'stage set shadow', code: 0 },
  { name: 'verify in shadow', code: 0 },
  { name: 'stage set live', code: 0 },
  { name: 'status --json in live: its verify is of shadow', code: 1 },
  { name: 'stage set rampdown', code: 0 },
  { name: 'verify in rampdown', code: 0 },
  { name: 'stage set complete', code: 0 },
  { name: 'cleanup', code: 0 },
  { name: 'cleanup --yes', code: 0 },
  { name: 'cleanup --stage complete --yes refused beside the record', code: 1 },
  { name: 'status', code: 0 },
];

/**
 * Every migration tool and every path it takes that reaches Redis, in the order an operator meets
 * them. First in static mode, for a service not yet managed: scripts load and check; a backfill
 * stopped by Ctrl-C and resumed from its checkpoint; a resync after updates the new layout missed;
 * verify with jobs waiting, claimed (a processing set and its claims) and orphaned; verify again
 * after the script cache was emptied (the library, run as `user` too, resends its script with EVAL);
 * a cleanup dry run. Then the fleet goes managed: status without a record; stage init; a stage set
 * its guard refuses; backfill, verify and cleanup without --stage, each recorded in the stage record
 * and satisfying the guard of the stage set after it, through every stage to complete; status in
 * text and JSON, with an instance's heartbeat; and the static cleanup --yes refused beside the
 * record. Each tool run goes through `observe` (which may capture what it sends); the arranging in
 * between does not. Returns each step with its exit code.
 */
export async function toolsTour(
  target: ToolsTarget,
  user: ToolsUser | undefined,
  observe: (step: string, run: () => Promise<number>) => Promise<number> = (_, run) => run(),
): Promise<TourStep[]> {
  const steps: TourStep[] = [];
  const tool = async (argv: string[], options: { signal?: AbortSignal; name?: string } = {}) => {
    const name = options.name ?? argv.join(' ');
    // scripts load and check concern every script of the manifest, not one queue's layout.
    const prefix = target.keyPrefix !== undefined ? ['--prefix', target.keyPrefix] : [];
    const layout = argv[0] === 'scripts' ? [] : ['--queue', QUEUE, ...prefix, ...(target.layoutArgs ?? [])];
    const expected = TOUR_EXIT_CODES[steps.length]?.code;
    const code = await observe(name, () => cli([...argv, ...target.cliTarget(user), ...layout], expected, options.signal));
    steps.push({ name, code });
  };
  const stageSet = (stage: string, name = `stage set ${stage}`) => tool(['stage', 'set', stage, '--reason', `tour: ${stage}`], { name });
  const service = new DualWriteQueue({ heartbeat: false, redis: target.admin, queueName: QUEUE, stage: 'dualwrite', keys: target.keys, keyPrefix: target.keyPrefix, metrics: false });

  // Jobs of the legacy service, from before the package.
  const legacy = Array.from({ length: 40 }, (_, i) => record(`j${i}`, ['acme', 'globex'][i % 2]));
  for (const job of legacy) await target.admin.hset(service.keys.legacyJob(job.id), jobFields(job));
  // Some expire: their copies must expire with them.
  for (const job of legacy.slice(0, 5)) await target.admin.pexpire(service.keys.legacyJob(job.id), 3_600_000);

  await tool(['scripts', 'load']);
  await tool(['scripts', 'check']);
  const ctrlC = new AbortController();
  ctrlC.abort();
  await tool(['backfill', '--stage', 'dualwrite', '--batch-size', '10'], { signal: ctrlC.signal, name: 'backfill stopped by Ctrl-C' });
  await tool(['backfill', '--stage', 'dualwrite', '--batch-size', '10'], { name: 'backfill resumed from its checkpoint' });

  // The service works: jobs waiting, two claimed, an entry with no job moved to the orphans list.
  for (let i = 0; i < 4; i++) await service.enqueue({ workspaceId: 'acme', type: 't', payload: { i }, jobId: `live${i}` });
  await target.admin.lpush(service.keys.queue(QUEUE), 'ghost');
  await service.claim({ workerId: 'w1', visibilityTimeoutMs: 600_000 });
  await service.claim({ workerId: 'w2', visibilityTimeoutMs: 600_000 });
  // An update the new layout missed (made while the service ran in off), and an expiry only the new
  // record has: what --resync repairs.
  await target.admin.hset(service.keys.legacyJob('j3'), 'status', 'failed', 'updated_at', String(legacy[3].updatedAt + 1000));
  await target.admin.pexpire(service.keys.newJob('acme', 'j10'), 3_600_000);
  await tool(['backfill', '--stage', 'dualwrite', '--resync']);
  await tool(['verify', '--stage', 'dualwrite']);
  // An entry behind the workers' reach that leads to no job: verify confirms it before it reports it.
  await target.admin.rpush(service.keys.queue(QUEUE), 'ghost-2');
  await tool(['verify', '--stage', 'dualwrite'], { name: 'verify with an entry that leads to no job' });
  await target.admin.lrem(service.keys.queue(QUEUE), 0, 'ghost-2');

  await target.flushScripts();
  const client = target.clientAs(user);
  try {
    const code = await observe('library verify after SCRIPT FLUSH', async () => {
      const migration = new Migration({ redis: client, queueName: QUEUE, stage: 'live', keys: target.keys, keyPrefix: target.keyPrefix, metrics: false });
      return (await migration.verify()).clean ? 0 : 1;
    });
    steps.push({ name: 'library verify after SCRIPT FLUSH', code });
  } finally {
    client.disconnect();
  }
  await tool(['cleanup', '--stage', 'complete']);

  // The fleet goes managed, at the stage it runs in now; every later step takes it from the record.
  await tool(['status'], { name: 'status without a stage record' });
  await tool(['stage', 'init', 'dualwrite', '--reason', 'tour: the fleet runs managed from here'], { name: 'stage init dualwrite' });
  await tool(['stage', 'config', '--retention-succeeded', '86400', '--retention-failed', '604800'], { name: 'stage config: retention set' });
  await tool(['stage', 'config', '--retention-failed', '0'], { name: 'stage config: a retention taken away' });
  await stageSet('shadow', 'stage set shadow refused: no backfill in this epoch');
  await tool(['backfill']);
  await stageSet('shadow');
  await tool(['verify'], { name: 'verify in shadow' });
  await stageSet('live');
  await tool(['status', '--json'], { name: 'status --json in live: its verify is of shadow' });
  await stageSet('rampdown');
  await tool(['verify'], { name: 'verify in rampdown' });
  await stageSet('complete');
  await tool(['cleanup']);
  await tool(['cleanup', '--yes']);
  await tool(['cleanup', '--stage', 'complete', '--yes'], { name: 'cleanup --stage complete --yes refused beside the record' });
  // A managed instance of the service beats once, at the record's epoch: status lists it, healthy.
  const instance = new DualWriteQueue({
    redis: target.admin, queueName: QUEUE, stage: 'managed', keys: target.keys, keyPrefix: target.keyPrefix, metrics: false, instanceId: 'web-1', heartbeat: { intervalMs: 3_600_000 },
  });
  await instance.getJob({ workspaceId: 'acme', jobId: 'live0' });
  for (let i = 0; i < 100 && (await target.admin.zscore(instance.keys.instances(), 'web-1')) === null; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await tool(['status']);
  return steps;
}

/**
 * The command, run in-process as the bin would; its output is dropped (the exit code says enough
 * here), unless the run did not end as the tour expects: then its stderr shows why.
 */
async function cli(argv: string[], expected: number | undefined, signal?: AbortSignal): Promise<number> {
  const sink = { write: () => true };
  const output = { text: '' };
  const stderr = { isTTY: false, write: (s: string) => ((output.text += s), true) };
  const code = await main(argv, { stdout: sink, stderr, env: {}, signal });
  if (code !== expected) {
    const shown = argv.join(' ').replace(/:\/\/([^:@/]+):[^@]+@/g, '://$1:***@');
    process.stderr.write(`redis-dual-write ${shown} exited ${code}:\n${output.text}\n`);
  }
  return code;
}
