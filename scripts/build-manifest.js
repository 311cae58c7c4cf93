#!/usr/bin/env node
// Writes lua/manifest.json from the lua/ folder. Runs after tsc, so it uses the compiled describer:
// one definition of a script's contract for the build, the runtime and the staleness test.
const { writeFileSync } = require('node:fs');
const { buildManifest, MANIFEST_PATH } = require('../dist/scripts/manifest');

const manifest = buildManifest();
writeFileSync(MANIFEST_PATH, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`lua/manifest.json: ${manifest.map((s) => `${s.id} ${s.sha1.slice(0, 12)}`).join(', ')}`);
