import { ValidationError } from '../errors';
import { JOB_ID_PATTERN } from '../keys';
import { escapeGlob } from './scan';

/** The pattern's body without its anchors, to build a key's regular expression from. */
const body = (pattern: RegExp) => pattern.source.slice(1, -1);
/** Valid ids that no sane key text contains, so where they show up in a key is where the ids went. */
const PROBES = ['Pr0beQx7Aa', 'Pr0beQx7Bb'];
/** Other valid ids, to prove the builder keeps to the template it showed. */
const CHECKS = [
  ['x', 'job_2-b'],
  ['0d1b7f2e-5c4a-4e8b-9f61-2a7c3e9d4b10', 'Z'],
];

/**
 * A key builder read backwards: the fixed text around its ids. Backfill, verify and cleanup find keys
 * with SCAN MATCH and take the ids back out of them, which works for any layout whose builders put
 * each id into the key once, unchanged, between fixed text.
 */
export interface KeyTemplate {
  /** SCAN MATCH pattern: the fixed text, glob-escaped, with '*' where the ids go. */
  pattern: string;
  /** The ids of a key, in the builder's argument order; null when the key does not fit. */
  parse(key: string): string[] | null;
  /** Whether a key would come up in a SCAN of `pattern`. */
  matches(key: string): boolean;
}

/** `idPatterns`: what each argument of the builder takes, in argument order. */
export function keyTemplate(field: string, build: (...ids: string[]) => string, idPatterns: readonly RegExp[]): KeyTemplate {
  const arity = idPatterns.length;
  const refuse = (why: string) =>
    new ValidationError(
      field,
      'template',
      `${why}: backfill, verify and cleanup find keys by SCAN and read the ids back out of them, so the ` +
        'builder must put each id into the key once, unchanged, between fixed text',
    );
  const probes = PROBES.slice(0, arity);
  const key = build(...probes);
  const places = probes.map((probe, arg) => {
    const at = key.indexOf(probe);
    if (at === -1 || key.indexOf(probe, at + 1) !== -1) throw refuse(`the key ${key} holds id ${probe} ${at === -1 ? 'nowhere' : 'twice'}`);
    return { arg, at, end: at + probe.length };
  });
  places.sort((a, b) => a.at - b.at);
  const literals: string[] = [];
  let from = 0;
  for (const place of places) {
    literals.push(key.slice(from, place.at));
    from = place.end;
  }
  literals.push(key.slice(from));
  // Between two ids there must be a character no id holds, or a key could split two ways.
  if (literals.slice(1, -1).some((text) => new RegExp(`^${body(JOB_ID_PATTERN)}$`).test(text) || text === '')) {
    throw refuse(`the key ${key} has nothing but id characters between its ids`);
  }
  const order = places.map((place) => place.arg);
  const fill = (ids: readonly string[]) => literals.map((text, i) => (i < order.length ? text + ids[order[i]] : text)).join('');
  for (const ids of CHECKS) {
    const sample = ids.slice(0, arity);
    if (build(...sample) !== fill(sample)) throw refuse(`for ids ${sample.join(', ')} it built ${build(...sample)}, not ${fill(sample)}`);
  }

  const groups = order.map((arg) => `(${body(idPatterns[arg])})`);
  const exact = new RegExp(`^${literals.map((text, i) => escapeRegExp(text) + (groups[i] ?? '')).join('')}$`);
  const loose = new RegExp(`^${literals.map(escapeRegExp).join('[\\s\\S]*')}$`);
  return {
    pattern: literals.map(escapeGlob).join('*'),
    parse(candidate) {
      const match = exact.exec(candidate);
      if (!match) return null;
      const ids: string[] = [];
      order.forEach((arg, i) => (ids[arg] = match[i + 1]));
      return ids;
    },
    matches: (candidate) => loose.test(candidate),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
