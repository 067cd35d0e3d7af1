#!/usr/bin/env node
/**
 * Installs the native TensorFlow backend for tfjs (`@tensorflow/tfjs-node`, or
 * `@tensorflow/tfjs-node-gpu` with --gpu / FACTORSTREAM_TFJS_GPU=1) into node_modules.
 *
 * 1. Already there and loading: says so and does nothing.
 * 2. Tries the ordinary `npm install` (works where its download host is reachable).
 * 3. Otherwise: installs the package files without their install script, takes the
 *    TensorFlow C library and headers from TensorFlow's wheel on PyPI (cached in
 *    ~/.cache/factorstream, so a second machine run downloads nothing), builds the
 *    addon against the local Node headers, and loads it to check.
 *
 * It never fails the install: whatever is missing (Python, pip, a compiler, the
 * network) it names, and the product runs on the wasm backend. Steps: docs in README
 * "Native TensorFlow backend"; facts in shared/recipes/tfjs-node-offline.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gpu = process.argv.includes('--gpu') || process.env.FACTORSTREAM_TFJS_GPU === '1';
const TFJS_VERSION = '4.22.0';
const TF_VERSION = '2.18.0';
const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
const wheel = gpu ? 'tensorflow' : 'tensorflow-cpu';
const pkgDir = join(root, 'node_modules', ...pkg.split('/'));
const cacheDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'factorstream', `${wheel}-${TF_VERSION}`);

const step = (msg) => process.stdout.write(`install-tfjs-native: ${msg}\n`);
const giveUp = (msg) => {
  step(`${msg}`);
  step('the native backend is not installed; factorstream runs on the wasm backend (about ten times slower to train).');
  process.exit(0);
};

/** Loads the package in a fresh process and prints its backend and TensorFlow version. */
function probe() {
  const code = `import('${pkg}').then(async (m) => { const tf = await import('@tensorflow/tfjs'); await tf.ready(); console.log(JSON.stringify({ backend: tf.getBackend(), tf: tf.backend().binding?.TF_Version })); })`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (r.status !== 0) return { ok: false, error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ') };
  try {
    const line = r.stdout.trim().split('\n').pop();
    const info = JSON.parse(line);
    return { ok: info.backend === 'tensorflow', ...info };
  } catch {
    return { ok: false, error: r.stdout.trim() };
  }
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts });
}

function has(cmd, args = ['--version']) {
  return run(cmd, args).status === 0;
}

// 1. Already installed?
if (existsSync(join(pkgDir, 'package.json'))) {
  const p = probe();
  if (p.ok) {
    step(`${pkg} is already installed and loads (backend tensorflow, TensorFlow ${p.tf}): nothing to do.`);
    process.exit(0);
  }
}

// 2. The ordinary install.
step(`trying the ordinary install: npm install --no-save ${pkg}@${TFJS_VERSION}`);
// The project's .npmrc turns install scripts off; this one needs its own (it fetches libtensorflow), and onnxruntime's stays skipped.
let r = run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts=false', `${pkg}@${TFJS_VERSION}`], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
if (r.status === 0 && probe().ok) {
  step(`${pkg} installed by npm; backend tensorflow loads.`);
  process.exit(0);
}
const why =
  r.status === 0
    ? 'npm kept the package but its addon does not load: its install script could not fetch libtensorflow'
    : (`${r.stderr}${r.stdout}`.match(/hostname: '[^']+'|ENOTFOUND[^\n]*|ETIMEDOUT|ECONNREFUSED/)?.[0] ?? `npm exited ${r.status}`);
step(`the ordinary install failed (${why}): building from TensorFlow's PyPI wheel instead`);

// 3a. Package files without the install script.
r = run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', `${pkg}@${TFJS_VERSION}`]);
if (r.status !== 0) giveUp(`could not fetch the ${pkg} package files from npm: ${r.stderr.trim().split('\n').pop()}`);

// 3b. The wheel, cached.
const python = ['python3', 'python'].find((p) => has(p));
if (python === undefined) giveUp('Python 3 is missing (it downloads and unpacks the TensorFlow wheel): install python3 and pip, then run npm run native');
if (!has(python, ['-m', 'pip', '--version'])) giveUp(`pip is missing for ${python}: install python3-pip, then run npm run native`);
if (!has('g++') && !has('c++')) giveUp('no C++ compiler (g++): install build-essential, then run npm run native');
mkdirSync(cacheDir, { recursive: true });
const cachedWheel = () => readdirSync(cacheDir).find((f) => f.endsWith('.whl'));
if (cachedWheel() === undefined) {
  step(`downloading ${wheel}==${TF_VERSION} from PyPI (about ${gpu ? 600 : 230} MB) into ${cacheDir}`);
  const started = Date.now();
  const timer = setInterval(() => {
    const partial = readdirSync(cacheDir).reduce((a, f) => a + statSync(join(cacheDir, f)).size, 0);
    step(`  … ${Math.round((Date.now() - started) / 1000)} s, ${(partial / 2 ** 20).toFixed(0)} MB so far`);
  }, 10_000);
  r = spawnSync(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--progress-bar', process.stdout.isTTY ? 'on' : 'off', '-d', cacheDir, `${wheel}==${TF_VERSION}`], { stdio: 'inherit' });
  clearInterval(timer);
  if (r.status !== 0 || cachedWheel() === undefined) giveUp(`pip could not download ${wheel}==${TF_VERSION} (see above)`);
} else {
  step(`using the cached wheel ${join(cacheDir, cachedWheel())}`);
}

// 3c. Library and headers into deps/.
const deps = join(pkgDir, 'deps');
rmSync(deps, { recursive: true, force: true });
mkdirSync(join(deps, 'lib'), { recursive: true });
mkdirSync(join(deps, 'include'), { recursive: true });
step('unpacking libtensorflow_cc.so.2, libtensorflow_framework.so.2 and the C API headers');
const unpack = `
import sys, zipfile, os, shutil
whl, deps = sys.argv[1], sys.argv[2]
libs = ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2')
heads = ('tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/', 'tensorflow/include/tsl/', 'tensorflow/include/xla/tsl/c/')
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        if name in libs:
            target = os.path.join(deps, 'lib', os.path.basename(name))
        elif name.startswith(heads) and not name.endswith('/'):
            target = os.path.join(deps, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
`;
r = run(python, ['-c', unpack, join(cacheDir, cachedWheel()), deps]);
if (r.status !== 0) giveUp(`unpacking the wheel failed: ${r.stderr.trim().split('\n').pop()}`);
const lib = join(deps, 'lib');
for (const [link, target] of [
  ['libtensorflow.so.2', 'libtensorflow_cc.so.2'],
  ['libtensorflow.so', 'libtensorflow.so.2'],
  ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
]) {
  symlinkSync(target, join(lib, link));
}

// 3d. Build the addon against the local Node headers (no header download).
const nodePrefix = dirname(dirname(process.execPath));
const nodeDir = existsSync(join(nodePrefix, 'include', 'node', 'node_api.h')) ? nodePrefix : undefined;
step(`building the addon (node-pre-gyp, ${nodeDir === undefined ? 'Node headers from node-gyp' : `Node headers in ${nodeDir}/include/node`})`);
const preGyp = join(root, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp');
r = run(process.execPath, [preGyp, 'install', '--build-from-source', ...(nodeDir === undefined ? [] : [`--nodedir=${nodeDir}`])], { cwd: pkgDir });
if (r.status !== 0) giveUp(`building the addon failed: ${`${r.stderr}`.trim().split('\n').slice(-3).join(' ')}`);

// 3e. Check.
const p = probe();
if (!p.ok) giveUp(`the built addon does not load: ${p.error ?? JSON.stringify(p)}`);
step(`done: ${pkg} loads, backend tensorflow, TensorFlow ${p.tf}.`);
