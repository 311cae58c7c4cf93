import type { BackfillReport } from '../migrate/backfill';
import type { CleanupReport } from '../migrate/cleanup';
import type { Sample } from '../migrate/tally';
import type { VerifyReport } from '../migrate/verify';

/** Human-readable reports: what happened, the counts, and the samples to start from. */

export function table(rows: readonly (readonly (string | number)[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, String(cell).length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? String(cell) : String(cell).padEnd(widths[i]))).join('  '))
    .map((text) => `  ${text}`.trimEnd())
    .join('\n');
}

function counts(values: Record<string, number>): string {
  return table(Object.entries(values).map(([name, count]) => [name, count]));
}

function samples(title: string, list: readonly Sample[]): string {
  if (list.length === 0) return '';
  const rows = list.map((s) => [s.kind, s.key, [s.fields?.length ? `fields: ${s.fields.join(', ')}` : '', s.detail ?? ''].filter(Boolean).join('; ')]);
  return `\n${title}:\n${table(rows)}`;
}

export function renderBackfill(report: BackfillReport): string {
  const state = report.completed ? 'completed' : 'stopped before the end';
  return `backfill (${report.mode}) in stage ${report.stage}: ${state}${report.resumed ? ' (resumed from its checkpoint)' : ''}
  examined ${report.examined} legacy keys in ${report.durationMs} ms (${report.jobsPerSecond} jobs/s)
${counts(report.results)}
  (of the same: ${report.indexed} added to their missing index entry)${
    report.results.skipped > 0 ? `\nskipped, by reason:\n${counts(report.skipped)}` : ''
  }${samples('samples', report.samples)}`;
}

export function renderVerify(report: VerifyReport): string {
  const total = Object.values(report.divergences).reduce((a, b) => a + b, 0);
  const state = !report.completed ? 'stopped before the end' : report.clean ? 'clean' : `${total} divergences`;
  const c = report.checked;
  return `verify in stage ${report.stage}: ${state}
  checked ${c.legacyJobs} legacy jobs, ${c.newJobs} new jobs, ${c.indexEntries} index entries, ${c.queueEntries} queue entries in ${report.durationMs} ms (${report.itemsPerSecond}/s)${
    report.pendingMaintenance > 0 ? `\n  ${report.pendingMaintenance} index entries of jobs retention removed wait for maintain() (not divergences)` : ''
  }
${counts(report.divergences)}${samples('samples', report.samples)}`;
}

export function renderCleanup(report: CleanupReport): string {
  const state = report.completed ? 'completed' : 'stopped before the end';
  const verb = report.dryRun ? 'dry run (nothing deleted; --yes deletes)' : 'deleted';
  return `${renderVerify(report.verify)}

cleanup in stage ${report.stage}, ${verb}: ${state}
  examined ${report.examined} legacy keys in ${report.durationMs} ms
${counts(report.dryRun ? renameDeleted(report.results) : report.results)}${samples('kept, samples', report.samples)}`;
}

function renameDeleted(results: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(results).map(([name, n]) => [name === 'deleted' ? 'would_delete' : name, n]));
}
