/** What the connection flags mean, decided before anything is sent: pure functions, no Redis needed. */
import { commandLineShown, maskUrl, targetFor } from '../../src/cli/target';

describe('targetFor', () => {
  it('decides TLS by the scheme alone, in any case, and keeps the password out of what it shows', () => {
    const lower = targetFor({ url: 'rediss://ops:s3cret@10.0.0.7:6380/2' }, {});
    const upper = targetFor({ url: 'REDISS://10.0.0.7' }, {});
    const plain = targetFor({}, { REDIS_URL: 'redis://:s3cret@10.0.0.7:6390' });

    expect(lower).toMatchObject({
      kind: 'server',
      endpoints: [{ host: '10.0.0.7', port: 6380 }],
      username: 'ops',
      password: 's3cret',
      db: 2,
      tls: {},
      shown: 'rediss://ops:***@10.0.0.7:6380/2',
      connectTimeoutMs: 5_000,
      commandTimeoutMs: 10_000,
    });
    expect(upper).toMatchObject({ tls: {}, shown: 'rediss://10.0.0.7:6379' });
    expect(plain).toMatchObject({ password: 's3cret', shown: 'redis://:***@10.0.0.7:6390' });
    expect(plain.tls).toBeUndefined();
  });

  it('gives bare cluster seeds the scheme of the others, and one set of credentials for every node', () => {
    const target = targetFor({ cluster: 'rediss://ops:pw@10.0.0.1:6380,10.0.0.2:6380', 'tls-servername': 'redis.internal' }, {});

    expect(target).toMatchObject({
      kind: 'cluster',
      endpoints: [{ host: '10.0.0.1', port: 6380 }, { host: '10.0.0.2', port: 6380 }],
      username: 'ops',
      password: 'pw',
      tls: { servername: 'redis.internal' },
      shown: 'the cluster seeded by 10.0.0.1:6380,10.0.0.2:6380',
    });
  });

  it.each([
    [{ 'connect-timeout': '0' }, '--connect-timeout must be a whole number of milliseconds'],
    [{ 'command-timeout': 'soon' }, '--command-timeout must be a whole number of milliseconds'],
    [{ url: 'http://10.0.0.7' }, '--url: http://10.0.0.7 is not a redis:// or rediss:// URL'],
    [{ url: 'redis://:pw@10.0.0.7/x' }, '--url: the path of redis://:***@10.0.0.7/x must be a database number'],
    [{ cluster: 'rediss://10.0.0.1:6380/3' }, 'a Redis Cluster has only database 0'],
    [{ url: 'redis://10.0.0.7', 'tls-servername': 'x' }, '--tls-servername is for TLS'],
    [{ url: 'ops:s3cret@10.0.0.7:6379' }, '--url: ***@10.0.0.7:6379 is not a redis:// or rediss:// URL'],
    [{ cluster: 'ops:s3cret@10.0.0.7:6379' }, '--cluster: give credentials in a URL, redis://user:password@host:port'],
  ])('refuses %j', (flags, message) => {
    expect(() => targetFor(flags, {})).toThrow(message);
    expect(() => targetFor(flags, {})).not.toThrow(/s3cret/);
  });
});

describe('commandLineShown', () => {
  it('hides the password of --url, --url=, and every --cluster seed, and says which flags hid one', () => {
    const separate = commandLineShown(['backfill', '--url', 'redis://ops:s3cret@h:1', '--stage', 'live']);
    const inline = commandLineShown(['verify', '--url=rediss://:p@ss@h:1/0']);
    const cluster = commandLineShown(['verify', '--cluster', 'rediss://ops:s3cret@h:1,h:2,rediss://ops:s3cret@h:3']);
    const none = commandLineShown(['verify', '--url', 'redis://h:1', '--queue', 'redis://not:a@url']);

    expect(separate.words).toEqual(['backfill', '--url', 'redis://ops:***@h:1', '--stage', 'live']);
    expect(inline.words).toEqual(['verify', '--url=rediss://:***@h:1/0']);
    expect(cluster.words).toEqual(['verify', '--cluster', 'rediss://ops:***@h:1,h:2,rediss://ops:***@h:3']);
    expect(none.words).toEqual(['verify', '--url', 'redis://h:1', '--queue', 'redis://not:a@url']);
    expect([separate.masked, cluster.masked, none.masked]).toEqual([new Set(['--url']), new Set(['--cluster']), new Set()]);
  });

  it('masks a password the URL parser cannot read, where a password would be', () => {
    expect(maskUrl('redis://ops:pa/ss@h:1')).toBe('redis://ops:***@h:1');
  });
});
