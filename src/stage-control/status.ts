import type { MigrationBase } from '../migrate/context';
import { translateRedisError } from '../scripts/replies';
import { STAGES, type Stage } from '../stages';
import { checkInteger, checkObject, rejectUnknownFields } from '../validation';
import { refusalOf } from './guards';
import { INSTANCE_MAX_AGE_MS, SCRIPTS_SHA1, type InstanceInfo } from './heartbeat';
import { readStageRecord, RUN_KINDS, type RecordedRun, type RunKind, type StageRecord } from './record';

export interface StatusOptions {
  /** Transitions shown, newest first (default 10, at most 200). */
  historyLimit?: number;
}

export interface HistoryEntry {
  epoch: number;
  from: string;
  to: string;
  at: number;
  by: string;
  reason: string;
  forced: boolean;
}

export interface RunStatus extends RecordedRun {
  /** Started and ended in different epochs: it proves nothing to the guards. */
  spannedTransition: boolean;
  /** Started and ended in the current epoch (and, for verify, clean and younger than maxVerifyAgeMs). */
  fresh: boolean;
}

export interface InstanceStatus extends Partial<InstanceInfo> {
  id: string;
  /** Server time (ms) of its last heartbeat, and how long ago that was. */
  lastSeen: number;
  ageMs: number;
}

/** Something that needs a person: `status` exits 1 while there is any. */
export interface Finding {
  kind: 'stage_unset' | 'verify_stale' | 'instance_epoch' | 'instance_scripts' | 'static_instance';
  detail: string;
}

export interface NextStep {
  description: string;
  /** The command, without the connection and layout flags (the command's own output adds yours). */
  command: string;
}

export interface StageStatus {
  key: string;
  record: Omit<StageRecord, 'backfill' | 'verify' | 'cleanup'> | null;
  history: HistoryEntry[];
  runs: Record<RunKind, RunStatus | null>;
  instances: InstanceStatus[];
  findings: Finding[];
  healthy: boolean;
  next_steps: NextStep[];
}

/** Where the migration stands, read only: the record, its history, the runs, the instances, what next. */
export async function stageStatus(base: MigrationBase, options: StatusOptions = {}): Promise<StageStatus> {
  const { historyLimit } = checkStatusOptions(options);
  try {
    const [seconds, micros] = (await base.redis.time()) as [string | number, string | number];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const record = await readStageRecord(base.redis, base.stageKey);
    const history = (await base.redis.lrange(base.keys.stageHistory(), 0, historyLimit - 1)).flatMap((text) => parseHistory(text));
    const instances = await readInstances(base, now);
    const runs = Object.fromEntries(RUN_KINDS.map((kind) => [kind, record ? runStatus(record, kind, now) : null])) as Record<RunKind, RunStatus | null>;
    const findings = findingsOf(record, runs, instances);
    const { backfill: _b, verify: _v, cleanup: _c, ...shown } = record ?? ({} as StageRecord);
    return {
      key: base.stageKey,
      record: record ? shown : null,
      history,
      runs,
      instances,
      findings,
      healthy: findings.length === 0,
      next_steps: nextSteps(record, runs, now),
    };
  } catch (error) {
    throw translateRedisError(error);
  }
}

/** status()'s options, checked before anything is sent (and by the command before it connects). */
export function checkStatusOptions(options: unknown): { historyLimit: number } {
  const o = checkObject('options', options);
  rejectUnknownFields('options', o, ['historyLimit']);
  return { historyLimit: checkInteger('historyLimit', o.historyLimit ?? 10, 1, 200) };
}

function runStatus(record: StageRecord, kind: RunKind, now: number): RunStatus | null {
  const run = record[kind];
  if (!run) return null;
  const within = run.startedEpoch === record.epoch && run.endedEpoch === record.epoch;
  const fresh =
    kind === 'verify'
      ? within && run.summary.completed === true && run.summary.clean === true && now - run.endedAt <= record.maxVerifyAgeMs
      : within && run.summary.completed === true;
  return { ...run, spannedTransition: run.startedEpoch !== run.endedEpoch, fresh };
}

async function readInstances(base: MigrationBase, now: number): Promise<InstanceStatus[]> {
  const flat = await base.redis.zrangebyscore(base.keys.instances(), now - INSTANCE_MAX_AGE_MS, '+inf', 'WITHSCORES');
  const ids: string[] = [];
  const seen: number[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    ids.push(flat[i]);
    seen.push(Number(flat[i + 1]));
  }
  if (ids.length === 0) return [];
  const infos = await base.redis.hmget(base.keys.instanceInfo(), ...ids);
  return ids.map((id, i) => {
    let info: Partial<InstanceInfo> = {};
    try {
      info = JSON.parse(infos[i] ?? '{}') as Partial<InstanceInfo>;
    } catch {
      // shown with what the zset says
    }
    return { ...info, id, lastSeen: seen[i], ageMs: Math.max(0, now - seen[i]) };
  });
}

function findingsOf(record: StageRecord | null, runs: Record<RunKind, RunStatus | null>, instances: InstanceStatus[]): Finding[] {
  const findings: Finding[] = [];
  if (!record) findings.push({ kind: 'stage_unset', detail: 'the layout has no stage record: managed instances cannot run' });
  if (record?.stage === 'live' && !runs.verify?.fresh) {
    findings.push({ kind: 'verify_stale', detail: 'in live, the last clean verify is missing, from another epoch, or older than maxVerifyAgeMs' });
  }
  for (const instance of instances) {
    if (instance.mode === 'static' && record) {
      findings.push({ kind: 'static_instance', detail: `${instance.id} runs a static stage (${instance.stage ?? '?'}) beside the managed record` });
    }
    if (instance.mode === 'managed' && record && instance.epoch !== '' && instance.epoch !== undefined && Number(instance.epoch) !== record.epoch) {
      findings.push({ kind: 'instance_epoch', detail: `${instance.id} last ran under epoch ${instance.epoch}, the record is at ${record.epoch}` });
    }
    if (instance.scripts !== undefined && instance.scripts !== SCRIPTS_SHA1) {
      findings.push({ kind: 'instance_scripts', detail: `${instance.id} runs other scripts (package ${instance.version ?? '?'}) than this one` });
    }
  }
  return findings;
}

/** The next step from where the record stands, with the exact command (README "Stage control"). */
function nextSteps(record: StageRecord | null, runs: Record<RunKind, RunStatus | null>, now: number): NextStep[] {
  if (!record) {
    return [{ description: 'create the stage record at the stage the service runs in now', command: 'redis-dual-write stage init off --reason "<why>"' }];
  }
  const next = STAGES[STAGES.indexOf(record.stage) + 1] as Stage | undefined;
  if (!next) {
    if (record.cleanup?.summary.completed === true && record.cleanup.summary.dryRun === false && record.cleanupDeleted > 0) {
      return [{ description: 'the migration is complete and the legacy layout cleaned up', command: '' }];
    }
    return [
      { description: 'count what cleanup would delete (dry run)', command: 'redis-dual-write cleanup' },
      { description: 'then delete the legacy job records', command: 'redis-dual-write cleanup --yes' },
    ];
  }
  const refusal = refusalOf(record, next, now);
  const move = { description: `move the whole fleet to ${next}`, command: `redis-dual-write stage set ${next} --reason "<why>"` };
  const verify = { description: `prove the layouts equal in ${record.stage}`, command: 'redis-dual-write verify' };
  // No guard stands between live and rampdown, but live is where reads moved to the new layout: a
  // layout in live without a fresh clean verify is a finding, and the verify is what clears it.
  if (record.stage === 'live' && !runs.verify?.fresh) return [verify, move];
  switch (refusal?.rule) {
    case 'backfill_needed':
    case 'resync_needed': {
      const resync = record.needsResync ? ' --resync' : '';
      return [{ description: 'copy the legacy jobs written before dual writes', command: `redis-dual-write backfill${resync}` }, move];
    }
    case 'verify_needed':
    case 'verify_stale':
      return [verify, move];
    default:
      return [move];
  }
}

function parseHistory(text: string): HistoryEntry[] {
  try {
    return [JSON.parse(text) as HistoryEntry];
  } catch {
    return [];
  }
}
