/**
 * TLS for tests: a throwaway CA and certificates made with openssl, redis-server arguments that
 * serve TLS with them, and the one check of whether this machine can run the TLS tests at all.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { redisClusterSupport } from '../../src/testing';
import { describeWhen } from './requires';

/** The name on the server certificate. It has no IP address: reaching 127.0.0.1 needs a servername. */
export const SERVER_NAME = 'redis.test';

export interface Certificates {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** A CA that signed nothing here: trusting it alone must refuse the server. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** What an ioredis client of the tests passes as `tls` to reach the servers. */
  clientTls(): ConnectionOptions;
  remove(): void;
}

/** A CA, a server certificate for SERVER_NAME and a client certificate, in a temp dir (EC keys: quick). */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'rdw-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${run.error?.message ?? run.stderr}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, subject: string) =>
    openssl('req', '-x509', ...key, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`), '-days', '2', '-subj', subject,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const signed = (name: string, subject: string, extensions: string) => {
    openssl('req', ...key, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', subject);
    writeFileSync(file(`${name}.ext`), extensions);
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-out', file(`${name}.crt`), '-days', '2', '-extfile', file(`${name}.ext`));
  };
  try {
    ca('ca', '/CN=redis-dual-write test CA');
    ca('other-ca', '/CN=another test CA');
    signed('server', `/CN=${SERVER_NAME}`, `basicConstraints=CA:FALSE\nsubjectAltName=DNS:${SERVER_NAME}\n`);
    signed('client', '/CN=operator', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const certificates: Certificates = {
    dir,
    ca: file('ca.crt'),
    otherCa: file('other-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    clientTls: () => ({
      ca: readFileSync(certificates.ca),
      cert: readFileSync(certificates.clientCert),
      key: readFileSync(certificates.clientKey),
      servername: SERVER_NAME,
    }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  return certificates;
}

/**
 * redis-server arguments that serve TLS with these certificates and require a client certificate
 * from the CA (Redis' default); the caller adds --tls-port, and sets or closes the cleartext port.
 */
export function tlsServerArgs(certificates: Certificates): string[] {
  return [
    '--tls-cert-file', certificates.serverCert,
    '--tls-key-file', certificates.serverKey,
    '--tls-ca-cert-file', certificates.ca,
    '--tls-auth-clients', 'yes',
  ];
}

export type TlsSupport = { supported: true } | { supported: false; reason: string };

let support: TlsSupport | undefined;

/**
 * Whether this machine can run the TLS tests: openssl, a redis-server 7+ on PATH, and that server
 * built with TLS. Decided once, synchronously (a test file decides at load what to run), by
 * starting the server with a TLS port and answering a PING over TLS in a child process.
 */
export function tlsSupport(): TlsSupport {
  support ??= probe();
  return support;
}

function probe(): TlsSupport {
  const server = redisClusterSupport();
  if (!server.supported) return { supported: false, reason: server.reason };
  const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (openssl.status !== 0) return { supported: false, reason: 'no openssl on PATH to make test certificates' };
  const certificates = makeCertificates();
  try {
    const run = spawnSync(process.execPath, ['-e', PROBE], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, PROBE_BINARY: server.binary, PROBE_DIR: certificates.dir, PROBE_SERVER_NAME: SERVER_NAME },
    });
    if (run.stdout.trim() === 'ok') return { supported: true };
    return { supported: false, reason: `redis-server at ${server.binary} did not serve TLS: ${(run.stdout + run.stderr).trim().slice(0, 300)}` };
  } finally {
    certificates.remove();
  }
}

/** Starts the server on a free TLS port (no cleartext port), PINGs it over TLS, prints ok or why not. */
const PROBE = `
const { spawn } = require('node:child_process');
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');
const path = require('node:path');
const dir = process.env.PROBE_DIR;
const file = (name) => path.join(dir, name);
const port = () => new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
(async () => {
  const tlsPort = await port();
  const child = spawn(process.env.PROBE_BINARY, ['--port', '0', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--tls-port', String(tlsPort), '--tls-cert-file', file('server.crt'), '--tls-key-file', file('server.key'),
    '--tls-ca-cert-file', file('ca.crt')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const finish = (text) => { console.log(text); child.kill('SIGKILL'); process.exit(0); };
  child.stdout.on('data', (chunk) => {
    output += chunk;
    if (!output.includes('Ready to accept connections')) return;
    const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: process.env.PROBE_SERVER_NAME,
      ca: fs.readFileSync(file('ca.crt')), cert: fs.readFileSync(file('client.crt')), key: fs.readFileSync(file('client.key')) },
      () => socket.write('PING\\r\\n'));
    socket.on('data', (data) => finish(String(data).startsWith('+PONG') ? 'ok' : 'PING answered ' + JSON.stringify(String(data))));
    socket.on('error', (error) => finish('TLS PING failed: ' + error.message));
  });
  child.stderr.on('data', (chunk) => (output += chunk));
  child.on('exit', (code) => finish('redis-server exited with code ' + code + ': ' + output.trim().split('\\n').slice(-3).join(' ')));
  setTimeout(() => finish('no TLS answer within 10 s: ' + output.trim().split('\\n').slice(-3).join(' ')), 10000);
})();
`;

/** The TLS tests, where this machine's server binary was built with TLS (see describeWhen). */
export function describeTls(name: string, tests: () => void): void {
  describeWhen(tlsSupport(), `TLS: ${name}`, 'install a redis-server built with TLS (Debian\'s is) to run them', tests);
}
