import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { PermissionError, StageChangedError, VerifyNotCleanError } from '../errors';
import type { Migration } from '../migrate/migration';
import { checkRunOptions, RUN_DEFAULTS, type RunOptions } from '../migrate/options';
import { readStageRecord } from '../stage-control/record';
import type { RedisClient } from '../scripts/registry';
import { translateRedisError } from '../scripts/replies';
import type { StageOption } from '../stages';
import type { ParsedOptions } from './commands';
import { connect, createClient } from './connect';
import { duringRun, exitCodeFor } from './failure';
import { integerFlag, positiveFlag, textFlag } from './flag-values';
import { EXIT, line, type CliIo } from './io';
import { stderrLogger } from './logger';
import { migrationFor } from './migration-flags';
import { carriedFlags, completeCommandsIn, passwordNote } from './next-command';
import { ProgressView } from './progress';
import { renderBackfill, renderCleanup, renderVerify, table } from './render';
import { commandLineShown, targetFor } from './target';

type Step = 'backfill' | 'verify' | 'cleanup';

/**
 * backfill, verify and cleanup: a thin face over Migration. Progress goes to stderr, the report to
 * stdout (as JSON with --json), and the exit code says whether a person is needed. Without --stage
 * the step runs in managed mode: in the stage record's stage, its result recorded for the guards.
 */
export async function runMigrationStep(step: Step, options: ParsedOptions, io: CliIo, argv: readonly string[]): Promise<number> {
  const stage = (textFlag(options.stage) ?? 'managed') as StageOption;
  const target = targetFor(options, io.env);
  const progress = new ProgressView(io.stderr);
  const rateLimit = positiveFlag('--rate', options.rate);
  const run: RunOptions = {
    signal: io.signal,
    onProgress: (p) => progress.update(p),
    batchSize: integerFlag('--batch-size', options['batch-size']) ?? batchWithin(rateLimit),
    rateLimit,
    sampleLimit: integerFlag('--samples', options.samples),
  };
  // Checked here too, so a bad value is a usage error before anything is sent (the step checks them again).
  checkRunOptions(run);
  const redis = createClient(target);
  const registry = new Registry();
  try {
    const { migration, stageKey } = migrationFor(redis, options, stage, stderrLogger(io, () => progress.finishLine()), registry);
    await connect(redis, target);
    await migration.ready().catch((error: unknown) => {
      throw duringRun(error, target);
    });
    if (stage !== 'managed') {
      await warnBesideRecord(redis, stageKey, stage, step, io).catch((error: unknown) => {
        throw duringRun(error, target);
      });
    }

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
      if (caught instanceof StageChangedError) line(io.stderr, completeCommandsIn(stageChangedHint(step, argv, migration), carriedFlags(options)));
      const error = duringRun(caught, target);
      // A lost connection mid-run: the checkpoint written after every page lets the same command go on.
      if (step === 'backfill' && exitCodeFor(error) === EXIT.failed) {
        line(io.stderr, resumeHint(step, argv, migration).replace('Stopped after the batch in flight', 'Failed'));
      }
      throw error;
    }
    if (stage === 'managed' && !options.json) line(io.stdout, `(managed mode: the result is recorded in ${stageKey} for \`stage set\`'s guards)`);
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
  const { again, secret } = sameCommand(argv.filter((arg) => arg !== '--restart'));
  if (step === 'backfill') {
    return `Stopped after the batch in flight. Resume with:\n  ${again}\n(the checkpoint in ${migration.checkpointKey} continues where it stopped)${secret}`;
  }
  const why = step === 'verify' ? 'verify only reads, so it starts over' : 'cleanup starts over; deleted keys are not counted twice';
  return `Stopped after the batch in flight. Run it again with:\n  ${again}\n(${why})${secret}`;
}

/**
 * After the stage changed under a managed run: the run stopped with nothing of its interrupted batch
 * written, and proves nothing to the guards. A backfill run again starts over by itself: its
 * checkpoint is of the old epoch, so the run the record keeps walks the whole layout in the new stage.
 */
function stageChangedHint(step: Step, argv: readonly string[], migration: Migration): string {
  const { again, secret } = sameCommand(argv);
  const checkpoint = step === 'backfill' ? ` (its checkpoint in ${migration.checkpointKey} is of the old epoch: the next run walks the layout anew)` : '';
  return `The stage changed while ${step} ran: it stopped and satisfies no guard${checkpoint}. Look at \`redis-dual-write status\`, then run it again in the new stage:\n  ${again}${secret}`;
}

function sameCommand(argv: readonly string[]): { again: string; secret: string } {
  const shown = commandLineShown(argv);
  const secret = shown.masked.size === 0 ? '' : `\n${passwordNote(shown.masked.has('--url'))}`;
  return { again: `redis-dual-write ${shown.words.join(' ')}`, secret };
}

/**
 * A static run (--stage) beside a stage record: the fleet's stage is the record's, and this run's
 * result is not recorded, so `stage set` will not count it. Said before the run, which goes on.
 */
async function warnBesideRecord(redis: RedisClient, stageKey: string, stage: StageOption, step: Step, io: CliIo): Promise<void> {
  const record = await readStageRecord(redis, stageKey).catch((error: unknown) => {
    // A user the ACL keeps from the record runs as before: the warning is advice, the run needs none of it.
    if (translateRedisError(error) instanceof PermissionError) return null;
    throw error;
  });
  if (!record) return;
  const differs = record.stage !== stage ? `; the fleet runs in ${record.stage}, not ${stage}` : '';
  line(
    io.stderr,
    `[warn] ${stageKey} holds the fleet's stage (${record.stage}, epoch ${record.epoch})${differs}: this ${step} --stage ${stage} ` +
      'runs in static mode and its result is not recorded for `stage set`; leave out --stage to run in managed mode',
  );
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
