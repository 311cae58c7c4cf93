/**
 * Reading a key layout backwards, as backfill, verify and cleanup must: the SCAN pattern and the ids
 * of a key, for the default layout, the cluster preset and the caller's own builders.
 */
import { clusterLayout, defaultLayout } from '../../src';
import { keyTemplate } from '../../src/migrate/key-template';
import { migrationLayout } from '../../src/migrate/layout';

describe('keyTemplate', () => {
  it('reads the default layout back into the patterns the walks always used', () => {
    const keys = migrationLayout(defaultLayout('p:'), 'p:', 'default');

    expect([keys.legacyPattern, keys.newPattern, keys.indexPattern]).toEqual(['p:job:*', 'p:ws:*:job:*', 'p:ws:*:jobs']);
    expect(keys.parseLegacy('p:job:abc')).toBe('abc');
    expect(keys.parseNew('p:ws:acme:job:abc')).toEqual({ workspaceId: 'acme', jobId: 'abc' });
    expect(keys.parseIndex('p:ws:acme:jobs')).toBe('acme');
    expect(keys.checkpoint('default')).toBe('p:dualwrite:backfill:default');
  });

  it('reads the cluster preset back, braces and all, and refuses keys that do not fit', () => {
    const keys = migrationLayout(clusterLayout('orders'), '', 'orders');

    expect([keys.legacyPattern, keys.newPattern, keys.indexPattern]).toEqual([
      '{orders}:job:*',
      '{orders}:ws:*:job:*',
      '{orders}:ws:*:jobs',
    ]);
    expect(keys.parseNew('{orders}:ws:acme:job:j1')).toEqual({ workspaceId: 'acme', jobId: 'j1' });
    expect(keys.parseLegacy('{orders}:job:a:b')).toBeNull(); // ':' is no id character
    expect(keys.parseLegacy('{other}:job:j1')).toBeNull();
  });

  it('finds ids in any order and escapes glob characters of the fixed text', () => {
    const template = keyTemplate('keys.newJob', (workspaceId, jobId) => `jobs[${jobId}]@${workspaceId}*`, 2);

    expect(template.pattern).toBe('jobs\\[*\\]@*\\*');
    expect(template.parse('jobs[j-1]@acme*')).toEqual(['acme', 'j-1']);
    expect(template.matches('jobs[x]@y*')).toBe(true);
  });

  it.each<[string, (...ids: string[]) => string, 1 | 2, string]>([
    ['an id changed on its way into the key', (jobId) => `job:${jobId.toLowerCase()}`, 1, 'holds id Pr0beQx7Aa nowhere'],
    ['an id put in twice', (jobId) => `job:${jobId}:${jobId}`, 1, 'twice'],
    ['two ids with only id characters between them', (workspaceId, jobId) => `ws-${workspaceId}-${jobId}`, 2, 'nothing but id characters'],
    ['fixed text that depends on the id', (jobId) => (jobId.length > 3 ? `job:${jobId}` : `j:${jobId}`), 1, 'for ids'],
  ])('refuses %s', (_, build, arity, reason) => {
    expect(() => keyTemplate('keys.x', build, arity)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'keys.x', rule: 'template' }));
    expect(() => keyTemplate('keys.x', build, arity)).toThrow(reason);
  });
});
