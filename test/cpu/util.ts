// Shared by the CPU kernel tests: a per-run seed (GPTOSS_TEST_SEED to replay), random tensors,
// relative L2 error, and the ISA levels this CPU can run.
import { cpuInfo, setIsa, type CpuIsa } from '../../lib/ops.js';
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
