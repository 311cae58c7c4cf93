import type { MigrationProgress } from '../migrate/options';
import type { CliStream } from './io';

const BAR_WIDTH = 24;
/** A terminal is redrawn at most this often; plain lines come at most this often per phase. */
const REDRAW_MS = 100;
const LINE_MS = 1_000;

const UNIT: Record<MigrationProgress['phase'], string> = {
  legacy: 'legacy keys',
  new: 'new keys',
  index: 'index entries',
  queue: 'queue entries',
};

/**
 * Shows a run's progress on stderr: a bar redrawn in place on a terminal (done / estimated total,
 * rate, ETA), plain lines otherwise, so logs stay readable.
 */
export class ProgressView {
  private phase: string | undefined;
  private phaseStartedAt = 0;
  private lastShownAt = 0;
  private drawn = false;

  constructor(
    private readonly stream: CliStream,
    private readonly now: () => number = Date.now,
  ) {}

  update(progress: MigrationProgress): void {
    const now = this.now();
    const key = `${progress.operation} ${progress.phase}`;
    const newPhase = key !== this.phase;
    if (newPhase) {
      this.finishLine();
      this.phase = key;
      this.phaseStartedAt = now;
    }
    const finished = progress.fraction === 1;
    const every = this.stream.isTTY ? REDRAW_MS : LINE_MS;
    if (!newPhase && !finished && now - this.lastShownAt < every) return;
    this.lastShownAt = now;
    const text = describe(progress, (now - this.phaseStartedAt) / 1000);
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${bar(progress.fraction)} ${text}`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Ends a bar drawn in place, so what follows starts on its own line. */
  finishLine(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

function describe(progress: MigrationProgress, seconds: number): string {
  const { done, fraction } = progress;
  const total = fraction && fraction > 0 ? Math.max(done, Math.round(done / fraction)) : undefined;
  const rate = seconds > 0 ? Math.round(done / seconds) : undefined;
  const parts = [
    `${progress.operation} ${progress.phase}:`,
    `${done}${total === undefined ? '' : `/~${total}`} ${UNIT[progress.phase]}`,
  ];
  if (fraction !== null) parts.push(`(${Math.floor(fraction * 100)}%)`);
  if (rate !== undefined) parts.push(`${rate}/s`);
  if (rate && total !== undefined && fraction !== 1) parts.push(`ETA ${formatSeconds((total - done) / rate)}`);
  return parts.join(' ');
}

function bar(fraction: number | null): string {
  const filled = Math.round((fraction ?? 0) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
