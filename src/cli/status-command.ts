import { checkStatusOptions, type StageStatus } from '../stage-control/status';
import type { ParsedOptions } from './commands';
import { connect, createClient } from './connect';
import { duringRun } from './failure';
import { integerFlag } from './flag-values';
import { EXIT, line, type CliIo } from './io';
import { stderrLogger } from './logger';
import { migrationFor } from './migration-flags';
import { carriedFlags, completeCommand, maskedNote } from './next-command';
import { renderStatus } from './status-render';
import { targetFor } from './target';

/**
 * `status`: where the migration stands, read only (no script is loaded or run, so a read-only user
 * may ask). Exit 0 when healthy, 1 while any finding needs a person. The next steps' commands carry
 * the connection and layout flags given here, in the text and in --json alike.
 */
export async function runStatus(options: ParsedOptions, io: CliIo): Promise<number> {
  const historyLimit = integerFlag('--history', options.history);
  const statusOptions = historyLimit === undefined ? {} : { historyLimit };
  checkStatusOptions(statusOptions);
  const target = targetFor(options, io.env);
  const redis = createClient(target);
  try {
    const { migration } = migrationFor(redis, options, 'managed', stderrLogger(io));
    await connect(redis, target);
    const status = await migration.status(statusOptions).catch((error: unknown) => {
      throw duringRun(error, target);
    });
    const flags = carriedFlags(options);
    const completed: StageStatus = {
      ...status,
      next_steps: status.next_steps.map((step) => ({ ...step, command: completeCommand(step.command, flags) })),
    };
    line(io.stdout, options.json ? JSON.stringify(completed, null, 2) : renderStatus(completed, maskedNote(flags)));
    return completed.healthy ? EXIT.ok : EXIT.attention;
  } finally {
    redis.disconnect();
  }
}
