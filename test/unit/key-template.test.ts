/**
 * Reading a key layout backwards, as backfill, verify and cleanup must: the SCAN pattern and the ids
 * of a key, for the default layout, the cluster preset and the caller's own builders.
 */
import { clusterLayout, defaultLayout, ID_PATTERN, JOB_ID_PATTERN } from '../../src';
import { keyTemplate } from '../../src/migrate/key-template';
import { migrationLayout } from '../../src/migrate/layout';

describe('keyTemplate', () => {
  it('reads the default layout back into the patterns the walks always used', () => {
    const keys = migrationLayout(defaultLayout('p:'), 'default');

    expect([keys.legacyPattern, keys.newPattern, keys.indexPattern]).toEqual(['p:job:*', 'p:ws:*:job:*', 'p:ws:*:jobs']);
    expect(keys.parseLegacy('p:job:abc')).toBe('abc');
    expect(keys.parseNew('p:ws:acme:job:abc')).toEqual({ workspaceId: 'acme', jobId: 'abc' });
    expect(keys.parseIndex('p:ws:acme:jobs')).toBe('acme');
    expect(keys.checkpoint('default')).toBe('p:dualwrite:backfill:default');
  });

  it('reads the cluster preset back, braces and all, and refuses keys that do not fit', () => {
    const keys = migrationLayout(clusterLayout('orders'), 'orders');

    expect([keys.legacyPattern, keys.newPattern, keys.indexPattern]).toEqual([
      '{orders}:job:*',
      '{orders}:ws:*:job:*',
      '{orders}:ws:*:jobs',
    ]);
    expect(keys.parseNew('{orders}:ws:acme:job:j1')).toEqual({ workspaceId: 'acme', jobId: 'j1' });
    expect(keys.parseLegacy('{orders}:job:a:b')).toBeNull(); // ':' is no id character
    expect(keys.parseLegacy('{other}:job:j1')).toBeNull();
    // Every key the package writes for a queue sits behind its tag: one slot, one ACL pattern.
    expect(keys.checkpoint('orders')).toBe('{orders}:dualwrite:backfill:orders');
    expect(keys.unsupported('orders')).toBe('{orders}:queue:orders:unsupported');
  });

  it('reads job ids with dots, as many legacy stores write them', () => {
    const keys = migrationLayout(defaultLayout(''), 'default');

    expect(keys.parseLegacy('job:order.1042')).toBe('order.1042');
    expect(keys.parseNew('ws:acme:job:order.1042')).toEqual({ workspaceId: 'acme', jobId: 'order.1042' });
    expect(keys.parseNew('ws:ac.me:job:order.1042')).toBeNull(); // a workspace id takes no dot
  });

  it('finds ids in any order and escapes glob characters of the fixed text', () => {
    const template = keyTemplate('keys.newJob', (workspaceId, jobId) => `jobs[${jobId}]@${workspaceId}*`, [ID_PATTERN, JOB_ID_PATTERN]);

    expect(template.pattern).toBe('jobs\\[*\\]@*\\*');
    expect(template.parse('jobs[j-1]@acme*')).toEqual(['acme', 'j-1']);
    expect(template.matches('jobs[x]@y*')).toBe(true);
  });

  const one = [JOB_ID_PATTERN];
  const two = [ID_PATTERN, JOB_ID_PATTERN];
  it.each<[string, (...ids: string[]) => string, RegExp[], string]>([
    ['an id changed on its way into the key', (jobId) => `job:${jobId.toLowerCase()}`, one, 'holds id Pr0beQx7Aa nowhere'],
    ['an id put in twice', (jobId) => `job:${jobId}:${jobId}`, one, 'twice'],
    ['two ids with only id characters between them', (workspaceId, jobId) => `ws-${workspaceId}-${jobId}`, two, 'nothing but id characters'],
    ['two ids with only a dot between them, which a job id may hold', (workspaceId, jobId) => `${workspaceId}.${jobId}`, two, 'nothing but id characters'],
    ['fixed text that depends on the id', (jobId) => (jobId.length > 3 ? `job:${jobId}` : `j:${jobId}`), one, 'for ids'],
  ])('refuses %s', (_, build, ids, reason) => {
    expect(() => keyTemplate('keys.x', build, ids)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'keys.x', rule: 'template' }));
    expect(() => keyTemplate('keys.x', build, ids)).toThrow(reason);
  });
});
