// Gets one server of the matrix into the cache folder, or finds it there from an earlier run:
// <cache>/<id>/<debian version>[-tls]/bin/<program>, with server.json written last as the mark
// of a finished build.
const { spawnSync } = require('node:child_process');
const { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } = require('node:fs');
const { availableParallelism } = require('node:os');
const { delimiter, join } = require('node:path');

/** Whether builds can have TLS: the OpenSSL headers from libssl-dev. */
const TLS_AVAILABLE = existsSync('/usr/include/openssl/ssl.h');

/**
 * Where `server` runs from: { bin, version, origin, tls, reused }. `apt` is a PrivateApt whose lists
 * are read, or undefined when Debian's archive cannot be reached, for `archiveProblem` (then only
 * earlier builds serve).
 */
function obtain(server, { cache, apt, archiveProblem, log }) {
  if (server.kind === 'path') return onPath();
  const home = join(cache, server.id);
  if (!apt) {
    const earlier = newestBuild(home);
    if (!earlier) throw new Error(`${archiveProblem}, and no earlier build is in ${home}`);
    log(`${server.id}: Debian's archive cannot be reached: reusing the build of ${earlier.debianVersion} from ${earlier.builtAt}`);
    return { ...earlier, reused: true };
  }
  const version = server.kind === 'binary' ? apt.binaryVersion(server.pkg, server.suite) : apt.sourceVersion(server.pkg, server.suite);
  const tls = server.kind === 'source' ? TLS_AVAILABLE : undefined;
  const dir = join(home, `${version.replace(/^\d+:/, '')}${tls ? '-tls' : ''}`);
  const done = readRecord(dir);
  if (done) return { ...done, reused: true };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  if (server.kind === 'binary') unpack(server, apt, dir);
  else build(server, apt, dir, tls, log);
  const bin = join(dir, 'bin', server.program);
  const record = {
    bin,
    version: serverBanner(bin),
    origin: `${server.pkg} ${version} (${server.suite})`,
    debianVersion: version,
    tls,
    builtAt: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  writeFileSync(join(dir, 'server.json'), `${JSON.stringify(record, null, 2)}\n`);
  return { ...record, reused: false };
}

function onPath() {
  const dir = (process.env.PATH ?? '').split(delimiter).find((d) => existsSync(join(d, 'redis-server')));
  if (!dir) throw new Error('no redis-server on PATH');
  const bin = join(dir, 'redis-server');
  return { bin, version: serverBanner(bin), origin: `redis-server on PATH (${bin})`, tls: undefined, reused: true };
}

/** dpkg -x the Debian build into dir/root, then link bin/<program> to its binary by a relative name. */
function unpack(server, apt, dir) {
  const download = join(dir, 'download');
  mkdirSync(download);
  const deb = apt.downloadBinary(server.pkg, server.suite, download);
  run('dpkg', ['-x', deb, join(dir, 'root')], dir, `dpkg -x ${deb}`);
  mkdirSync(join(dir, 'bin'));
  // A link, not a copy and not a resolved path: the binary reads its mode from the name it is started by.
  symlinkSync(join('..', 'root', 'usr', 'bin', server.file), join(dir, 'bin', server.program));
  rmSync(download, { recursive: true, force: true });
}

/** The upstream tarball, `make` with TLS where the machine has libssl-dev, and only the server binary kept. */
function build(server, apt, dir, tls, log) {
  const download = join(dir, 'download');
  const source = join(dir, 'source');
  mkdirSync(download);
  mkdirSync(source);
  const tarball = apt.downloadSourceTarball(server.pkg, server.suite, download);
  run('tar', ['-xf', tarball, '-C', source, '--strip-components=1'], dir, `unpacking ${tarball}`);
  const jobs = String(availableParallelism());
  log(`${server.id}: building ${server.pkg} from ${server.suite} (make -j${jobs}, TLS ${tls ? 'on' : 'off: no libssl-dev'}); the log is ${join(dir, 'build.log')}`);
  const make = spawnSync('make', ['-j', jobs, `BUILD_TLS=${tls ? 'yes' : 'no'}`, 'USE_SYSTEMD=no'], {
    cwd: source,
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
  });
  writeFileSync(join(dir, 'build.log'), `${make.stdout ?? ''}${make.stderr ?? ''}`);
  if (make.status !== 0) {
    throw new Error(`make failed (exit ${make.status}${make.error ? `, ${make.error.message}` : ''}): see ${join(dir, 'build.log')}`);
  }
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(source, 'src', server.program), join(dir, 'bin', server.program));
  rmSync(source, { recursive: true, force: true });
  rmSync(download, { recursive: true, force: true });
}

/** "Valkey 8.0.1" from "Valkey server v=8.0.1 sha=...": what the binary itself says it is. */
function serverBanner(bin) {
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  const match = /^(\S+) server v=(\S+)/.exec(version.stdout ?? '');
  if (!match) {
    throw new Error(`${bin} --version did not answer as a server: ${`${version.stdout ?? ''}${version.stderr ?? ''}${version.error?.message ?? ''}`.trim()}`);
  }
  return `${match[1]} ${match[2]}`;
}

function readRecord(dir) {
  try {
    const record = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8'));
    return existsSync(record.bin) ? record : undefined;
  } catch {
    return undefined;
  }
}

function newestBuild(home) {
  if (!existsSync(home)) return undefined;
  return readdirSync(home)
    .map((entry) => readRecord(join(home, entry)))
    .filter(Boolean)
    .sort((a, b) => (a.builtAt < b.builtAt ? 1 : -1))[0];
}

function run(command, args, cwd, what) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${what} failed: ${`${result.stderr ?? ''}${result.error?.message ?? ''}`.trim()}`);
}

module.exports = { obtain, TLS_AVAILABLE };
