import { KeyTypeError, PermissionError } from '../errors';
import type { MigrationContext } from '../migrate/context';
import type { RunKind } from './record';

/**
 * Writes a finished (or stopped) migration step into the stage record, in managed mode: what it
 * found, the epoch it started in, and, read by the script itself, the epoch it ended in. The
 * transition guards read these. A static-mode run records nothing: it is no part of a managed fleet.
 */
export async function recordRun(context: MigrationContext, kind: RunKind, summary: Record<string, unknown>, deleted = 0): Promise<void> {
  if (context.stages.mode !== 'managed') return;
  const reply = await context.scripts.run('record_run.v1', [context.stageKey], [kind, context.epoch, JSON.stringify(summary), deleted]);
  if (reply[0] === 'RECORDED') return;
  if (reply[0] === 'WRONGTYPE') throw new KeyTypeError(String(reply[1]), 'hash', String(reply[3]));
  if (reply[0] === 'NO_PERMISSION') throw new PermissionError('HSET', `the Redis user may not write the stage record ${context.stageKey}`);
  // The record went away while the run went on: say so, the run's own report stands.
  context.logger.warn('redis-dual-write: the stage record is gone; the run\'s result was not recorded', { step: kind, key: context.stageKey });
}
