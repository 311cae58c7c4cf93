import { ValidationError } from '../errors';
import { checkConfigureStage, type StageSettingsInput } from '../stage-control/configure';
import { checkInitStage, checkSetStage, type TransitionResult } from '../stage-control/transition';
import { RETENTION_STATUSES } from '../validation';
import { assertStage, type Stage } from '../stages';
import type { ParsedOptions } from './commands';
import { connect, createClient } from './connect';
import { duringRun } from './failure';
import { integerFlag, textFlag } from './flag-values';
import { EXIT, line, UsageError, type CliIo } from './io';
import { stderrLogger } from './logger';
import { migrationFor } from './migration-flags';
import { carriedFlags, completeCommandsIn } from './next-command';
import { table } from './render';
import { targetFor } from './target';

/**
 * `stage init <stage>` and `stage set <stage>`: one transition of the layout's stage record, through
 * Migration. Every flag is checked, with the library's own rules, before anything is sent. A guard's
 * refusal is a TransitionRefusedError, which main prints with its rule and remedy (exit 1).
 */
export async function runStage(action: 'init' | 'set', stageArgument: string, options: ParsedOptions, io: CliIo): Promise<number> {
  const stage = stageNamed(stageArgument);
  const shared = {
    reason: textFlag(options.reason) ?? missingReason(action),
    ...optionalField('by', textFlag(options.by)),
    ...optionalField('replicaWaitMs', integerFlag('--replica-wait', options['replica-wait'])),
  };
  const init = { ...shared, ...optionalField('maxVerifyAgeMs', integerFlag('--max-verify-age', options['max-verify-age'])) };
  const set = {
    ...shared,
    ...optionalField('expectedEpoch', integerFlag('--expect-epoch', options['expect-epoch'])),
    ...(options.force === true ? { force: true } : {}),
  };
  if (action === 'init') checkInitStage(stage, init);
  else checkSetStage(stage, set);

  const target = targetFor(options, io.env);
  const redis = createClient(target);
  try {
    const { migration, stageKey } = migrationFor(redis, options, 'managed', stderrLogger(io));
    await connect(redis, target);
    let result: TransitionResult;
    try {
      await migration.ready();
      result = action === 'init' ? await migration.initStage(stage, init) : await migration.setStage(stage, set);
    } catch (error) {
      throw duringRun(error, target);
    }
    const waitMs = (action === 'init' ? init : set).replicaWaitMs ?? 1000;
    const text = completeCommandsIn(renderTransition(action, result, stageKey, waitMs), carriedFlags(options));
    line(io.stdout, options.json ? JSON.stringify(result, null, 2) : text);
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}

/**
 * `stage config`: the settings every managed instance shares (max verify age, retention), written
 * into the stage record. Not a transition: the stage and its epoch stay.
 */
export async function runStageConfig(options: ParsedOptions, io: CliIo): Promise<number> {
  const settings: StageSettingsInput = {
    ...optionalField('maxVerifyAgeMs', integerFlag('--max-verify-age', options['max-verify-age'])),
  };
  for (const status of RETENTION_STATUSES) {
    const seconds = integerFlag(`--retention-${status}`, options[`retention-${status}`]);
    // 0 takes the status's retention away: its jobs stay for good.
    if (seconds !== undefined) settings.retention = { ...settings.retention, [status]: seconds === 0 ? null : seconds };
  }
  checkConfigureStage(settings);

  const target = targetFor(options, io.env);
  const redis = createClient(target);
  try {
    const { migration, stageKey } = migrationFor(redis, options, 'managed', stderrLogger(io));
    await connect(redis, target);
    let revision: number;
    try {
      await migration.ready();
      ({ revision } = await migration.configure(settings));
    } catch (error) {
      throw duringRun(error, target);
    }
    const rows: [string, string][] = [];
    if (settings.maxVerifyAgeMs !== undefined) rows.push(['max verify age', `${settings.maxVerifyAgeMs} ms`]);
    for (const [status, seconds] of Object.entries(settings.retention ?? {})) {
      rows.push([`retention ${status}`, seconds === null ? 'none: its jobs stay for good' : `${seconds} s`]);
    }
    const text = `stage record ${stageKey}: settings changed (revision ${revision}); the stage and epoch stay\n${table(rows)}\nRetention applies to jobs that finish from now on.`;
    line(io.stdout, options.json ? JSON.stringify({ key: stageKey, revision, settings }, null, 2) : text);
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}

function stageNamed(value: string): Stage {
  try {
    return assertStage(value);
  } catch (error) {
    if (error instanceof ValidationError) throw new UsageError(`<stage>: ${value} is not a stage; one of off, dualwrite, shadow, live, rampdown, complete`);
    throw error;
  }
}

function missingReason(action: 'init' | 'set'): never {
  throw new UsageError(`stage ${action} needs --reason "<why>": the record and its history keep it`);
}

function optionalField<K extends string, V>(name: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [name]: value } as Record<K, V>);
}

function renderTransition(action: 'init' | 'set', result: TransitionResult, stageKey: string, waitMs: number): string {
  const heading = action === 'init' ? `stage record ${stageKey} created: ${result.to}` : `stage ${result.from} -> ${result.to}`;
  return `${heading}
${table([
  ['epoch', result.epoch],
  ['changed at', new Date(result.changedAt).toISOString()],
  ['forced', result.forced ? 'yes: past a refusing guard, kept in the record and its history' : 'no'],
  ['replica', replicaText(result.replicated, waitMs)],
])}`;
}

function replicaText(replicated: boolean | null, waitMs: number): string {
  if (replicated === true) return 'acknowledged';
  if (replicated === false) {
    return `NOT acknowledged within ${waitMs} ms: an automatic failover now could lose this change; check the replicas, then \`redis-dual-write status\``;
  }
  return waitMs === 0 ? 'not waited for (--replica-wait 0)' : 'none to wait for (no replica, or this user may not ask)';
}
