import type { Retention } from '../types';
import type { RunKind } from '../stage-control/record';
import type { RunStatus, StageStatus } from '../stage-control/status';
import { table } from './render';

/** `status` as text: the summary first, then the record, history, runs, instances, findings and what next. */
export function renderStatus(status: StageStatus, maskedNote: string): string {
  const findings = status.findings.length;
  const sections = [
    status.healthy ? 'status: healthy' : `status: ${findings} finding${findings === 1 ? '' : 's'} need${findings === 1 ? 's' : ''} a person`,
    record(status),
    history(status),
    runs(status),
    instances(status),
    findings > 0 ? `findings:\n${table(status.findings.map((f) => [f.kind, f.detail]))}` : 'findings: none',
    nextSteps(status, maskedNote),
  ];
  return sections.filter((section) => section !== '').join('\n\n');
}

function record({ key, record }: StageStatus): string {
  if (!record) return `stage record ${key}: none (managed instances refuse to run until it exists)`;
  const notes = [
    record.needsResync ? 'the new layout went stale in off: the next backfill must be a --resync' : '',
    record.cleanupDeleted > 0 ? `cleanup has deleted ${record.cleanupDeleted} legacy records: no way back to off, dualwrite or shadow` : '',
  ].filter(Boolean);
  return `stage record ${key}: ${record.stage}, epoch ${record.epoch}
${table([
  ['since', time(record.changedAt)],
  ['by', record.changedBy],
  ['reason', record.reason],
  ['forced', record.forced ? 'yes: past a refusing guard' : 'no'],
  ['max verify age', duration(record.maxVerifyAgeMs)],
  ['retention', retentionText(record.retention)],
  ...notes.map((note) => ['note', note]),
])}`;
}

function history({ history }: StageStatus): string {
  if (history.length === 0) return '';
  const rows = history.map((h) => [h.epoch, time(h.at), `${h.from || '(init)'} -> ${h.to}`, h.by, h.forced ? 'FORCED' : '', h.reason]);
  return `history, newest first:\n${table([['epoch', 'at', 'change', 'by', 'forced', 'reason'], ...rows])}`;
}

function runs(status: StageStatus): string {
  if (!status.record) return '';
  const epoch = status.record.epoch;
  const rows = (Object.entries(status.runs) as [RunKind, RunStatus | null][]).map(([kind, run]) =>
    run
      ? [kind, time(run.endedAt), epochs(run), result(kind, run), standing(kind, run, epoch, status.record!.maxVerifyAgeMs)]
      : [kind, 'never', '', '', ''],
  );
  return `last runs (managed mode records them):\n${table([['step', 'ended at', 'epoch', 'result', 'standing'], ...rows])}`;
}

function instances({ instances }: StageStatus): string {
  if (instances.length === 0) return 'instances seen in the last 60 s: none';
  const rows = instances.map((i) => [
    i.id,
    i.mode ?? '?',
    i.mode === 'static' ? `${i.stage ?? '?'} (static)` : `${i.stage || '-'}/${i.epoch || '-'}`,
    i.version ?? '?',
    (i.scripts ?? '?').slice(0, 12),
    `${duration(i.ageMs)} ago`,
  ]);
  return `instances seen in the last 60 s:\n${table([['id', 'mode', 'stage/epoch', 'version', 'scripts', 'last beat'], ...rows])}`;
}

function nextSteps({ next_steps }: StageStatus, maskedNote: string): string {
  if (next_steps.length === 0) return '';
  const steps = next_steps.map((step, i) => `  ${i + 1}. ${step.description}${step.command ? `\n     ${step.command}` : ''}`);
  return `next:\n${steps.join('\n')}${maskedNote && next_steps.some((step) => step.command) ? `\n${maskedNote}` : ''}`;
}

function epochs(run: RunStatus): string {
  return run.startedEpoch === run.endedEpoch ? String(run.endedEpoch) : `${run.startedEpoch} -> ${run.endedEpoch}`;
}

/** What a run found, from the summary it recorded. */
function result(kind: RunKind, run: RunStatus): string {
  const s = run.summary;
  if (s.completed !== true) return s.stoppedBy === 'stage_changed' ? 'stopped: the stage changed' : 'stopped before the end';
  const counts = (values: unknown) =>
    Object.entries((values ?? {}) as Record<string, number>)
      .filter(([, n]) => n > 0)
      .map(([name, n]) => `${n} ${name}`)
      .join(', ');
  if (kind === 'verify') return s.clean === true ? 'clean' : `divergences: ${counts(s.divergences) || '?'}`;
  if (kind === 'backfill') return `${String(s.mode ?? 'copy')}: ${counts(s.results) || 'nothing to copy'}`;
  if (s.dryRun !== true) return counts(s.results) || 'nothing to delete';
  const { deleted, ...kept } = (s.results ?? {}) as Record<string, number>;
  return `dry run: ${counts({ would_delete: deleted, ...kept }) || 'nothing to delete'}`;
}

/** Whether a run counts for the guards now: fresh, or why not. */
function standing(kind: RunKind, run: RunStatus, epoch: number, maxVerifyAgeMs: number): string {
  if (run.spannedTransition) return 'spanned a transition: satisfies no guard';
  if (run.fresh) return 'fresh';
  if (run.endedEpoch !== epoch) return `stale: from epoch ${run.endedEpoch}, the record is at ${epoch}`;
  if (run.summary.completed !== true) return 'stale: did not run to its end';
  if (kind === 'verify' && run.summary.clean !== true) return 'not clean';
  if (kind === 'verify') return `stale: older than ${duration(maxVerifyAgeMs)}`;
  return 'stale';
}

function time(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : '?';
}

/** 850 ms, 12 s, 3 min 05 s, 2 h 03 min, 1 d 02 h. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  const hours = Math.floor((s % 86_400) / 3600);
  return `${Math.floor(s / 86_400)} d${hours > 0 ? ` ${String(hours).padStart(2, '0')} h` : ''}`;
}

/** How long finished jobs stay, by status; 'none' when every status keeps them for good. */
function retentionText(retention: Retention): string {
  const parts = Object.entries(retention).map(([status, seconds]) => `${status} ${duration(seconds * 1000)}`);
  return parts.length > 0 ? parts.join(', ') : 'none: finished jobs stay for good';
}
