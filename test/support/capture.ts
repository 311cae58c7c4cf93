import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** One command a server ran, as MONITOR shows it. */
export interface SentCommand {
  /** host:port of the server that ran it. */
  server: string;
  /** 'script' for a command a Lua script ran (MONITOR shows them too), else the client's address. */
  source: string;
  args: string[];
}

export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Every command the servers run while `action` runs, the commands scripts run inside included:
 * what the code really sends, whatever the ACL rules say (capture as a user that may run
 * everything). Left out: each replica's replication stream from its master, which no client sent.
 * MONITOR does not show AUTH and HELLO, nor commands Redis flags as admin; the package sends none
 * but AUTH.
 */
export async function captureCommands(
  servers: readonly ServerAddress[],
  action: () => Promise<void>,
  options: { ignoreClients?: readonly Redis[] } = {},
): Promise<SentCommand[]> {
  // The test's own connections (say, one that arranges data meanwhile), known by their addresses.
  const ignored = new Set(await Promise.all((options.ignoreClients ?? []).map(clientAddress)));
  const captured: SentCommand[] = [];
  const marker = `capture-end-${randomUUID()}`;
  const watchers = await Promise.all(
    servers.map(async ({ host, port }) => {
      const server = `${host}:${port}`;
      const admin = new Redis({ host, port, maxRetriesPerRequest: 1 });
      // A replica runs what its master streams to it: not sent by any client.
      const masterLinks = new Set(
        String(await admin.call('CLIENT', 'LIST', 'TYPE', 'master'))
          .split('\n')
          .map((line) => /\baddr=(\S+)/.exec(line)?.[1])
          .filter((addr): addr is string => addr !== undefined),
      );
      let sawMarker!: () => void;
      const ended = new Promise<void>((resolve) => (sawMarker = resolve));
      // A script's commands come right after the EVAL/EVALSHA that ran it (a script runs whole): they
      // belong to that call's client, so an ignored client's scripts are left out too.
      let caller = '';
      const monitor = await watch(host, port, ({ source, args }) => {
        if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) return sawMarker();
        const from = source === 'lua' ? caller : (caller = source);
        if (masterLinks.has(from) || ignored.has(from)) return;
        captured.push({ server, source: source === 'lua' ? 'script' : source, args });
      });
      return { admin, monitor, ended };
    }),
  );
  try {
    await action();
  } finally {
    // MONITOR streams what each server ran in order: once it shows the marker, it has shown everything before.
    await Promise.all(watchers.map(async ({ admin, ended }) => Promise.all([admin.echo(marker), ended])));
    for (const { admin, monitor } of watchers) {
      monitor.destroy();
      admin.disconnect();
    }
  }
  return captured;
}

/**
 * A MONITOR connection of its own, read line by line: ioredis' monitor() loses its place when a
 * busy server streams the first line in the same packet as MONITOR's OK.
 */
async function watch(host: string, port: number, onCommand: (command: { source: string; args: string[] }) => void): Promise<Socket> {
  const socket = connect({ host, port });
  let started!: () => void;
  const monitoring = new Promise<void>((resolve, reject) => {
    started = resolve;
    socket.once('error', reject).once('close', () => reject(new Error(`MONITOR on ${host}:${port} closed before it started`)));
  });
  socket.on('error', () => {});
  let pending = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\r\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      if (line === '+OK') started();
      else if (line.startsWith('+')) onCommand(parseMonitorLine(line));
    }
  });
  socket.write('MONITOR\r\n');
  await monitoring;
  return socket;
}

/** `+<time> [<db> <source>] "arg" "arg"...`, each argument quoted and escaped as Redis' sdscatrepr writes it. */
export function parseMonitorLine(line: string): { source: string; args: string[] } {
  const header = /^\+\S+ \[\d+ ([^\]]+)\] /.exec(line);
  if (!header) throw new Error(`not a MONITOR line: ${line}`);
  const args: string[] = [];
  let bytes: number[] = [];
  const escapes: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '"': 34, '\\': 92 };
  for (let i = header[0].length; i < line.length; i++) {
    const c = line[i];
    if (c === ' ') continue;
    if (c !== '"') throw new Error(`unexpected ${c} in MONITOR line: ${line}`);
    bytes = [];
    for (i++; line[i] !== '"'; i++) {
      if (line[i] !== '\\') bytes.push(line.charCodeAt(i));
      else if (line[i + 1] === 'x') {
        bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
        i += 3;
      } else bytes.push(escapes[line[++i]] ?? line.charCodeAt(i));
    }
    args.push(Buffer.from(bytes).toString('utf8'));
  }
  return { source: header[1], args };
}

/** host:port of a connection as the server sees it, as MONITOR names the client. */
async function clientAddress(redis: Redis): Promise<string> {
  const info = String(await redis.call('CLIENT', 'INFO'));
  const addr = /\baddr=(\S+)/.exec(info)?.[1];
  if (!addr) throw new Error(`CLIENT INFO named no address: ${info}`);
  return addr;
}

/**
 * The ACL name of each command: the command, or command|subcommand for a command with
 * subcommands (CLUSTER SLOTS is cluster|slots), as ACL rules name them. Asks the server which
 * commands have subcommands (COMMAND INFO).
 */
export async function aclNames(redis: Redis, commands: readonly SentCommand[]): Promise<Set<string>> {
  const names = [...new Set(commands.map(({ args }) => args[0].toLowerCase()))];
  const infos = (await redis.call('COMMAND', 'INFO', ...names)) as unknown[][];
  const containers = new Set(names.filter((_, i) => ((infos[i]?.[9] as unknown[] | undefined) ?? []).length > 0));
  return new Set(
    commands.map(({ args }) => {
      const name = args[0].toLowerCase();
      return containers.has(name) ? `${name}|${String(args[1]).toLowerCase()}` : name;
    }),
  );
}

/**
 * The captured commands a user may not run, each with Redis' reason: ACL DRYRUN checks a command
 * and its keys against the user's rules exactly as a call would be checked (a script's inner
 * commands are checked the same way). Asked of the server that ran each command.
 */
export async function refusedTo(user: string, commands: readonly SentCommand[], serverClient: (server: string) => Redis): Promise<string[]> {
  const distinct = [...new Map(commands.map((command) => [JSON.stringify([command.server, command.args]), command])).values()];
  const verdicts = await Promise.all(
    distinct.map(({ server, args }) => serverClient(server).call('ACL', 'DRYRUN', user, ...args).then(String)),
  );
  return distinct.flatMap(({ args }, i) => (verdicts[i] === 'OK' ? [] : [`${args.slice(0, 3).join(' ')}: ${verdicts[i]}`]));
}
