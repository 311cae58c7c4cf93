import { parseArgs } from 'node:util';
import { UsageError } from './io';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_URL, maskUrl } from './target';

/** One option of a subcommand, as parseArgs takes it plus what --help says about it. */
interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  value?: string;
  /** May be given more than once: its value is then the list, in the order given. */
  multiple?: true;
  help: string;
}

/** A positional argument: `stage set <stage>`. */
interface ArgumentSpec {
  name: string;
  help: string;
}

export interface CommandSpec {
  /** As typed: 'backfill', 'scripts load'. */
  name: string;
  summary: string;
  usage: string;
  /** Positional arguments, all required, in order. */
  arguments?: ArgumentSpec[];
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
/** --stage: static mode when given, managed mode (the stage from the layout's record) without it. */
const stage = (help: string): Record<string, OptionSpec> => ({
  stage: { type: 'string', value: 'stage', help },
});
const EXCLUDE: Record<string, OptionSpec> = {
  exclude: {
    type: 'string',
    value: 'glob',
    multiple: true,
    help: "pass over keys matching this Redis glob, matched against the whole key, prefix included (repeatable): e.g. 'job:*:meta'",
  },
};
const REASON: OptionSpec = { type: 'string', value: 'why', help: 'why: kept in the record and its history (required)' };
const TRANSITION: Record<string, OptionSpec> = {
  by: { type: 'string', value: 'who', help: 'who, as the record and its history keep it (default: user@host of this machine)' },
  'replica-wait': {
    type: 'string',
    value: 'ms',
    help: 'wait this long for a replica to acknowledge the change (WAIT 1), 0 to 60000; 0 does not wait (default 1000)',
  },
};
const STAGE_ARGUMENT: ArgumentSpec = { name: 'stage', help: 'off, dualwrite, shadow, live, rampdown or complete' };
const MANAGED = `Without --stage the step runs in managed mode: it takes the stage from the layout's stage record
(refused with exit 1 when there is none: create it with \`stage init\`), keeps every batch to that
epoch (stopping with exit 1 when the stage changes under it), and writes its result into the record,
where \`stage set\` checks it. With --stage it runs in that stage (static mode) and records nothing.`;

const EXIT_CODES = `Exit codes:
  0    success (status: healthy)
  1    a person must look: conflicts, skipped records, divergences, missing or differing scripts, a refusal
       (a refused transition, no stage record, the stage changed during a run), any status finding
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
    usage: 'backfill [--stage <stage>] [--resync] [--exclude <glob>]... [options]',
    options: {
      ...stage('static mode: the stage the service runs in now (backfill is refused in off); default: managed mode'),
      resync: {
        type: 'boolean',
        help: 'after a rollback to off: also overwrite a new record whose legacy twin was updated later',
      },
      restart: { type: 'boolean', help: 'ignore the checkpoint of an interrupted run and start over' },
      ...EXCLUDE,
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

${MANAGED}
To leave dualwrite, the record needs a backfill that ran to its end in the current epoch (a --resync
one after a stay in off).

Exit code 1 when any conflict or skipped record needs a person.`,
  },
  {
    name: 'verify',
    summary: 'prove the two layouts, the indexes and the queue agree (reads only)',
    usage: 'verify [--stage <stage>] [--exclude <glob>]... [options]',
    options: {
      ...stage('static mode: the stage the service runs in now, which decides what must agree; default: managed mode'),
      ...EXCLUDE,
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

${MANAGED}
Entering live or complete needs a clean verify that started and ended in the current epoch,
younger than the record's max verify age.

Exit code 1 when anything diverges.`,
  },
  {
    name: 'cleanup',
    summary: 'delete legacy job keys once the migration is complete (dry run unless --yes)',
    usage: 'cleanup [--stage complete] [--yes] [--exclude <glob>]... [options]',
    options: {
      ...stage("static mode: must be 'complete', the legacy layout is then neither read nor written; default: managed mode (--yes in static mode is refused while the layout has a stage record)"),
      yes: { type: 'boolean', help: 'really delete (without it: a dry run that counts and writes nothing)' },
      ...EXCLUDE,
      ...CONNECTION,
      ...LAYOUT,
      ...RUN,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Runs a verify first and goes on only when it is clean. Deletes, in bounded batches, only legacy
job hashes whose workspace_id is valid and whose new record exists; keeps those a bare queue entry
still names. ${INTERRUPT}

${MANAGED}
Once a managed cleanup has deleted anything, \`stage set\` refuses (short of --force) every stage
that reads the legacy layout (off, dualwrite, shadow). So --stage complete --yes is refused while the
layout has a stage record: its deletions would not be recorded.

Exit code 1 when refused (wrong stage, verify not clean, static --yes beside a stage record).`,
  },
  {
    name: 'stage init',
    summary: "create the layout's stage record, which managed instances take their stage from",
    usage: 'stage init <stage> --reason "<why>" [--max-verify-age <ms>] [--by <who>] [--replica-wait <ms>] [options]',
    arguments: [STAGE_ARGUMENT],
    options: {
      reason: REASON,
      'max-verify-age': {
        type: 'string',
        value: 'ms',
        help: 'how long a clean verify counts for `stage set` into live and complete (default 86400000, 24 h)',
      },
      ...TRANSITION,
      ...CONNECTION,
      ...LAYOUT,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Once per key layout (--prefix, --tag), at the stage the service runs in now: the record is
<prefix>dualwrite:stage ({<tag>}:dualwrite:stage with --tag), at epoch 1. Refused (exit 1, nothing changed) when the record exists: use \`stage set\`.
Prints the stage, the epoch and whether a replica acknowledged; --json prints the transition.`,
  },
  {
    name: 'stage set',
    summary: 'move the whole fleet to a stage, through the transition guards',
    usage: 'stage set <stage> --reason "<why>" [--expect-epoch <n>] [--force] [--by <who>] [--replica-wait <ms>] [options]',
    arguments: [STAGE_ARGUMENT],
    options: {
      reason: REASON,
      'expect-epoch': {
        type: 'string',
        value: 'n',
        help: 'refuse unless the record is at this epoch (the one status showed you): of two operators, one wins',
      },
      force: { type: 'boolean', help: 'pass a refusing guard (never same_stage); the record and its history keep that it was forced' },
      ...TRANSITION,
      ...CONNECTION,
      ...LAYOUT,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Every managed instance's next call runs in the new stage: each script reads the record itself.
The guards: forward one stage at a time; out of dualwrite only after a backfill that ran to its end
in the current epoch (a --resync one after a stay in off); into live and complete only after a clean
verify of the current epoch, younger than the record's max verify age. Backward moves (rollbacks) go
any distance at once, except into off, dualwrite or shadow once cleanup has deleted legacy records.
A refusal (exit 1) changes nothing and prints the rule and what would satisfy it.
Prints from, to, the new epoch, whether it was forced and whether a replica acknowledged (a
warning when the layout has replicas and none did in time: a failover could lose the change);
--json prints the transition: {from, to, epoch, changedAt, forced, replicated}.`,
  },
  {
    name: 'stage config',
    summary: 'change the settings every managed instance shares: max verify age, retention',
    usage: 'stage config [--max-verify-age <ms>] [--retention-succeeded <s>] [--retention-failed <s>] [--retention-cancelled <s>] [options]',
    options: {
      'max-verify-age': {
        type: 'string',
        value: 'ms',
        help: 'how long a clean verify counts for `stage set` into live and complete',
      },
      'retention-succeeded': { type: 'string', value: 's', help: 'how long a succeeded job stays, in seconds; 0: for good' },
      'retention-failed': { type: 'string', value: 's', help: 'how long a failed job stays, in seconds; 0: for good' },
      'retention-cancelled': { type: 'string', value: 's', help: 'how long a cancelled job stays, in seconds; 0: for good' },
      ...CONNECTION,
      ...LAYOUT,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Writes the settings into the layout's stage record, where every managed instance's scripts
read them: not a transition (the stage and its epoch stay, the record's revision moves). A setting
left out stays as it is. Retention applies to jobs that finish from then on: each gets one absolute
expiry in every layout, and the service's maintain() sweeps what still names it (README "Workers").
Exit 1 when there is no stage record (create it with \`stage init\`).`,
  },
  {
    name: 'status',
    summary: 'where the migration stands: the stage, its history, the last runs, the instances, what next',
    usage: 'status [--history <n>] [options]',
    options: {
      history: { type: 'string', value: 'n', help: 'transitions shown, newest first, 1 to 200 (default 10)' },
      ...CONNECTION,
      ...LAYOUT,
      json: JSON_OUTPUT,
      ...HELP,
    },
    details: `Reads only. Shows the stage record (stage, epoch, since when, by whom, why, forced), its recent
history, the last backfill, verify and cleanup (when, the result, fresh or stale, whether it spanned
a transition), the service instances whose heartbeat was seen in the last 60 s (id, mode,
stage/epoch, version, scripts, age), the findings, and the next steps with the exact command,
completed with the connection and layout flags given here (a password shown as ***).
--json prints the same as one object: {key, record, history, runs, instances, findings, healthy,
next_steps}.
Exit code 0 when healthy; 1 when anything needs a person: no stage record, in live no fresh clean
verify, an instance on another epoch or other scripts, a static instance beside the record.`,
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

export type ParsedOptions = Record<string, string | boolean | string[] | undefined>;

export interface CommandLine {
  options: ParsedOptions;
  /** The positional arguments, as the command's `arguments` name them. */
  args: string[];
}

/** Parses a subcommand's line with node:util parseArgs, strictly: an unknown flag or a missing argument is a UsageError. */
export function parseCommandLine(command: CommandSpec, args: readonly string[]): CommandLine {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, spec]) => [
      name,
      { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) },
    ]),
  );
  const expected = command.arguments ?? [];
  let parsed: { values: ParsedOptions; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  // Shown masked: a URL typed without its flag may carry a password.
  if (positionals.length > expected.length) throw new UsageError(`unexpected argument ${maskUrl(positionals[expected.length])}`);
  if (positionals.length < expected.length) {
    const missing = expected[positionals.length];
    throw new UsageError(`${command.name} needs <${missing.name}>: ${missing.help}`);
  }
  return { options: values, args: positionals };
}

export function commandHelp(command: CommandSpec): string {
  const args = (command.arguments ?? []).map((arg) => `  ${`<${arg.name}>`.padEnd(26)} ${arg.help}`);
  const rows = Object.entries(command.options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` <${spec.value}>` : ''}`;
    return `  ${flag.padEnd(26)} ${spec.help}`;
  });
  return `redis-dual-write ${command.name}: ${command.summary}

Usage: redis-dual-write ${command.usage}
${args.length > 0 ? `\nArguments:\n${args.join('\n')}\n` : ''}
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
Stage control: a fleet in managed mode takes its stage from the layout's stage record. Create it
with \`stage init\`, move it with \`stage set\`, see where it stands with \`status\`; backfill,
verify and cleanup without --stage run in the record's stage and record their results for the guards.
The runbook: docs/MIGRATION.md.

${EXIT_CODES}
`;
}
