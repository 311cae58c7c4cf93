// Debian's archive through a private apt configuration: its own sources list, package lists and
// download cache in a folder of ours, naming the mirror the machine's apt already uses. Nothing is
// installed (installing a server package would start a service on 6379) and the machine's apt
// state is left alone.
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The main archive mirror of the machine's apt: the URI serving its own release (bookworm, ...). */
function debianMirror() {
  const codename = /^VERSION_CODENAME=(.*)$/m.exec(readIfThere('/etc/os-release'))?.[1]?.replace(/"/g, '');
  const targets = spawnSync('apt-get', ['indextargets', '--format', '$(REPO_URI)\t$(RELEASE)'], { encoding: 'utf8' });
  if (targets.error) throw new Error(`apt-get is not available (${targets.error.message})`);
  const mirror = targets.stdout
    .split('\n')
    .map((line) => line.split('\t'))
    .find(([, release]) => codename && release === codename)?.[0];
  if (!mirror) {
    throw new Error(
      `the machine's apt names no Debian mirror for its own release (${codename ?? 'no VERSION_CODENAME in /etc/os-release'}); run apt-get update first if it has never run`,
    );
  }
  return mirror;
}

/**
 * An apt of our own in `dir` for the given sources lines ("deb <suite>", "deb-src <suite>").
 * update() reads the lists; every command after it works on those lists only.
 */
class PrivateApt {
  constructor(dir, mirror, sources) {
    this.dir = dir;
    for (const sub of ['lists/partial', 'cache/archives/partial', 'parts']) mkdirSync(join(dir, sub), { recursive: true });
    const signedBy = existsSync(KEYRING) ? ` [signed-by=${KEYRING}]` : '';
    writeFileSync(
      join(dir, 'sources.list'),
      sources.map(([type, suite]) => `${type}${signedBy} ${mirror} ${suite} main\n`).join(''),
    );
    this.options = [
      '-o', `Dir::Etc::SourceList=${join(dir, 'sources.list')}`,
      '-o', `Dir::Etc::SourceParts=${join(dir, 'parts')}`,
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
      '-o', `Dir::Cache=${join(dir, 'cache')}`,
      // As root apt hands downloads to the _apt user, who may not write into our folders.
      ...(process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : []),
    ];
  }

  update() {
    // Without --error-on=any a list that failed to download is a warning, and apt-get update exits 0.
    this.run(['update', '--error-on=any'], this.dir, 'could not read the package lists');
  }

  /** The version `apt-get download <pkg>/<suite>` would fetch now. */
  binaryVersion(pkg, suite) {
    return this.debFile(pkg, suite).split('_')[1];
  }

  /** `apt-get download <pkg>/<suite>` into `into`; returns the .deb's path. */
  downloadBinary(pkg, suite, into) {
    const file = this.debFile(pkg, suite);
    this.run(['download', `${pkg}/${suite}`], into, `could not download ${pkg} from ${suite}`);
    return join(into, file);
  }

  debFile(pkg, suite) {
    const uris = this.run(['download', '--print-uris', `${pkg}/${suite}`], this.dir, `no ${pkg} in ${suite}`);
    const file = /^'\S+' (\S+\.deb) /m.exec(uris)?.[1];
    if (!file) throw new Error(`apt-get download --print-uris ${pkg}/${suite} named no .deb:\n${uris}`);
    return file;
  }

  /** The Debian version `apt-get source` picks for `<pkg>/<suite>` now (sid moves). */
  sourceVersion(pkg, suite) {
    const uris = this.run(['source', '--print-uris', '--tar-only', `${pkg}/${suite}`], this.dir, `no source package ${pkg} in ${suite}`);
    const version = /Selected version '([^']+)'/.exec(uris)?.[1];
    if (!version) throw new Error(`apt-get source --print-uris ${pkg}/${suite} named no version:\n${uris}`);
    return version;
  }

  /**
   * The upstream tarball alone (`--tar-only`: the full .dsc may be missing on a mirror); returns
   * its path.
   */
  downloadSourceTarball(pkg, suite, into) {
    // Asked before the download: once the file is there, --print-uris skips it and names nothing.
    const uris = this.run(['source', '--print-uris', '--tar-only', `${pkg}/${suite}`], this.dir, `no source package ${pkg} in ${suite}`);
    const file = /^'\S+' (\S+\.orig\.tar\.\w+) /m.exec(uris)?.[1];
    if (!file) throw new Error(`apt-get source named no upstream tarball for ${pkg}/${suite}:\n${uris}`);
    this.run(['source', '--download-only', '--tar-only', `${pkg}/${suite}`], into, `could not download the source of ${pkg} from ${suite}`);
    return join(into, file);
  }

  run(args, cwd, what) {
    const run = spawnSync('apt-get', [...this.options, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
    if (run.status !== 0) {
      const errors = `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n').filter((line) => /^(E:|W: Failed to fetch)/.test(line));
      const why = run.error?.message ?? errors[0] ?? `exit ${run.status}`;
      throw new Error(`${what} (apt-get ${args.join(' ')}: ${why})`);
    }
    return `${run.stdout}${run.stderr}`;
  }
}

function readIfThere(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

module.exports = { PrivateApt, debianMirror };
