import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICE_COMMANDS } from '../../src/acl';
import { buildManifest, LUA_DIR, MANIFEST_PATH } from '../../src/scripts/manifest';

const scriptFiles = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
const body = (file: string) => readFileSync(join(LUA_DIR, file), 'utf8');

describe('lua/ and its manifest', () => {
  it('the committed manifest is what the lua/ folder builds (run npm run build when this fails)', () => {
    expect(JSON.parse(readFileSync(MANIFEST_PATH, 'utf8'))).toEqual(buildManifest());
  });

  it('holds the core scripts, each named <name>.v<N>.lua', () => {
    expect(scriptFiles.sort()).toEqual(
      expect.arrayContaining(['enqueue_dual.v3.lua', 'read_with_fallback.v4.lua', 'update_status_dual.v3.lua']),
    );
    for (const file of scriptFiles) expect(file).toMatch(/^[a-z][a-z0-9_]*\.v[1-9][0-9]*\.lua$/);
  });

  it.each(scriptFiles)('%s starts with its #!lua line and declares its keys, ARGV and replies', (file) => {
    const text = body(file);
    expect(text.split('\n')[0]).toMatch(/^#!lua( flags=no-writes)?$/);
    expect(text).toMatch(/^-- @keys \d+/m);
    expect(text).toMatch(/^-- KEYS\[/m);
    expect(text).toMatch(/^-- ARGV\[/m);
    expect(text).toMatch(/^-- Repl(y|ies)/m);
  });

  it('only scripts that never write are flagged no-writes, and they call no writing command', () => {
    const writing = /redis\.call\('(SET|HSET|RPUSH|LPUSH|ZADD|DEL|EXPIRE|PEXPIRE|PEXPIREAT|PERSIST|HDEL|LREM|ZREM)'/;
    for (const file of scriptFiles) {
      const text = body(file);
      const readOnly = text.startsWith('#!lua flags=no-writes');
      expect({ file, writes: writing.test(text) }).toEqual({ file, writes: !readOnly });
    }
  });

  it('no script names a key itself: every key a script touches comes from KEYS', () => {
    for (const file of scriptFiles) {
      // The first argument of redis.call after the command is the key; a literal there would be a
      // key the caller (and ACLs, and cluster slot checks) never saw.
      expect({ file, literalKeys: body(file).match(/redis\.call\('[A-Z]+', *'[^']*'/g) ?? [] }).toEqual({ file, literalKeys: [] });
    }
  });

  it('the documented service ACL grants every command the service scripts run', () => {
    const serviceScripts = [
      'enqueue_dual', 'enqueue_many_dual', 'update_status_dual', 'read_with_fallback', 'list_index_page', 'claim_job', 'recover_stalled',
    ];
    const service = scriptFiles.filter((file) => serviceScripts.includes(file.split('.')[0]));
    expect(service).toHaveLength(serviceScripts.length);
    const used = new Set(service.flatMap((file) => [...body(file).matchAll(/redis\.p?call\('([A-Z]+)'/g)].map((m) => m[1].toLowerCase())));

    expect([...used].filter((command) => !(SERVICE_COMMANDS as readonly string[]).includes(command))).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });
});

