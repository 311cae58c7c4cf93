// The servers the suite is run on, and how each one is had on a Debian machine with no network but
// Debian's archive. Suites are named, not versions: sid moves, and the next run picks up its move.
//
// - path: the redis-server on PATH (Debian bookworm's 7.0.15 on CI).
// - a binary package: Debian's build, unpacked with dpkg -x, never installed. valkey-tools ships
//   the one Valkey binary as valkey-check-rdb; it runs as a server only when started by a name
//   ending in -server, so we start it through a link named valkey-server (never a resolved path).
// - a source package: the upstream tarball, built here. trixie's and sid's binary packages need a
//   newer glibc than bookworm's.
const MATRIX = [
  { id: 'path', kind: 'path' },
  { id: 'valkey-8.0', kind: 'binary', pkg: 'valkey-tools', suite: 'bookworm-backports', file: 'valkey-check-rdb', program: 'valkey-server' },
  { id: 'redis-trixie', kind: 'source', pkg: 'redis', suite: 'trixie', program: 'redis-server' },
  { id: 'valkey-trixie', kind: 'source', pkg: 'valkey', suite: 'trixie', program: 'valkey-server' },
  { id: 'redis-sid', kind: 'source', pkg: 'redis', suite: 'sid', program: 'redis-server' },
  { id: 'valkey-sid', kind: 'source', pkg: 'valkey', suite: 'sid', program: 'valkey-server' },
];

function describe(server) {
  if (server.kind === 'path') return 'the redis-server on PATH';
  return `${server.pkg} from Debian ${server.suite} (${server.kind === 'binary' ? 'Debian build, unpacked' : 'built here from the upstream tarball'})`;
}

module.exports = { MATRIX, describe };
