/**
 * Cross-sectional robust z-score, per bar time and per feature: z = (x - median) /
 * (1.4826 * MAD), clipped at ±clip. Only valid (unmasked) values take part; masked
 * entries come out as 0 with mask 0. When the MAD is zero (more than half the values
 * equal) the scale falls back to 1.2533 * mean absolute deviation (both estimate sigma
 * for a normal distribution), and to "all zero" when that is zero too.
 */
const MAD_TO_SIGMA = 1.4826;
const MEAN_ABS_DEV_TO_SIGMA = 1.2533;

export class RobustZScorer {
  private scratch = new Float64Array(1024);
  readonly clip: number;

  constructor(clip = 5) {
    this.clip = clip;
  }

  /**
   * Normalises the column `f` of `n` rows of width `width` in `x` (mask `m`) into `out`
   * (same layout; masked entries set to 0). Returns the number of valid rows.
   */
  column(x: ArrayLike<number>, m: Uint8Array, n: number, width: number, f: number, out: Float32Array): number {
    if (this.scratch.length < n) this.scratch = new Float64Array(n * 2);
    const v = this.scratch;
    let k = 0;
    for (let i = 0; i < n; i++) if (m[i * width + f] === 1) v[k++] = x[i * width + f];
    if (k === 0) {
      for (let i = 0; i < n; i++) out[i * width + f] = 0;
      return 0;
    }
    const med = median(v, k);
    let sumAbs = 0;
    for (let j = 0; j < k; j++) {
      v[j] = Math.abs(v[j] - med);
      sumAbs += v[j];
    }
    let scale = MAD_TO_SIGMA * median(v, k);
    if (!(scale > 1e-12)) scale = (MEAN_ABS_DEV_TO_SIGMA * sumAbs) / k;
    const clip = this.clip;
    for (let i = 0; i < n; i++) {
      const o = i * width + f;
      if (m[o] !== 1 || !(scale > 1e-12)) {
        out[o] = 0;
        continue;
      }
      const z = (x[o] - med) / scale;
      out[o] = z > clip ? clip : z < -clip ? -clip : z;
    }
    return k;
  }

  /** Every column of an [n, width] row-major matrix. */
  all(x: ArrayLike<number>, m: Uint8Array, n: number, width: number, out: Float32Array): void {
    for (let f = 0; f < width; f++) this.column(x, m, n, width, f, out);
  }
}

/** Median of the first k entries (reorders them): quickselect, O(k) on average. */
export function median(a: Float64Array, k: number): number {
  const mid = k >> 1;
  const upper = select(a, 0, k - 1, mid);
  if (k & 1) return upper;
  // Even count: the lower middle is the max of the left part after selection.
  let lower = -Infinity;
  for (let i = 0; i < mid; i++) if (a[i] > lower) lower = a[i];
  return (lower + upper) / 2;
}

function select(a: Float64Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    // Median-of-three pivot keeps sorted inputs fast.
    const mid = (lo + hi) >> 1;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
