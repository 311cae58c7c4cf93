import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** lua/ sits at the package root, two levels above both src/scripts and dist/scripts. */
export const LUA_DIR = resolve(__dirname, '..', '..', 'lua');
export const MANIFEST_PATH = join(LUA_DIR, 'manifest.json');

/** One script file as the manifest records it. */
export interface ManifestEntry {
  /** "<name>.v<version>", the id code calls the script by. */
  id: string;
  name: string;
  version: number;
  file: string;
  /** sha1 of the exact bytes sent (the file with its includes in place): what EVALSHA sends and SCRIPT LOAD returns. */
  sha1: string;
  /** KEYS a call always passes, then `keysPerJob` more for each job of a batch (0: not a batch). */
  keys: number;
  keysPerJob: number;
}

export interface LoadedScript extends ManifestEntry {
  body: string;
}

const FILE_NAME = /^([a-z][a-z0-9_]*)\.v([1-9][0-9]*)\.lua$/;
/** "-- @include stage.v2.lua": a fragment of lua/include/ that several scripts share, put in its place. */
const INCLUDE_LINE = /^-- @include ([a-z][a-z0-9_]*\.v[1-9][0-9]*\.lua)$/gm;
export const INCLUDE_DIR = join(LUA_DIR, 'include');

/**
 * A script's body as Redis runs it: the file with each include line replaced by the fragment. Scripts
 * sent with EVAL cannot call each other, so this is how one piece of Lua (the stage prologue) has one
 * home instead of a copy in every script. A fragment is versioned like a script: changing it changes
 * every includer's sha1.
 */
export function scriptBody(file: string, dir = LUA_DIR): string {
  return readFileSync(join(dir, file), 'utf8').replace(INCLUDE_LINE, (_, fragment: string) =>
    readFileSync(join(dir, 'include', fragment), 'utf8').trimEnd(),
  );
}
/** "-- @keys 5", "-- @keys 2 per job" or "-- @keys 4 + 2 per job". */
const KEYS_LINE = /^-- @keys (?:(\d+) per job|(\d+)(?: \+ (\d+) per job)?)/m;

export function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

/** Reads a script file's contract from its name and header. */
export function describeScript(file: string, body: string): ManifestEntry {
  const name = FILE_NAME.exec(file);
  if (!name) throw new Error(`lua/${file}: a script file is named <name>.v<N>.lua`);
  if (!body.startsWith('#!lua')) throw new Error(`lua/${file}: must start with its #!lua line`);
  const keys = KEYS_LINE.exec(body);
  if (!keys) throw new Error(`lua/${file}: the header must declare "-- @keys N", "M per job" or "N + M per job"`);
  return {
    id: `${name[1]}.v${name[2]}`,
    name: name[1],
    version: Number(name[2]),
    file,
    sha1: sha1(body),
    keys: Number(keys[2] ?? 0),
    keysPerJob: Number(keys[1] ?? keys[3] ?? 0),
  };
}

/** The manifest as the lua/ folder says it should be; `npm run build` writes it. */
export function buildManifest(dir = LUA_DIR): ManifestEntry[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.lua'))
    .sort()
    .map((file) => describeScript(file, scriptBody(file, dir)));
}

let loaded: Map<string, LoadedScript> | undefined;

/**
 * The scripts the committed manifest lists, with their bodies. A body whose sha1 differs from the
 * manifest means the manifest is stale: refuse to start rather than run an unknown script.
 */
export function loadScripts(): Map<string, LoadedScript> {
  if (loaded) return loaded;
  const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as ManifestEntry[];
  const scripts = new Map<string, LoadedScript>();
  for (const entry of manifest) {
    const body = scriptBody(entry.file);
    if (sha1(body) !== entry.sha1) {
      throw new Error(`lua/${entry.file} does not match lua/manifest.json: run npm run build`);
    }
    scripts.set(entry.id, { ...entry, body });
  }
  loaded = scripts;
  return scripts;
}
