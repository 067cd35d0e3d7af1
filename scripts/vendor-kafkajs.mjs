#!/usr/bin/env node
/**
 * Rebuilds vendor/kafkajs/kafkajs-<version>.tgz, the kafkajs that factorstream installs:
 * npm's kafkajs 2.2.4 (checked against its registry integrity) with the patches of
 * vendor/kafkajs/patches applied in order, its version set to 2.2.4-factorstream.N.
 * package.json depends on that file, so `npm ci` installs it offline and runs nothing.
 *
 *   node scripts/vendor-kafkajs.mjs            rebuild the tarball (needs the npm registry)
 *   node scripts/vendor-kafkajs.mjs --check    rebuild in a temporary folder and compare
 *
 * After a rebuild with other bytes: `npm install` to record its integrity in
 * package-lock.json. Why the patches: vendor/kafkajs/README.md.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const UPSTREAM = 'kafkajs@2.2.4';
const UPSTREAM_INTEGRITY = 'sha512-j/YeapB1vfPT2iOIUn/vxdyKEuhuY2PxMBvf5JWux6iSaukAccrMtXEY/Lb7OvavDhOWME589bpLrEdnVHjfjA==';
export const VERSION = '2.2.4-factorstream.6';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vendorDir = join(root, 'vendor', 'kafkajs');
const patchesDir = join(vendorDir, 'patches');
const tarball = `kafkajs-${VERSION}.tgz`;
const check = process.argv.includes('--check');

const say = (msg) => process.stdout.write(`vendor-kafkajs: ${msg}\n`);
function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`vendor-kafkajs: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
    process.exit(1);
  }
  return r.stdout;
}
const integrity = (file) => `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;

const work = mkdtempSync(join(tmpdir(), 'vendor-kafkajs-'));
try {
  run('npm', ['pack', UPSTREAM, '--silent'], work);
  const upstream = join(work, 'kafkajs-2.2.4.tgz');
  if (integrity(upstream) !== UPSTREAM_INTEGRITY) {
    process.stderr.write(`vendor-kafkajs: ${UPSTREAM} from the registry is not the tarball the patches were written for (integrity ${integrity(upstream)})\n`);
    process.exit(1);
  }
  run('tar', ['xzf', upstream], work);
  const pkgDir = join(work, 'package');
  const patches = readdirSync(patchesDir).filter((f) => f.endsWith('.patch')).sort();
  for (const patch of patches) run('git', ['apply', '--whitespace=nowarn', join(patchesDir, patch)], pkgDir);
  const pkgJson = join(pkgDir, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
  pkg.version = VERSION;
  writeFileSync(pkgJson, `${JSON.stringify(pkg, null, 2)}\n`);
  run('npm', ['pack', '--silent'], pkgDir);
  const built = join(pkgDir, tarball);
  say(`${UPSTREAM} + ${patches.length} patches (${patches.join(', ')}) -> ${tarball}, ${integrity(built)}`);
  const committed = join(vendorDir, tarball);
  if (check) {
    let same = false;
    try {
      same = integrity(committed) === integrity(built);
    } catch {
      // no committed tarball: not the same
    }
    say(same ? `vendor/kafkajs/${tarball} is this build` : `vendor/kafkajs/${tarball} differs from this build: run node scripts/vendor-kafkajs.mjs`);
    process.exitCode = same ? 0 : 1;
  } else {
    copyFileSync(built, committed);
    say(`wrote vendor/kafkajs/${tarball}; run npm install if its integrity changed`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
