import type { ParsedOptions } from './commands';
import { maskUrl } from './target';

/**
 * The commands the command prints for the operator to run next (status's next steps, a guard's
 * remedy, "create the record with ...") carry the flags this run was given that say where and how
 * to connect and which layout, so they work when pasted as they are, and never with a password.
 */
const CARRIED = [
  'url',
  'cluster',
  'tls-ca',
  'tls-servername',
  'tls-cert',
  'tls-key',
  'connect-timeout',
  'command-timeout',
  'prefix',
  'queue',
  'tag',
] as const;

export interface CarriedFlags {
  /** The flags as words, ready to append: `--url 'redis://ops:***@host:6379' --prefix app:`. */
  text: string;
  /** The flags whose password was replaced by ***: the operator must type it in. */
  masked: Set<'url' | 'cluster'>;
}

export function carriedFlags(options: ParsedOptions): CarriedFlags {
  const masked = new Set<'url' | 'cluster'>();
  const words: string[] = [];
  for (const flag of CARRIED) {
    const value = options[flag];
    if (typeof value !== 'string') continue;
    let shown = value;
    if (flag === 'url' || flag === 'cluster') {
      const items = flag === 'cluster' ? value.split(',') : [value];
      const hidden = items.map(maskUrl);
      if (hidden.some((item, i) => item !== items[i])) masked.add(flag);
      shown = hidden.join(',');
    }
    words.push(`--${flag}`, shellWord(shown));
  }
  return { text: words.join(' '), masked };
}

/** A command the library names (`redis-dual-write verify`), with this run's flags appended. */
export function completeCommand(command: string, flags: CarriedFlags): string {
  return command === '' || flags.text === '' ? command : `${command} ${flags.text}`;
}

/** Every `redis-dual-write ...` command quoted in a message, completed the same way. */
export function completeCommandsIn(text: string, flags: CarriedFlags): string {
  return text.replace(/`(redis-dual-write [^`]*)`/g, (_quoted, command: string) => `\`${completeCommand(command, flags)}\``);
}

/** What to say below a command whose password was masked; '' when none was. */
export function maskedNote(flags: CarriedFlags): string {
  return flags.masked.size === 0 ? '' : passwordNote(flags.masked.has('url'));
}

export function passwordNote(inUrl: boolean): string {
  return `(the password is shown as ***: type it in${inUrl ? ', or put the URL in REDIS_URL and leave out --url' : ''})`;
}

/** A value as one shell word: as it is when it holds nothing the shell reads, else in single quotes. */
function shellWord(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
