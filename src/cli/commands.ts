import { parseArgs } from 'node:util';
import { UsageError } from './io';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_URL, maskUrl } from './target';

/** One option of a subcommand, as parseArgs takes it plus what --help says about it. */
interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  value?: string;
  help: string;
}

export interface CommandSpec {
  /** As typed: 'backfill', 'scripts load'. */
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Paragraphs after the options: what it does, what the exit code means. */
  details: string;
}

const HELP: Record<string, OptionSpec> = { help: { type: 'boolean', short: 'h', help: 'show this help' } };
const JSON_OUTPUT: OptionSpec = { type: 'boolean', help: 'print the result as JSON on stdout (progress stays on stderr)' };
const CONNECTION: Record<string, OptionSpec> = {
  url: {
    type: 'string',
    value: 'url',
    help: `Redis to work on, redis:// or rediss:// (TLS) (default: $REDIS_URL, else ${DEFAULT_URL})`,
  },
  cluster: {
    type: 'string',
    value: 'host:port,...',
    help: 'a Redis Cluster instead, by seed nodes; rediss://user:pass@host:port items for TLS and credentials',
  },
  'tls-ca': { type: 'string', value: 'file', help: "with rediss://: the CA certificate(s), PEM, to trust (default: the system's)" },
  'tls-servername': {
    type: 'string',
    value: 'name',
    help: "with rediss://: the name the server's certificate must carry (default: the host connected to)",
  },
  'tls-cert': { type: 'string', value: 'file', help: 'with rediss://: a client certificate, PEM, for servers that ask for one' },
  'tls-key': { type: 'string', value: 'file', help: "with rediss://: the client certificate's private key, PEM" },
  'connect-timeout': {
    type: 'string',
    value: 'ms',
    help: `give up when Redis is not usable within this long (default ${DEFAULT_CONNECT_TIMEOUT_MS})`,
  },
  'command-timeout': {
    type: 'string',
    value: 'ms',
    help: `give up when Redis does not answer a command within this long (default ${DEFAULT_COMMAND_TIMEOUT_MS})`,
  },
};
const LAYOUT: Record<string, OptionSpec> = {
  prefix: { type: 'string', value: 'prefix', help: "the keyPrefix the service uses (default '')" },
  queue: { type: 'string', value: 'name', help: "the queueName the service uses (default 'default')" },
  tag: { type: 'string', value: 'tag', help: "the service uses keys: clusterLayout('<tag>'): every key behind {<tag>}" },
};
const RUN: Record<string, OptionSpec> = {
  'batch-size': { type: 'string', value: 'n', help: 'jobs per script call, 1 to 500 (default 200, or one second of --rate if less)' },
  rate: { type: 'string', value: 'jobs/s', help: 'at most this many jobs per second, from the first batch on (default: no limit)' },
  samples: { type: 'string', value: 'n', help: 'examples kept per kind in the report (default 10)' },
  'metrics-file': {
    type: 'string',
    value: 'path',
    help: "write the run's metrics there (Prometheus text, for node_exporter's textfile collector)",
  },
};
const stage = (help: string): Record<string, OptionSpec> => ({
  stage: { type: 'string', value: 'stage', help },
});

const EXIT_CODES = `Exit codes:
  0    success
  1    a person must look: conflicts, skipped records, divergences, missing or differing scripts, a refusal
  2    usage error: nothing was sent to Redis
  3    the run itself failed: Redis unreachable or silent (timeouts), TLS, authentication, permission, a crash
  130  stopped by Ctrl-C`;
const INTERRUPT = 'Ctrl-C stops after the batch in flight and says how to resume; a second Ctrl-C quits at once.';

export const COMMANDS: CommandSpec[] = [
  {
    name: 'scripts load',
    summary: 'load every script of the manifest into Redis and check each sha1',
    usage: 'scripts load [--url <url> | --cluster <host:port,...>] [--json]',
    options: { ...CONNECTION, json: JSON_OUTPUT, ...HELP },
    details: `Run at deploy, before new service instances start. Prints one row per script: the sha1 the
manifest names and the one Redis returned. On a cluster, one row per script and node: every master
and every replica (Redis does not replicate SCRIPT LOAD). Exit code 1 when any differs.`,
  },
  {
    name: 'scripts check',
    summary: 'exit 1 when any script of the manifest is not loaded on the server',
    usage: 'scripts check [--url <url> | --cluster <host:port,...>] [--json]',
    options: { ...CONNECTION, json: JSON_OUTPUT, ...HELP },
    details:
      'A deploy gate or readiness probe: reads only (SCRIPT EXISTS). Exit code 0 when every script is loaded ' +
      '(on a cluster: on every node).',
  },
  {
    name: 'scripts manifest',
    summary: 'print the script manifest (id, sha1, keys)',
    usage: 'scripts manifest [--json]',
    options: { json: JSON_OUTPUT, ...HELP },
    details: 'Needs no Redis.',
  },
  {
    name: 'backfill',
    summary: 'copy legacy jobs that are missing from the new layout',
    usage: 'backfill --stage <stage> [--resync] [options]',
    options: {
      ...stage('the stage the service runs in now (required; backfill is refused in off)'),
      resync: {
        type: 'boolean',
        help: 'after a rollback to off: also overwrite a new record whose legacy twin was updated later',
      },
      restart: { type: 'boolean', help: 'ignore the checkpoint of an interrupted run and start over' },
      ...CONNECTION,
      ...LAYOUT,
      ...RUN,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Walks the legacy layout with SCAN and copies each job missing from the new layout in bounded
batches (one script call each), adding it to its workspace index and keeping its TTL. A new record
is never overwritten: a pair that differs is a conflict, reported with samples. Records without a
valid workspace_id are skipped and reported. The SCAN cursor is checkpointed in
<prefix>dualwrite:backfill:<queue> ({<tag>}:dualwrite:backfill:<queue> with --tag), so an interrupted run continues where it stopped; a second run
copies nothing. ${INTERRUPT}
Exit code 1 when any conflict or skipped record needs a person.`,
  },
  {
    name: 'verify',
    summary: 'prove the two layouts, the indexes and the queue agree (reads only)',
    usage: 'verify --stage <stage> [options]',
    options: {
      ...stage('the stage the service runs in now (required): it decides what must agree'),
      ...CONNECTION,
      ...LAYOUT,
      ...RUN,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Reports, per kind, the divergences it finds: missing_new, missing_legacy (while the legacy
layout is written), field_mismatch (before complete), missing_index, index_orphan, queue_orphan,
bad_legacy_record, wrong_type; with up to --samples examples of each. Sets the
dualwrite_verify_divergences gauge when it completes. ${INTERRUPT}
Exit code 1 when anything diverges.`,
  },
  {
    name: 'cleanup',
    summary: 'delete legacy job keys once the migration is complete (dry run unless --yes)',
    usage: 'cleanup --stage complete [--yes] [options]',
    options: {
      ...stage("must be 'complete': the legacy layout is then neither read nor written"),
      yes: { type: 'boolean', help: 'really delete (without it: a dry run that counts and writes nothing)' },
      ...CONNECTION,
      ...LAYOUT,
      ...RUN,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Runs a verify first and goes on only when it is clean. Deletes, in bounded batches, only legacy
job hashes whose workspace_id is valid and whose new record exists; keeps those a bare queue entry
still names. ${INTERRUPT}
Exit code 1 when refused (wrong stage, verify not clean).`,
  },
  {
    name: 'demo',
    summary: "the README's walkthrough, against a Redis it starts itself",
    usage: 'demo',
    options: { ...HELP },
    details: `Starts a private redis-server (or uses $REDIS_URL, or a container), enqueues in off, dual writes,
reads with fallback, updates, verifies, and prints the metrics.`,
  },
];

export function findCommand(words: readonly string[]): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === words.join(' '));
}

export type ParsedOptions = Record<string, string | boolean | undefined>;

/** Parses a subcommand's options with node:util parseArgs, strictly: an unknown flag is a UsageError. */
export function parseOptions(command: CommandSpec, args: readonly string[]): ParsedOptions {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, spec]) => [name, spec.short ? { type: spec.type, short: spec.short } : { type: spec.type }]),
  );
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
    // Shown masked: a URL typed without its flag may carry a password.
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${maskUrl(positionals[0])}`);
    return values as ParsedOptions;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}

export function commandHelp(command: CommandSpec): string {
  const rows = Object.entries(command.options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` <${spec.value}>` : ''}`;
    return `  ${flag.padEnd(26)} ${spec.help}`;
  });
  return `redis-dual-write ${command.name}: ${command.summary}

Usage: redis-dual-write ${command.usage}

Options:
${rows.join('\n')}

${command.details}

${EXIT_CODES}
`;
}

export function mainHelp(): string {
  const rows = COMMANDS.map((command) => `  ${command.name.padEnd(18)} ${command.summary}`);
  return `redis-dual-write: move a Redis job store to the workspace-scoped layout, and operate the move

Usage: redis-dual-write <command> [options]

Commands:
${rows.join('\n')}

Every command takes --help. Connection: --url (default $REDIS_URL, else ${DEFAULT_URL}), or
--cluster host:port,... for a Redis Cluster; rediss:// for TLS (--tls-ca, --tls-servername,
--tls-cert, --tls-key); --connect-timeout and --command-timeout (ms). The key layout: --prefix,
--queue and --tag, as the service's keyPrefix, queueName and clusterLayout tag; --json for machine
output.
The runbook: docs/MIGRATION.md.

${EXIT_CODES}
`;
}
