import type { Registry } from 'prom-client';
import { resolveLayout } from '../custom-layout';
import { clusterLayout, type KeyLayout } from '../keys';
import type { Logger } from '../logger';
import { migrationLayout } from '../migrate/layout';
import { Migration } from '../migrate/migration';
import type { RedisClient } from '../scripts/registry';
import type { StageOption } from '../stages';
import type { ParsedOptions } from './commands';
import { listFlag, textFlag } from './flag-values';
import { UsageError } from './io';

export interface CommandMigration {
  migration: Migration;
  /** The layout's stage record, for messages. */
  stageKey: string;
}

/**
 * The Migration a command works through, from the layout flags (--prefix, --queue, --tag) and
 * --exclude. Built before connecting: a bad value is a usage error, and on a cluster a layout that
 * splits an operation over slots is refused here.
 */
export function migrationFor(
  redis: RedisClient,
  options: ParsedOptions,
  stage: StageOption,
  logger: Logger,
  registry: Registry | undefined = undefined,
): CommandMigration {
  const queueName = textFlag(options.queue) ?? 'default';
  const keyPrefix = textFlag(options.prefix) ?? '';
  const tag = textFlag(options.tag);
  const keys = tag !== undefined ? clusterLayout(tag) : undefined;
  const exclude = listFlag(options.exclude);
  const migration = new Migration({
    redis,
    stage,
    queueName,
    keyPrefix,
    ...(keys ? { keys } : {}),
    ...(exclude ? { exclude } : {}),
    metrics: registry ? { registry } : false,
    logger,
  });
  const layout = resolveLayout(keys, keyPrefix, queueName);
  if (exclude) checkExcludeCanMatch(exclude, layout, keyPrefix, queueName, tag);
  return { migration, stageKey: layout.stage() };
}

/**
 * An --exclude pattern is matched against the whole key, prefix included. One whose fixed start
 * fits no key the walks see (most often: the prefix or tag left out) would exclude nothing, and the
 * run would report those keys as bad records after all: refused before anything is sent.
 */
function checkExcludeCanMatch(patterns: string[], keys: KeyLayout, keyPrefix: string, queueName: string, tag: string | undefined): void {
  const layout = migrationLayout(keys, queueName);
  const walked = [layout.legacyPattern, layout.newPattern, layout.indexPattern];
  const front = `${keyPrefix}${tag !== undefined ? `{${tag}}:` : ''}`;
  const fits = (glob: string) => walked.some((walk) => compatible(fixedStart(glob), fixedStart(walk)));
  for (const pattern of patterns) {
    if (fits(pattern)) continue;
    const suggestion = front !== '' && fits(`${front}${pattern}`) ? ` (did you mean '${front}${pattern}'?)` : '';
    throw new UsageError(
      `--exclude '${pattern}' can never match: patterns are matched against the whole key, prefix included, ` +
        `and the walks see only keys matching ${walked.join(', ')}${suggestion}`,
    );
  }
}

/** The text every key a Redis glob matches starts with: up to its first wildcard, escapes undone. */
function fixedStart(glob: string): string {
  let text = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === '*' || char === '?' || char === '[') break;
    if (char === '\\' && i + 1 < glob.length) text += glob[++i];
    else text += char;
  }
  return text;
}

/** Some key can start with both: one fixed start is a prefix of the other. */
function compatible(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}
