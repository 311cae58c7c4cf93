import { TransitionRefusedError, ValidationError } from '../errors';
import { commandHelp, COMMANDS, findCommand, mainHelp, parseCommandLine, type ParsedOptions } from './commands';
import { errorCode, errorFacts, exitCodeFor } from './failure';
import { EXIT, line, UsageError, type CliIo } from './io';
import { runMigrationStep } from './migrate-command';
import { carriedFlags, completeCommandsIn, maskedNote } from './next-command';
import { runScripts } from './scripts-command';
import { runStage, runStageConfig } from './stage-command';
import { runStatus } from './status-command';

export type { CliIo, CliStream } from './io';
export { EXIT } from './io';

/** Commands of two words: `scripts load`, `stage set`. Typed alone, the group prints its usage. */
const GROUPS: Record<string, string> = { scripts: 'load|check|manifest', stage: 'init|set' };

/**
 * The `redis-dual-write` command. Returns the exit code instead of exiting, so tests (and
 * programs embedding it) run it in-process: 0 only on success (see EXIT).
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, second] = argv;
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const words = first !== undefined && first in GROUPS ? [first, second ?? ''] : [first ?? ''];
  const command = findCommand(words);
  let options: ParsedOptions | undefined;
  try {
    if (!command) {
      if (first === undefined || first.startsWith('-') || first === 'help') {
        line(wantsHelp || first === 'help' ? io.stdout : io.stderr, mainHelp());
        return wantsHelp || first === 'help' ? EXIT.ok : EXIT.usage;
      }
      if (first in GROUPS && (second === undefined || second.startsWith('-'))) {
        line(wantsHelp ? io.stdout : io.stderr, groupUsage(first));
        return wantsHelp ? EXIT.ok : EXIT.usage;
      }
      throw new UsageError(`unknown command '${words.join(' ').trim()}'`);
    }
    if (wantsHelp) {
      line(io.stdout, commandHelp(command));
      return EXIT.ok;
    }
    const parsed = parseCommandLine(command, argv.slice(words.length));
    options = parsed.options;
    switch (command.name) {
      case 'scripts load':
      case 'scripts check':
      case 'scripts manifest':
        return await runScripts(command.name.split(' ')[1] as 'load' | 'check' | 'manifest', options, io);
      case 'backfill':
      case 'verify':
      case 'cleanup':
        return await runMigrationStep(command.name, options, io, argv);
      case 'stage init':
      case 'stage set':
        return await runStage(command.name === 'stage init' ? 'init' : 'set', parsed.args[0], options, io);
      case 'stage config':
        return await runStageConfig(options, io);
      case 'status':
        return await runStatus(options, io);
      case 'demo': {
        const { runDemo } = await import('../demo');
        await runDemo((text) => line(io.stdout, text));
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command '${command.name}'`);
    }
  } catch (error) {
    return failed(error, command?.name, argv.includes('--json'), io, options);
  }
}

function groupUsage(group: string): string {
  const rows = COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) => `  ${c.name.padEnd(18)} ${c.summary}`);
  return `Usage: redis-dual-write ${group} <${GROUPS[group]}> [options]\n\n${rows.join('\n')}\n`;
}

/**
 * Says why the command failed and returns its exit code. A command the message names for the
 * operator to run (create the record, run verify) carries this run's connection and layout flags.
 */
function failed(error: unknown, commandName: string | undefined, json: boolean, io: CliIo, options: ParsedOptions | undefined): number {
  const exitCode = exitCodeFor(error);
  const code = errorCode(error);
  const flags = carriedFlags(options ?? {});
  const complete = (text: string) => completeCommandsIn(text, flags);
  // A ValidationError here comes from a flag's value (say --stage or --batch-size): said as the flag.
  const said = error instanceof ValidationError ? flagMessage(error) : error instanceof Error ? error.message : String(error);
  const message = complete(said);
  if (json) {
    const facts = errorFacts(error);
    if (typeof facts.remedy === 'string') facts.remedy = complete(facts.remedy);
    line(io.stdout, JSON.stringify({ error: { code, message, ...facts } }, null, 2));
  }
  if (error instanceof TransitionRefusedError) {
    // The rule and what would satisfy it, each on its own line: what the operator acts on.
    line(io.stderr, `redis-dual-write: stage ${error.from} -> ${error.to} refused; nothing changed\n  rule:   ${error.rule}\n  remedy: ${complete(error.remedy)}`);
  } else {
    line(io.stderr, `redis-dual-write: ${message}`);
  }
  // A command completed with a masked --url or --cluster cannot be pasted as it is: say so.
  if (message !== said) {
    const note = maskedNote(flags);
    if (note) line(io.stderr, note);
  }
  if (code === 'USAGE') line(io.stderr, `Run 'redis-dual-write ${commandName ?? ''}${commandName ? ' ' : ''}--help' for the options.`);
  // The library names the preset as code; the command's way to say it is a flag.
  if (code === 'CROSS_SLOT') line(io.stderr, "On a cluster, pass --tag <tag> when the service uses keys: clusterLayout('<tag>').");
  return exitCode;
}

/** ValidationError names the library's field; say it as the flag the operator typed. */
function flagMessage(error: ValidationError): string {
  const flags: Record<string, string> = {
    stage: '--stage',
    keyPrefix: '--prefix',
    queueName: '--queue',
    batchSize: '--batch-size',
    rateLimit: '--rate',
    sampleLimit: '--samples',
    tag: '--tag',
    reason: '--reason',
    by: '--by',
    expectedEpoch: '--expect-epoch',
    maxVerifyAgeMs: '--max-verify-age',
    'retention.succeeded': '--retention-succeeded',
    'retention.failed': '--retention-failed',
    'retention.cancelled': '--retention-cancelled',
    settings: 'stage config',
    replicaWaitMs: '--replica-wait',
    historyLimit: '--history',
  };
  const excluded = /^exclude\[(\d+)\]$/.exec(error.field);
  const flag = excluded ? `--exclude (pattern ${Number(excluded[1]) + 1})` : flags[error.field];
  const field = error.field.replace(/[[\]]/g, '\\$&');
  return flag ? error.message.replace(new RegExp(`^${field}:`), `${flag}:`) : error.message;
}
