// Seeded uniforms for sampling, and the sampling rule itself on the host.
//
// Generation samples on the device (Session.sample): only the uniform goes down and only the token
// id comes back. sampleFromLogits() is the same rule written in TypeScript, for logits that are
// already on the host (Session.prefill/step) and as the executable statement of what the device
// does (native/cpu/sample.cpp; test/sampling.test.ts checks it against the device on the same
// logits and uniforms).
import type { SampleOptions } from './session.js';

export type { SampleOptions };

// ---------------------------------------------------------------------------------------------
// PRNG: xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c), its 128-bit
// state filled by splitmix32 from the seed, so that nearby seeds give unrelated streams.
// ---------------------------------------------------------------------------------------------

/** Accepted seeds: a safe integer (negative allowed), a bigint (low 64 bits) or a string. */
export type Seed = number | bigint | string;

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** 64 seed bits as two 32-bit words (strings through FNV-1a on their UTF-16 code units). */
function seedWords(seed: Seed): [number, number] {
  if (typeof seed === 'string') {
    let lo = 0x811c9dc5;
    let hi = 0x01000193;
    for (let i = 0; i < seed.length; i++) {
      lo = Math.imul(lo ^ seed.charCodeAt(i), 0x01000193);
      hi = Math.imul(hi ^ seed.charCodeAt(i), 0x811c9dc5) ^ (lo >>> 7);
    }
    return [lo >>> 0, hi >>> 0];
  }
  if (typeof seed === 'bigint') {
    const x = BigInt.asUintN(64, seed);
    return [Number(x & 0xffffffffn), Number(x >> 32n)];
  }
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, a bigint or a string, got ${seed}`);
  const x = BigInt.asUintN(64, BigInt(seed));
  return [Number(x & 0xffffffffn), Number(x >> 32n)];
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Xoshiro128 {
  readonly #s = new Uint32Array(4);

  constructor(seed: Seed = 0) {
    const [lo, hi] = seedWords(seed);
    const sm = { s: lo ^ Math.imul(hi, 0x6c078965) };
    for (let i = 0; i < 4; i++) this.#s[i] = splitmix32(sm) ^ (i === 1 ? hi : 0);
    if (this.#s.every((w) => w === 0)) this.#s[0] = 1; // the all-zero state is a fixed point
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * A uniform in [0, 1) with 24 random bits: k / 2^24. 24 bits because the device sampler takes the
   * uniform as a float32; every such value is exact in float32 and below 1 (53 bits would round
   * 1 - 2^-53 up to 1.0f, which the sampler rejects), so host and device see the same number.
   */
  nextUniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

/** A seeded stream of sampling uniforms; `seed` omitted: a random seed. */
export function createRng(seed?: Seed): Xoshiro128 {
  return new Xoshiro128(seed ?? randomSeed());
}

/** A fresh random seed (a safe integer, so it can be reported and reused). */
export function randomSeed(): number {
  const w = crypto.getRandomValues(new Uint32Array(2));
  return (w[0]! & 0x1fffff) * 2 ** 32 + w[1]!;
}

// ---------------------------------------------------------------------------------------------
// The sampling rule (the same as native/cpu/sample.cpp, step for step, in float32 where it is):
//
//  0. a row with a NaN or +Infinity, or every logit -Infinity: RangeError naming the position.
//  1. temperature 0: argmax, the lowest index on ties. Nothing else applies.
//  2. p_i = exp((l_i - max l) / T) in float32 (unnormalised softmax; p_max = 1).
//  3. Rank tokens by p descending, ties by lower index.
//  4. top-k (k > 0 and k < V): keep the first k of the ranking.
//  5. top-p (p < 1): of what is left (mass M = sum of its p, in float64), keep the shortest prefix
//     of the ranking whose cumulative p reaches topP * M (the token that crosses is kept).
//  6. min-p (> 0): of what is left, keep tokens with p >= minP * p_max (float32 product).
//     The kept set is always a non-empty prefix of the ranking.
//  7. Draw: total = sum of kept p (float64); walk the kept tokens in *index order* and return the
//     first whose cumulative p exceeds uniform * total (the last kept token if rounding leaves
//     none). Index order, not rank order, is what the device does: the distribution is the same
//     (the renormalised kept p), only which uniform maps to which token differs, and the device
//     avoids materialising the ranking for its threshold paths.
//
// Differences from the device can only come from exp's last-ulp rounding (expf vs Math.exp rounded
// to float32); a draw differs only when a uniform falls within ~1e-7 of a CDF boundary.
// ---------------------------------------------------------------------------------------------

interface ResolvedSampleOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** Fills defaults (temperature 0, topK 0 = off, topP 1, minP 0) and checks ranges as the device does. */
export function resolveSampleOptions(options: SampleOptions = {}, where = 'sample'): ResolvedSampleOptions {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`${where}: the sampling options must be an object, got ${options === null ? 'null' : typeof options}`);
  const temperature = options.temperature ?? 0;
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  const minP = options.minP ?? 0;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0)
    throw new RangeError(`${where}: temperature must be a finite number >= 0, got ${temperature}`);
  if (!Number.isSafeInteger(topK) || topK < 0) throw new RangeError(`${where}: topK must be an integer >= 0, got ${topK}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new RangeError(`${where}: topP must be in (0, 1], got ${topP}`);
  if (typeof minP !== 'number' || !(minP >= 0 && minP <= 1)) throw new RangeError(`${where}: minP must be in [0, 1], got ${minP}`);
  // topK >= vocabulary keeps every token, as 0 does: any larger value means the same, so it is
  // capped to what the native side takes as an int32.
  return { temperature, topK: Math.min(topK, 2 ** 30), topP, minP };
}

/**
 * The row rule every backend applies (native/model/backend.h): a NaN or +Infinity anywhere, or no
 * logit above -Infinity, leaves no distribution to draw from: a RangeError naming the position.
 */
function checkLogitRow(logits: ArrayLike<number>, where: string): void {
  let finite = false;
  for (let i = 0; i < logits.length; i++) {
    const x = f32(logits[i]!);
    if (Number.isNaN(x) || x === Infinity) throw new RangeError(`${where}: logits[${i}] is NaN or +Infinity, there is no distribution to draw from`);
    if (x !== -Infinity) finite = true;
  }
  if (!finite) throw new RangeError(`${where}: every logit is -Infinity, there is no token to draw`);
}

function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

const f32 = Math.fround;

/** Steps 2-6: the unnormalised float32 p and the kept tokens in rank order. */
function keptTokens(logits: ArrayLike<number>, o: ResolvedSampleOptions): { p: Float32Array; ranked: number[] } {
  const v = logits.length;
  const m = f32(logits[argmax(logits)]!);
  const t = f32(o.temperature);
  const p = new Float32Array(v);
  for (let i = 0; i < v; i++) p[i] = Math.exp(f32(f32(f32(logits[i]!) - m) / t));
  const rankBefore = (a: number, b: number): number => p[b]! - p[a]! || a - b;

  const useK = o.topK > 0 && o.topK < v;
  let ranked: number[];
  if (!useK && o.topP >= 1) {
    // min-p only: a threshold, no ranking needed beyond the kept tokens.
    const thr = f32(f32(o.minP) * 1);
    ranked = [];
    for (let i = 0; i < v; i++) if (p[i]! >= thr) ranked.push(i);
    ranked.sort(rankBefore);
    return { p, ranked };
  }
  ranked = Array.from({ length: v }, (_, i) => i).sort(rankBefore);
  if (useK) ranked.length = o.topK;
  let len = ranked.length;
  if (o.topP < 1) {
    let mass = 0;
    if (useK) for (const i of ranked) mass += p[i]!;
    else for (let i = 0; i < v; i++) mass += p[i]!;
    const target = f32(o.topP) * mass;
    let cum = 0;
    let j = 0;
    for (; j < ranked.length; j++) {
      cum += p[ranked[j]!]!;
      if (cum >= target) break;
    }
    len = Math.min(len, j + 1);
  }
  if (o.minP > 0) {
    const thr = f32(f32(o.minP) * p[ranked[0]!]!);
    let j = 1;
    while (j < len && p[ranked[j]!]! >= thr) j++;
    len = j;
  }
  ranked.length = len;
  return { p, ranked };
}

/**
 * Draws the next token from one row of logits with the device's rule (above). `uniform` in [0, 1),
 * e.g. from createRng(seed).nextUniform(); it is rounded to float32 as the device rounds it.
 */
export function sampleFromLogits(logits: ArrayLike<number>, options: SampleOptions = {}, uniform = 0): number {
  const o = resolveSampleOptions(options, 'sampleFromLogits');
  if (logits.length < 1) throw new RangeError('sampleFromLogits: logits is empty');
  const u = f32(uniform);
  if (!(u >= 0 && u < 1)) throw new RangeError(`sampleFromLogits: uniform must be in [0, 1) (as float32), got ${uniform}`);
  checkLogitRow(logits, 'sampleFromLogits');
  if (o.temperature === 0) return argmax(logits);
  const { p, ranked } = keptTokens(logits, o);
  const byIndex = ranked.slice().sort((a, b) => a - b);
  let total = 0;
  for (const i of byIndex) total += p[i]!;
  const target = u * total;
  let cum = 0;
  for (const i of byIndex) {
    cum += p[i]!;
    if (cum > target) return i;
  }
  return byIndex[byIndex.length - 1]!;
}

/**
 * The distribution sampleFromLogits draws from: token id -> probability (renormalised over the
 * kept tokens), in rank order. Temperature 0: the argmax with probability 1.
 */
export function samplingDistribution(logits: ArrayLike<number>, options: SampleOptions = {}): Map<number, number> {
  const o = resolveSampleOptions(options, 'samplingDistribution');
  if (logits.length < 1) throw new RangeError('samplingDistribution: logits is empty');
  checkLogitRow(logits, 'samplingDistribution');
  if (o.temperature === 0) return new Map([[argmax(logits), 1]]);
  const { p, ranked } = keptTokens(logits, o);
  let total = 0;
  for (const i of ranked) total += p[i]!;
  return new Map(ranked.map((i) => [i, p[i]! / total]));
}
