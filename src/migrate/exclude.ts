import { ValidationError } from '../errors';

/** At most this many patterns, each at most this long: a bound on what every scanned key is tried against. */
const MAX_PATTERNS = 64;
const MAX_PATTERN_LENGTH = 512;

/**
 * The `exclude` option: Redis glob patterns (as SCAN MATCH and KEYS read them: `*`, `?`, `[abc]`,
 * `[^a]`, `[a-z]`, `\x`) matched against the whole key, prefix included. A legacy service often keeps
 * other hashes under the job pattern (`job:<id>:meta`, say); excluded keys are no part of the layout,
 * so no walk copies, reports or deletes them. Returns a predicate: is this key excluded?
 */
export function excludeMatcher(option: unknown): (key: string) => boolean {
  if (option === undefined) return () => false;
  if (!Array.isArray(option) || option.length > MAX_PATTERNS) {
    throw new ValidationError('exclude', 'type', `must be an array of at most ${MAX_PATTERNS} glob patterns`);
  }
  const patterns = option.map((pattern, i) => {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
      throw new ValidationError(`exclude[${i}]`, 'format', `must be a glob pattern of 1 to ${MAX_PATTERN_LENGTH} characters`);
    }
    return globToRegExp(pattern);
  });
  if (patterns.length === 0) return () => false;
  return (key) => patterns.some((pattern) => pattern.test(key));
}

/** Redis' glob (util.c stringmatchlen) as a regular expression over the whole key. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === '*') source += '[\\s\\S]*';
    else if (char === '?') source += '[\\s\\S]';
    else if (char === '\\' && i + 1 < glob.length) source += escape(glob[++i]);
    else if (char === '[') {
      const [set, end] = characterClass(glob, i + 1);
      source += set;
      i = end;
    } else source += escape(char);
  }
  return new RegExp(`^${source}$`);
}

/**
 * A `[...]` class from `start` (just past the '['): `^` negates, `a-z` is a range (either order, as
 * Redis takes it), `\x` is x. Redis lets an unclosed class run to the end of the pattern.
 */
function characterClass(glob: string, start: number): [string, number] {
  let i = start;
  const negate = glob[i] === '^';
  if (negate) i++;
  const parts: string[] = [];
  for (; i < glob.length && glob[i] !== ']'; i++) {
    if (glob[i] === '\\' && i + 1 < glob.length) {
      parts.push(escapeInClass(glob[++i]));
    } else if (glob[i + 1] === '-' && i + 2 < glob.length && glob[i + 2] !== ']') {
      const [from, to] = [glob[i], glob[i + 2]].sort();
      parts.push(`${escapeInClass(from)}-${escapeInClass(to)}`);
      i += 2;
    } else {
      parts.push(escapeInClass(glob[i]));
    }
  }
  // An empty class matches nothing ([^] anything): JavaScript needs it spelled out.
  const body = parts.join('');
  const set = body === '' ? (negate ? '[\\s\\S]' : '[^\\s\\S]') : `[${negate ? '^' : ''}${body}]`;
  return [set, i];
}

function escape(char: string): string {
  return char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function escapeInClass(char: string): string {
  return char.replace(/[\]\\^-]/g, '\\$&');
}
