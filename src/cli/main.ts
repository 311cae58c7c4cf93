import { ValidationError } from '../errors';
import { commandHelp, COMMANDS, findCommand, mainHelp, parseOptions } from './commands';
import { errorCode, exitCodeFor } from './failure';
import { EXIT, line, UsageError, type CliIo } from './io';
import { runMigrationStep } from './migrate-command';
import { runScripts } from './scripts-command';

export type { CliIo, CliStream } from './io';
export { EXIT } from './io';

/**
 * The `redis-dual-write` command. Returns the exit code instead of exiting, so tests (and
 * programs embedding it) run it in-process: 0 only on success (see EXIT).
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, second] = argv;
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const words = first === 'scripts' ? [first, second ?? ''] : [first ?? ''];
  const command = findCommand(words);
  try {
    if (!command) {
      if (first === undefined || first.startsWith('-') || first === 'help') {
        line(wantsHelp || first === 'help' ? io.stdout : io.stderr, mainHelp());
        return wantsHelp || first === 'help' ? EXIT.ok : EXIT.usage;
      }
      if (first === 'scripts' && (second === undefined || second.startsWith('-'))) {
        const scripts = COMMANDS.filter((c) => c.name.startsWith('scripts ')).map((c) => `  ${c.name.padEnd(18)} ${c.summary}`);
        line(wantsHelp ? io.stdout : io.stderr, `Usage: redis-dual-write scripts <load|check|manifest> [options]\n\n${scripts.join('\n')}\n`);
        return wantsHelp ? EXIT.ok : EXIT.usage;
      }
      throw new UsageError(`unknown command '${words.join(' ').trim()}'`);
    }
    if (wantsHelp) {
      line(io.stdout, commandHelp(command));
      return EXIT.ok;
    }
    const options = parseOptions(command, argv.slice(words.length));
    switch (command.name) {
      case 'scripts load':
      case 'scripts check':
      case 'scripts manifest':
        return await runScripts(command.name.split(' ')[1] as 'load' | 'check' | 'manifest', options, io);
      case 'backfill':
      case 'verify':
      case 'cleanup':
        return await runMigrationStep(command.name, options, io, argv);
      case 'demo': {
        const { runDemo } = await import('../demo');
        await runDemo((text) => line(io.stdout, text));
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command '${command.name}'`);
    }
  } catch (error) {
    return failed(error, command?.name, argv.includes('--json'), io);
  }
}

function failed(error: unknown, commandName: string | undefined, json: boolean, io: CliIo): number {
  const exitCode = exitCodeFor(error);
  const code = errorCode(error);
  // A ValidationError here comes from a flag's value (say --stage or --batch-size): said as the flag.
  const message = error instanceof ValidationError ? flagMessage(error) : error instanceof Error ? error.message : String(error);
  if (json) line(io.stdout, JSON.stringify({ error: { code, message } }, null, 2));
  line(io.stderr, `redis-dual-write: ${message}`);
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
  };
  const flag = flags[error.field];
  return flag ? error.message.replace(new RegExp(`^${error.field}:`), `${flag}:`) : error.message;
}
