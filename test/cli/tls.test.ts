/**
 * TLS across --url and --cluster, against real TLS redis-servers with certificates made here: a
 * rediss:// target is reached over TLS or not at all, the CA and server name are checked, client
 * certificates are offered, and what the command cannot secure is refused before anything is sent.
 */
import Redis, { Cluster } from 'ioredis';
import { startRedis, startRedisCluster, type RedisClusterHandle, type RedisHandle } from '../../src/testing';
import { freePort } from '../../src/testing/server-process';
import { loadScripts } from '../../src/scripts/manifest';
import { record } from '../migrate/fixtures';
import { cli } from '../support/cli';
import { clusterState } from '../support/cluster';
import { useRedis } from '../support/redis';
import { startSilentServer, type SilentServer } from '../support/silent-server';
import { hash, jobFields, redisState, zset } from '../support/state';
import { describeTls, makeCertificates, SERVER_NAME, tlsServerArgs, type Certificates } from '../support/tls';

const SHAS = [...loadScripts().values()].map((script) => script.sha1);
/** A TLS ClientHello starts with a handshake record: content type 22, version 3.x. */
const TLS_HANDSHAKE = Buffer.from([0x16, 0x03]);

describeTls('TLS to one server that has no cleartext port and asks for client certificates', () => {
  const plain = useRedis();
  let certificates: Certificates;
  let server: RedisHandle;
  let tlsPort: number;
  let admin: Redis;
  let silent: SilentServer;
  beforeAll(async () => {
    certificates = makeCertificates();
    tlsPort = await freePort();
    server = await startRedis({ via: 'binary', serverArgs: [...tlsServerArgs(certificates), '--tls-port', String(tlsPort), '--port', '0'] });
    admin = new Redis({ host: '127.0.0.1', port: tlsPort, tls: certificates.clientTls() });
    silent = await startSilentServer();
  });
  beforeEach(async () => {
    await admin.flushall();
    await admin.script('FLUSH');
  });
  afterAll(async () => {
    admin?.disconnect();
    await silent?.close();
    await server?.stop();
    certificates?.remove();
  });

  const url = () => `rediss://127.0.0.1:${tlsPort}`;
  const trust = () => ['--tls-ca', certificates.ca, '--tls-servername', SERVER_NAME];
  const clientCertificate = () => ['--tls-cert', certificates.clientCert, '--tls-key', certificates.clientKey];

  it('scripts load, backfill and verify work over TLS with a CA file, a server name and a client certificate', async () => {
    const job = record('j1', 'acme');
    await admin.hset('job:j1', jobFields(job));

    const load = await cli(['scripts', 'load', '--url', url(), ...trust(), ...clientCertificate()]);
    const backfill = await cli(['backfill', '--stage', 'live', '--json', '--url', url(), ...trust(), ...clientCertificate()]);
    const verify = await cli(['verify', '--stage', 'live', '--url', url(), ...trust(), ...clientCertificate()]);

    expect([load.code, backfill.code, verify.code]).toEqual([0, 0, 0]);
    expect(JSON.parse(backfill.stdout)).toMatchObject({ completed: true, results: { copied: 1 } });
    expect(verify.stdout).toContain('verify in stage live: clean');
    expect(await admin.script('EXISTS', ...SHAS)).toEqual(SHAS.map(() => 1));
    expect(await redisState(admin)).toEqual({
      'job:j1': hash(jobFields(job)),
      'ws:acme:job:j1': hash(jobFields(job)),
      'ws:acme:jobs': zset(['j1', job.createdAt]),
    });
  });

  it.each([
    ['a server certificate --tls-ca did not sign', () => ['--tls-ca', certificates.otherCa, '--tls-servername', SERVER_NAME, ...clientCertificate()], /self[- ]signed|unable to (get|verify)/i],
    ['a certificate without the name the server is reached by', () => ['--tls-ca', certificates.ca, ...clientCertificate()], /does not match certificate's altnames/],
    ['no client certificate where the server asks for one', () => trust(), /certificate required|ECONNRESET|socket hang up|Connection is closed/i],
  ])('refuses %s: exit 3, TLS failed, nothing done', async (_case, flags, reason) => {
    await admin.hset('job:j1', jobFields(record('j1', 'acme')));
    const before = await redisState(admin);

    const run = await cli(['backfill', '--stage', 'live', '--url', url(), ...flags(), '--connect-timeout', '2000']);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/TLS with rediss:\/\/127\.0\.0\.1:\d+ failed: |did not answer within/);
    expect(run.stderr).toMatch(reason);
    expect(await redisState(admin)).toEqual(before);
  });

  it('never falls back to cleartext: the first bytes are a TLS handshake, the password is never sent', async () => {
    const sentBy = async (url: string) => {
      const from = silent.received().length;
      const run = await cli(['scripts', 'check', '--url', url, '--connect-timeout', '500']);
      return { code: run.code, sent: silent.received().subarray(from) };
    };

    const lower = await sentBy(`rediss://:hunter2-secret@127.0.0.1:${silent.port}`);
    const upper = await sentBy(`REDISS://:hunter2-secret@127.0.0.1:${silent.port}`);
    // (one after the other: each run's bytes are told apart by when they came)

    for (const { code, sent } of [lower, upper]) {
      expect(code).toBe(3);
      expect(sent.subarray(0, 2)).toEqual(TLS_HANDSHAKE);
      expect(sent.includes('hunter2-secret')).toBe(false);
      expect(sent.toString('latin1').toLowerCase()).not.toContain('auth');
    }
  });

  it('rediss:// to a cleartext Redis fails (exit 3) although that Redis would answer in cleartext', async () => {
    await plain.redis.config('RESETSTAT');

    const run = await cli(['scripts', 'check', '--url', `rediss://:hunter2-secret@127.0.0.1:${new URL(plain.handle.url).port}`, '--connect-timeout', '500']);

    expect(run.code).toBe(3);
    expect(run.stderr).toContain('did not answer within 500 ms (--connect-timeout): the TLS handshake did not complete');
    expect(String(await plain.redis.info('commandstats'))).not.toContain('cmdstat_auth');
    expect(await redisState(plain.redis)).toEqual({});
  });

  it.each([
    ['a TLS option without TLS', (s: SilentServer) => ['--url', s.url, '--tls-ca', certificates.ca], '--tls-ca is for TLS, but the target is not rediss://'],
    ['a seed list mixing redis:// and rediss://', (s: SilentServer) => ['--cluster', `rediss://127.0.0.1:${s.port},redis://127.0.0.1:${s.port}`], '--cluster mixes redis:// and rediss:// seeds'],
    ['credentials on a cleartext seed beside a TLS one', (s: SilentServer) => ['--cluster', `redis://ops:pw@127.0.0.1:${s.port},rediss://127.0.0.1:${s.port}`], '--cluster mixes redis:// and rediss:// seeds'],
    ['seeds that disagree on the user', (s: SilentServer) => ['--cluster', `rediss://a:pw@127.0.0.1:${s.port},rediss://b:pw@127.0.0.1:${s.port}`], 'seeds carry different credentials'],
    ['a client certificate without its key', (s: SilentServer) => ['--url', `rediss://127.0.0.1:${s.port}`, '--tls-cert', certificates.clientCert], '--tls-cert and --tls-key go together'],
    ['a CA file that cannot be read', (s: SilentServer) => ['--url', `rediss://127.0.0.1:${s.port}`, '--tls-ca', '/no/such/ca.pem'], '--tls-ca: cannot read /no/such/ca.pem (ENOENT)'],
    ['options hidden in the URL', (s: SilentServer) => ['--url', `rediss://127.0.0.1:${s.port}/?rejectUnauthorized=false`], 'has query parameters'],
  ])('refuses %s: exit 2, nothing contacted', async (_case, flags, message) => {
    const before = silent.connections();

    const run = await cli(['scripts', 'check', ...flags(silent)]);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('pw@');
    expect(silent.connections()).toBe(before);
  });
});

describeTls('TLS to a Redis Cluster: tls-port on every node, --tls-cluster and --tls-replication', () => {
  let certificates: Certificates;
  let handle: RedisClusterHandle;
  let cluster: Cluster;
  /** Each node's TLS port, by its cleartext port (closed once the cluster is up). */
  const tlsPortOf = new Map<number, number>();
  const secret = 'cluster-secret-never-printed';
  beforeAll(async () => {
    certificates = makeCertificates();
    // One master and its replica: enough for TLS between nodes (bus and replication), and quick to start.
    handle = await startRedisCluster({
      masters: 1,
      serverArgs: [...tlsServerArgs(certificates), '--tls-cluster', 'yes', '--tls-replication', 'yes'],
      nodeServerArgs: async ({ port }) => {
        const tlsPort = await freePort();
        tlsPortOf.set(port, tlsPort);
        return ['--tls-port', String(tlsPort)];
      },
    });
    // From now on only TLS reaches the nodes: a client that fell back to cleartext would find nothing.
    for (const node of handle.nodes) {
      const direct = new Redis({ host: node.host, port: tlsPortOf.get(node.port)!, tls: certificates.clientTls() });
      await direct.call('ACL', 'SETUSER', 'ops', 'on', `>${secret}`, '~*', '&*', '+@all');
      await direct.config('SET', 'port', '0');
      direct.disconnect();
    }
    cluster = new Cluster(tlsSeeds(), { redisOptions: { tls: certificates.clientTls() } });
    cluster.on('error', () => {});
    await cluster.ping();
  }, 60_000);
  afterAll(async () => {
    cluster?.disconnect();
    await handle?.stop();
    certificates?.remove();
  });

  const tlsSeeds = () => handle.nodes.map((node) => ({ host: node.host, port: tlsPortOf.get(node.port)! }));
  const seeds = (userinfo = '') => ['--cluster', tlsSeeds().map(({ host, port }) => `rediss://${userinfo}${host}:${port}`).join(',')];
  const tls = () => ['--tls-ca', certificates.ca, '--tls-servername', SERVER_NAME, '--tls-cert', certificates.clientCert, '--tls-key', certificates.clientKey];

  it('scripts load reaches both nodes on their TLS ports; backfill and verify --tag work over TLS as an ACL user', async () => {
    const job = record('j1', 'acme');
    await cluster.hset('{mail}:job:j1', jobFields(job));

    const load = await cli(['scripts', 'load', '--json', ...seeds(`ops:${secret}@`), ...tls()]);
    const backfill = await cli(['backfill', '--stage', 'live', '--queue', 'mail', '--tag', 'mail', '--json', ...seeds(`ops:${secret}@`), ...tls()]);
    const verify = await cli(['verify', '--stage', 'live', '--queue', 'mail', '--tag', 'mail', ...seeds(`ops:${secret}@`), ...tls()]);

    expect([load.code, backfill.code, verify.code]).toEqual([0, 0, 0]);
    const rows = JSON.parse(load.stdout).scripts as { node: string; role: string }[];
    expect([...new Set(rows.map((row) => row.node))].sort()).toEqual([...tlsPortOf.values()].map((port) => `127.0.0.1:${port}`).sort());
    expect([...new Set(rows.map((row) => row.role))].sort()).toEqual(['master', 'replica']);
    expect(JSON.parse(backfill.stdout)).toMatchObject({ completed: true, results: { copied: 1 } });
    expect(verify.stdout).toContain('verify in stage live: clean');
    expect(await clusterState(cluster)).toEqual({
      '{mail}:job:j1': hash(jobFields(job)),
      '{mail}:ws:acme:job:j1': hash(jobFields(job)),
      '{mail}:ws:acme:jobs': zset(['j1', job.createdAt]),
    });
    for (const run of [load, backfill, verify]) expect(run.stdout + run.stderr).not.toContain(secret);
  });

  it('refuses a CA that did not sign the nodes, a wrong password, and cleartext seeds: exit 3 each', async () => {
    const wrongCa = await cli(['scripts', 'check', ...seeds(), '--tls-ca', certificates.otherCa, '--tls-servername', SERVER_NAME,
      '--tls-cert', certificates.clientCert, '--tls-key', certificates.clientKey]);
    const wrongPassword = await cli(['scripts', 'check', ...seeds('ops:not-the-secret@'), ...tls()]);
    const cleartext = await cli(['scripts', 'check', '--cluster', tlsSeeds().map(({ host, port }) => `${host}:${port}`).join(','), '--connect-timeout', '2000']);

    expect([wrongCa.code, wrongPassword.code, cleartext.code]).toEqual([3, 3, 3]);
    expect(wrongCa.stderr).toMatch(/TLS with 127\.0\.0\.1:\d+ failed: .*(self[- ]signed|unable to (get|verify))/i);
    expect(wrongPassword.stderr).toContain('authentication failed at the cluster seeded by');
    expect(wrongPassword.stderr).toContain('WRONGPASS');
    expect(wrongPassword.stderr).not.toContain('not-the-secret');
    expect(cleartext.stderr).toContain('no seed gave its slot map (last error: Connection is closed.); if the nodes speak only TLS, name the seeds rediss://');
  });
});
