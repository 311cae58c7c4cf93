import { ValidationError } from '../errors';
import { ID_PATTERN, JOB_ID_PATTERN, type KeyLayout } from '../keys';
import { keyTemplate, type KeyTemplate } from './key-template';

/**
 * The key layout read backwards: SCAN patterns for each kind of key, and parsers that take a
 * key apart again. A key whose parts fail the id whitelist is not parsed: its id never becomes part
 * of another key.
 */
export interface MigrationLayout extends KeyLayout {
  legacyPattern: string;
  newPattern: string;
  indexPattern: string;
  /** The jobId of a legacy key, or null when the id part is not a valid id. */
  parseLegacy(key: string): string | null;
  parseNew(key: string): { workspaceId: string; jobId: string } | null;
  parseIndex(key: string): string | null;
}

/**
 * Any layout (the default one, the cluster preset, or the caller's builders, already resolved)
 * read backwards. The keys a walk scans must not come up in another kind's scan: a new job key in
 * the legacy scan would be reported as a bad legacy record.
 */
export function migrationLayout(keys: KeyLayout, queueName: string): MigrationLayout {
  const legacy = keyTemplate('keys.legacyJob', keys.legacyJob, [JOB_ID_PATTERN]);
  const fresh = keyTemplate('keys.newJob', keys.newJob, [ID_PATTERN, JOB_ID_PATTERN]);
  const index = keyTemplate('keys.workspaceIndex', keys.workspaceIndex, [ID_PATTERN]);
  const [workspaceId, jobId] = ['acme', 'job_1'];
  const overlaps: [string, KeyTemplate, string, string][] = [
    ['legacyJob', legacy, 'newJob', keys.newJob(workspaceId, jobId)],
    ['legacyJob', legacy, 'claims', keys.claims(queueName)],
    ['newJob', fresh, 'legacyJob', keys.legacyJob(jobId)],
    ['newJob', fresh, 'claims', keys.claims(queueName)],
    ['workspaceIndex', index, 'processing', keys.processing(queueName)],
  ];
  for (const [kind, template, other, key] of overlaps) {
    if (template.matches(key)) {
      throw new ValidationError(
        `keys.${kind}`,
        'overlap',
        `the SCAN pattern of its keys (${template.pattern}) also matches ${other} keys such as ${key}, so a walk ` +
          'would take one kind of record for the other: give the two kinds different fixed text',
      );
    }
  }
  return {
    ...keys,
    legacyPattern: legacy.pattern,
    newPattern: fresh.pattern,
    indexPattern: index.pattern,
    parseLegacy: (key) => legacy.parse(key)?.[0] ?? null,
    parseNew: (key) => {
      const ids = fresh.parse(key);
      return ids ? { workspaceId: ids[0], jobId: ids[1] } : null;
    },
    parseIndex: (key) => index.parse(key)?.[0] ?? null,
  };
}
