/**
 * The ACL rules the README and the runbook print are the ones the package exports: an operator
 * copies them from the docs, so the docs must not fall behind the lists the capture tests check.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrationAclRules, serviceAclRules } from '../../src';

const ROOT = join(__dirname, '..', '..');

/** Every `ACL SETUSER <user> on >secret ...` block of a document, as its user and its rules. */
function aclBlocks(file: string): { user: string; rules: string[] }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/ACL SETUSER (\w+) on >secret ((?:.|\n)*?)\n *```/g)].map((match) => ({
    user: match[1],
    rules: match[2].split(/\s+/).filter(Boolean),
  }));
}

describe('the ACL rules in the docs', () => {
  it('README: the service and migration blocks are serviceAclRules() and migrationAclRules()', () => {
    expect(aclBlocks('README.md')).toEqual([
      { user: 'service', rules: serviceAclRules() },
      { user: 'migration', rules: migrationAclRules() },
    ]);
  });

  it('docs/MIGRATION.md: the tools user block is migrationAclRules()', () => {
    expect(aclBlocks('docs/MIGRATION.md')).toEqual([{ user: 'migration', rules: migrationAclRules() }]);
  });
});
