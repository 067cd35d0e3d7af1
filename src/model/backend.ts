/**
 * The tfjs backend: the best one present, loaded dynamically so that a machine where the
 * native addons could not be installed still trains and scores. Order: tfjs-node-gpu
 * (TensorFlow with CUDA), tfjs-node (TensorFlow C library, CPU), wasm, plain JS cpu.
 * The choice is logged by the caller and reported (meta.json, /metrics, doctor).
 */
import { availableParallelism } from 'node:os';
import util from 'node:util';
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../log.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendInfo {
  /** What is actually in use. */
  name: BackendName;
  /** tfjs's own backend id (tensorflow, wasm, cpu). */
  tfjsBackend: string;
  tfjsVersion: string;
  /** Version of the TensorFlow C library for the native backends. */
  tensorflowVersion?: string;
  /** Threads the backend computes with: TensorFlow's default pool is one per core; wasm in Node runs on one. */
  threads: number;
  /** Why faster backends were not used, for the start-up log. */
  skipped: string[];
}

const ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/**
 * tfjs-node 4.22.0 (the latest release) calls util.isNullOrUndefined, which Node 23
 * removed, and util.isArray, deprecated at run time since Node 22 (DEP0044: a warning on
 * stderr at its first call, in every kernel that types its inputs); the upstream fix
 * (tensorflow/tfjs#8425) is merged but has not been released (tensorflow/tfjs#8609).
 * Before the addon loads, put back the first where it is missing and give the second
 * what it is without the warning, Array.isArray: the same build runs quietly on Node 20 and 24.
 */
function restoreRemovedUtilFunctions(): void {
  const u = util as unknown as Record<string, unknown>;
  if (typeof u.isNullOrUndefined !== 'function') u.isNullOrUndefined = (v: unknown): boolean => v === null || v === undefined;
  u.isArray = Array.isArray;
}

type NativePackage = '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';

/** Imports a native tfjs package (which registers the 'tensorflow' backend) and returns its version. */
async function importNative(pkg: NativePackage): Promise<string | undefined> {
  restoreRemovedUtilFunctions();
  // TensorFlow's own start-up lines (oneDNN notices) would go to stderr between our JSON logs.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const mod = (await import(pkg)) as { version?: Record<string, string> };
  return mod.version?.['tfjs-node'] === undefined ? undefined : String(mod.version['tfjs-node']);
}

async function tryNative(pkg: NativePackage): Promise<string | undefined> {
  const version = await importNative(pkg);
  await tf.setBackend('tensorflow');
  await tf.ready();
  return version;
}

let selected: BackendInfo | undefined;

/**
 * Selects the backend once per process (later calls return the first choice). With a
 * preference other than auto, only that backend is tried, and failing to load it throws.
 */
export async function selectBackend(preference: BackendPreference = 'auto'): Promise<BackendInfo> {
  if (selected !== undefined) return selected;
  const candidates = preference === 'auto' ? ORDER : [preference];
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      if (name === 'tensorflow-gpu') await tryNative('@tensorflow/tfjs-node-gpu');
      else if (name === 'tensorflow') await tryNative('@tensorflow/tfjs-node');
      else if (name === 'wasm') {
        await import('@tensorflow/tfjs-backend-wasm');
        if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
        await tf.ready();
      } else {
        await tf.setBackend('cpu');
        await tf.ready();
      }
      const native = tf.getBackend() === 'tensorflow';
      selected = {
        name,
        tfjsBackend: tf.getBackend(),
        tfjsVersion: tf.version.tfjs,
        ...(native ? { tensorflowVersion: tensorflowVersion() } : {}),
        threads: native ? availableParallelism() : 1,
        skipped,
      };
      return selected;
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      if (preference !== 'auto') throw new Error(`backend ${name} is not available: ${reason}`, { cause: err });
      skipped.push(`${name}: ${reason}`);
    }
  }
  throw new Error(`no tfjs backend could be loaded: ${skipped.join('; ')}`);
}

/** selectBackend, then the start-up log line that says what is in use and why faster backends were skipped. */
export async function selectAndLogBackend(preference: BackendPreference, log?: Logger): Promise<BackendInfo> {
  const first = selected === undefined;
  const b = await selectBackend(preference);
  if (first) log?.info({ backend: b.name, tfjs: b.tfjsVersion, tensorflow: b.tensorflowVersion, threads: b.threads, skipped: b.skipped }, 'tfjs backend selected');
  return b;
}

/**
 * Which tfjs backends load here, for `factorstream doctor`: each is tried without changing
 * the backend already selected for the process.
 */
export async function probeBackends(): Promise<{ name: BackendName; ok: boolean; detail: string }[]> {
  const out: { name: BackendName; ok: boolean; detail: string }[] = [];
  const before = selected?.tfjsBackend;
  for (const name of ORDER) {
    try {
      if (name === 'tensorflow-gpu' || name === 'tensorflow') {
        const pkg = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
        const version = await importNative(pkg);
        out.push({ name, ok: true, detail: version === undefined ? `${pkg} loads` : `${pkg} ${version} loads` });
      } else if (name === 'wasm') {
        await import('@tensorflow/tfjs-backend-wasm');
        const ok = await tf.setBackend('wasm');
        out.push({ name, ok, detail: ok ? 'WebAssembly backend initialises (one thread in Node)' : 'did not initialise' });
      } else {
        out.push({ name, ok: true, detail: 'plain JavaScript, always present (slow)' });
      }
    } catch (err) {
      out.push({ name, ok: false, detail: (err as Error).message.split('\n')[0] });
    }
  }
  if (before !== undefined) await tf.setBackend(before);
  return out;
}

/** The TensorFlow C library version the native backend reports, if it does. */
function tensorflowVersion(): string | undefined {
  const backend = tf.backend() as unknown as { binding?: { TF_Version?: string } };
  return backend.binding?.TF_Version;
}

export { tf };
