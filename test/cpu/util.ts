// Shared by the CPU kernel tests: a per-run seed (GPTOSS_TEST_SEED to replay), random tensors,
// relative L2 error, and the ISA levels this CPU can run.
import { cpuInfo, ops, reference, setIsa, type CpuIsa } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';

export const SEED = Number(process.env.GPTOSS_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
// eslint-disable-next-line no-console
console.log(`cpu kernel tests: seed ${SEED} (replay with GPTOSS_TEST_SEED=${SEED})`);

/** mulberry32: small, seedable; one stream per test name. */
export function rng(stream: string): () => number {
  let h = SEED >>> 0;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 2654435761) >>> 0;
  return () => {
    h = (h + 0x6d2b79f5) >>> 0;
    let t = h;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(r: () => number, n: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function randint(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo));
}

/** Random packed MXFP4 [..., rows, cols] with E8M0 scales in [sLo, sHi]. */
export function randomMxfp4(r: () => number, shape: number[], sLo = 118, sHi = 127): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const blocks = new Uint8Array(n / 2);
  for (let i = 0; i < blocks.length; i++) blocks[i] = Math.floor(r() * 256);
  const scales = new Uint8Array(n / 32);
  for (let i = 0; i < scales.length; i++) scales[i] = randint(r, sLo, sHi + 1);
  return Tensor.fromMxfp4(blocks, scales, shape);
}

export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/** The ISA levels this machine and build can run, lowest first (scalar, then every SIMD set). */
export function availableIsas(): CpuIsa[] {
  return cpuInfo().isas;
}

export function withIsa<T>(isa: CpuIsa, fn: () => T): T {
  const best = cpuInfo().bestIsa;
  setIsa(isa);
  try {
    return fn();
  } finally {
    setIsa(best);
  }
}

export const f32 = (t: Tensor): Float32Array => t.read() as Float32Array;

/**
 * Token counts for the linear kernels' odd sizes: 1-5 (the matvec and the row kernels' 2- and
 * 3-token tiles with their tails), 9 and 53 (past the AVX2 panel's threshold of 7, not a whole number
 * of its 8-lane token groups).
 */
export const LINEAR_TOKEN_COUNTS: readonly number[] = [1, 2, 3, 4, 5, 9, 53];

/**
 * Token counts around the AVX2 prefill panels' edges (panel_avx2.h): for bf16 and Q8_0 (from 7 tokens
 * up) 6 (the last row-kernel count), 7/8, 16/17 and 24/25 on either side of the token groups of 8, 16
 * and 24 lanes (zero-padded past n), 12 (a half group), 40/41 (several groups and a tail); for MXFP4
 * (columns in the lanes, from 2 tokens up) odd and even counts (token pairs and the odd one).
 */
export const PANEL_EDGE_TOKEN_COUNTS: readonly number[] = [6, 7, 8, 12, 16, 17, 24, 25, 40, 41];

/**
 * ops.linear against reference.linear for weights w [rows, cols] (any storage form) on fresh random
 * activations x [n, cols]: the outputs' rel L2, with x and the reference's output for running another
 * form of the same weights.
 */
export function linearVsReference(r: () => number, n: number, w: Tensor, rows: number, cols: number, bias: Tensor | null = null): { err: number; x: Tensor; want: Tensor } {
  const x = Tensor.fromF32(randn(r, n * cols), [n, cols]);
  const got = Tensor.empty('f32', [n, rows]);
  const want = Tensor.empty('f32', [n, rows]);
  ops.linear(x, w, bias, got);
  reference.linear(x, w, bias, want);
  return { err: relL2(f32(got), f32(want)), x, want };
}
