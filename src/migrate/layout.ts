import { ID_PATTERN, QUEUE_NAME_PATTERN, defaultLayout, type KeyLayout } from '../keys';
import { escapeGlob } from './scan';

const ID = ID_PATTERN.source.slice(1, -1);

/**
 * The default layout read backwards: SCAN patterns for each kind of key, and parsers that take a
 * key apart again. A key whose parts fail the id whitelist is not parsed: its id never becomes part
 * of another key.
 */
export interface MigrationLayout extends KeyLayout {
  legacyPattern: string;
  newPattern: string;
  indexPattern: string;
  /** The backfill checkpoint of a queue: a hash. */
  checkpoint(queueName: string): string;
  /** The jobId of a legacy key, or null when the id part is not a valid id. */
  parseLegacy(key: string): string | null;
  parseNew(key: string): { workspaceId: string; jobId: string } | null;
  parseIndex(key: string): string | null;
}

export function migrationLayout(keyPrefix: string): MigrationLayout {
  const glob = escapeGlob(keyPrefix);
  const literal = keyPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const legacy = new RegExp(`^${literal}job:(${ID})$`);
  const fresh = new RegExp(`^${literal}ws:(${ID}):job:(${ID})$`);
  const index = new RegExp(`^${literal}ws:(${ID}):jobs$`);
  return {
    ...defaultLayout(keyPrefix),
    legacyPattern: `${glob}job:*`,
    newPattern: `${glob}ws:*:job:*`,
    indexPattern: `${glob}ws:*:jobs`,
    checkpoint: (queueName) => {
      if (!QUEUE_NAME_PATTERN.test(queueName)) throw new Error(`invalid queue name ${queueName}`);
      return `${keyPrefix}dualwrite:backfill:${queueName}`;
    },
    parseLegacy: (key) => legacy.exec(key)?.[1] ?? null,
    parseNew: (key) => {
      const match = fresh.exec(key);
      return match ? { workspaceId: match[1], jobId: match[2] } : null;
    },
    parseIndex: (key) => index.exec(key)?.[1] ?? null,
  };
}
