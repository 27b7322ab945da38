// Seeded fast PRNG for tests: xoshiro128** seeded through splitmix32.
// The implementation lives in scripts/checkpoint-writer.mjs (plain JS, also used by the
// make-checkpoint CLI at run time); this module re-exports it with types.

export { Xoshiro128, SplitMix32, seedState, fnv1a32, inverseNormalCdf, normalTable16 } from '../../scripts/checkpoint-writer.mjs';
import { Xoshiro128 } from '../../scripts/checkpoint-writer.mjs';

/** A generator for (seed, stream): independent streams of one seed, e.g. one per test case. */
export function rng(seed: number | bigint | string, stream = ''): Xoshiro128 {
  return new Xoshiro128(seed, stream);
}

/** n uniform random bytes from (seed, stream). */
export function randomBytes(n: number, seed: number | bigint | string, stream = ''): Uint8Array {
  const r = new Xoshiro128(seed, stream);
  const w = new Uint32Array(Math.ceil(n / 4));
  r.fillU32(w);
  return new Uint8Array(w.buffer, 0, n);
}

/** n float32 values ~ N(mean, std) from (seed, stream). */
export function randomNormal(n: number, seed: number | bigint | string, stream = '', mean = 0, std = 1): Float32Array {
  const r = new Xoshiro128(seed, stream);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * r.nextNormal();
  return out;
}
