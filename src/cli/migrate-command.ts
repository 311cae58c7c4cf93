import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { VerifyNotCleanError } from '../errors';
import { Migration } from '../migrate/migration';
import { checkRunOptions, RUN_DEFAULTS, type RunOptions } from '../migrate/options';
import type { Logger } from '../logger';
import type { Stage } from '../stages';
import type { ParsedOptions } from './commands';
import { clusterLayout } from '../keys';
import { connect, createClient } from './connect';
import { duringRun, exitCodeFor } from './failure';
import { EXIT, line, UsageError, type CliIo } from './io';
import { ProgressView } from './progress';
import { renderBackfill, renderCleanup, renderVerify, table } from './render';
import { commandLineShown, targetFor } from './target';

type Step = 'backfill' | 'verify' | 'cleanup';

/**
 * backfill, verify and cleanup: a thin face over Migration. Progress goes to stderr, the report to
 * stdout (as JSON with --json), and the exit code says whether a person is needed.
 */
export async function runMigrationStep(step: Step, options: ParsedOptions, io: CliIo, argv: readonly string[]): Promise<number> {
  if (options.stage === undefined) throw new UsageError(`${step} needs --stage: the stage the service runs in now`);
  const target = targetFor(options, io.env);
  const progress = new ProgressView(io.stderr);
  const rateLimit = positive('--rate', options.rate);
  const run: RunOptions = {
    signal: io.signal,
    onProgress: (p) => progress.update(p),
    batchSize: integer('--batch-size', options['batch-size']) ?? batchWithin(rateLimit),
    rateLimit,
    sampleLimit: integer('--samples', options.samples),
  };
  // Checked here too, so a bad value is a usage error before anything is sent (the step checks them again).
  checkRunOptions(run);
  const redis = createClient(target);
  const registry = new Registry();
  try {
    // Built before connecting: a bad --stage, --prefix, --queue or --tag is a usage error, not a
    // Redis one, and on a cluster a layout that splits an operation over slots is refused here.
    const migration = new Migration({
      redis,
      stage: options.stage as Stage,
      queueName: (options.queue as string | undefined) ?? 'default',
      keyPrefix: (options.prefix as string | undefined) ?? '',
      ...(typeof options.tag === 'string' ? { keys: clusterLayout(options.tag) } : {}),
      metrics: { registry },
      logger: stderrLogger(io, progress),
    });
    await connect(redis, target);
    await migration.ready().catch((error: unknown) => {
      throw duringRun(error, target);
    });

    let code: number;
    let completed: boolean;
    try {
      if (step === 'backfill') {
        const report = await migration.backfill({ ...run, mode: options.resync ? 'resync' : 'copy', restart: options.restart === true });
        progress.finishLine();
        print(io, options, report, renderBackfill(report));
        completed = report.completed;
        code = report.results.conflict + report.results.skipped === 0 ? EXIT.ok : EXIT.attention;
      } else if (step === 'verify') {
        const report = await migration.verify(run);
        progress.finishLine();
        print(io, options, report, renderVerify(report));
        completed = report.completed;
        code = report.clean ? EXIT.ok : EXIT.attention;
      } else {
        const report = await migration.cleanup({ ...run, yes: options.yes === true });
        progress.finishLine();
        print(io, options, report, renderCleanup(report));
        completed = report.completed;
        code = EXIT.ok;
      }
    } catch (caught) {
      progress.finishLine();
      if (caught instanceof VerifyNotCleanError) return refusedCleanup(caught, options, io);
      const error = duringRun(caught, target);
      // A lost connection mid-run: the checkpoint written after every page lets the same command go on.
      if (step === 'backfill' && exitCodeFor(error) === EXIT.failed) {
        line(io.stderr, resumeHint(step, argv, migration).replace('Stopped after the batch in flight', 'Failed'));
      }
      throw error;
    }
    if (typeof options['metrics-file'] === 'string') writeFileSync(options['metrics-file'], await registry.metrics());
    if (!completed) {
      line(io.stderr, resumeHint(step, argv, migration));
      return EXIT.interrupted;
    }
    return code;
  } finally {
    redis.disconnect();
  }
}

function print(io: CliIo, options: ParsedOptions, report: object, text: string): void {
  line(io.stdout, options.json ? JSON.stringify(report, null, 2) : text);
}

function refusedCleanup(error: VerifyNotCleanError, options: ParsedOptions, io: CliIo): number {
  if (options.json) {
    line(io.stdout, JSON.stringify({ error: { code: error.code, message: error.message, divergences: error.divergences, samples: error.samples } }, null, 2));
  } else {
    line(io.stdout, `cleanup refused: verify is not clean, nothing was deleted\n${table(Object.entries(error.divergences))}`);
    if (error.samples.length > 0) {
      line(io.stdout, `samples:\n${table(error.samples.map((s) => [s.kind, s.key, s.fields?.join(', ') ?? '']))}`);
    }
  }
  line(io.stderr, `redis-dual-write: ${error.message}`);
  return EXIT.attention;
}

/** The same command again, never with a password in it: the operator may paste it into a ticket. */
function resumeHint(step: Step, argv: readonly string[], migration: Migration): string {
  const shown = commandLineShown(argv.filter((arg) => arg !== '--restart'));
  const again = `redis-dual-write ${shown.words.join(' ')}`;
  const secret =
    shown.masked.size === 0
      ? ''
      : `\n(the password is shown as ***: type it in${shown.masked.has('--url') ? ', or put the URL in REDIS_URL and leave out --url' : ''})`;
  if (step === 'backfill') {
    return `Stopped after the batch in flight. Resume with:\n  ${again}\n(the checkpoint in ${migration.checkpointKey} continues where it stopped)${secret}`;
  }
  const why = step === 'verify' ? 'verify only reads, so it starts over' : 'cleanup starts over; deleted keys are not counted twice';
  return `Stopped after the batch in flight. Run it again with:\n  ${again}\n(${why})${secret}`;
}

/** Warnings (say, an eviction policy that can lose jobs) go to stderr between progress lines. */
function stderrLogger(io: CliIo, progress: ProgressView): Logger {
  const say = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    progress.finishLine();
    line(io.stderr, `[${level}] ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`);
  };
  return { debug() {}, info() {}, warn: say('warn'), error: say('error') };
}

function integer(flag: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} must be a whole number, got ${String(value)}`);
  return n;
}

/**
 * Without --batch-size, a batch holds no more than one second of the rate: the pacer lets a batch
 * start only once the rate allows all of it, so a batch larger than that would come as one burst
 * after a long pause.
 */
function batchWithin(rateLimit: number | undefined): number | undefined {
  if (rateLimit === undefined) return undefined;
  return Math.min(RUN_DEFAULTS.batchSize, Math.max(1, Math.floor(rateLimit)));
}

function positive(flag: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a number above 0, got ${String(value)}`);
  return n;
}
