// The host sampling rule (lib/sampling.ts): its distribution, its exclusions, its seeds, and that it
// picks the same token as the device sampler for the same logits and uniform.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Xoshiro128, createRng, sampleFromLogits, samplingDistribution, resolveSampleOptions } from '../lib/sampling.js';
import { loadModel, type GptOssModel, type Session } from '../lib/index.js';
import { fixtureDir, readJson } from './helpers/fixtures.js';

// Fixed logits: probabilities at T=1 are proportional to exp(l).
const LOGITS = Float32Array.from([1.0, 3.0, 2.0, 3.0, 0.0, -1.0, 2.5, 1.5]);

/** Hand-computed reference: softmax(l/T), rank (p desc, id asc), top-k, top-p, min-p, renormalise. */
function expected(logits: ArrayLike<number>, o: { temperature: number; topK?: number; topP?: number; minP?: number }): Map<number, number> {
  const l = Array.from(logits);
  const max = Math.max(...l);
  const w = l.map((x) => Math.exp((x - max) / o.temperature));
  let ranked = w.map((_, i) => i).sort((a, b) => w[b]! - w[a]! || a - b);
  if (o.topK) ranked = ranked.slice(0, o.topK);
  if (o.topP !== undefined && o.topP < 1) {
    const mass = ranked.reduce((s, i) => s + w[i]!, 0);
    let cum = 0;
    const kept: number[] = [];
    for (const i of ranked) {
      kept.push(i);
      cum += w[i]!;
      if (cum >= o.topP * mass) break;
    }
    ranked = kept;
  }
  if (o.minP) ranked = ranked.filter((i) => w[i]! >= o.minP! * w[ranked[0]!]!);
  const total = ranked.reduce((s, i) => s + w[i]!, 0);
  return new Map(ranked.map((i) => [i, w[i]! / total]));
}

/** Pearson chi-square of observed counts against expected probabilities (over the kept tokens). */
function chiSquare(counts: Map<number, number>, probs: Map<number, number>, n: number): number {
  let chi = 0;
  for (const [id, p] of probs) {
    const e = p * n;
    const o = counts.get(id) ?? 0;
    chi += ((o - e) * (o - e)) / e;
  }
  return chi;
}

// 0.999 quantiles of chi-square with k degrees of freedom (k = kept tokens - 1).
const CHI2_999 = [Infinity, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12];

function draw(logits: Float32Array, options: Parameters<typeof sampleFromLogits>[1], n: number, seed = 1): Map<number, number> {
  const rng = createRng(seed);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const id = sampleFromLogits(logits, options, rng.nextUniform());
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe('Xoshiro128 uniforms', () => {
  it('same seed, same stream; different seeds, different streams', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 16 }, () => a.nextU32());
    expect(Array.from({ length: 16 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 16 }, () => c.nextU32())).not.toEqual(sa);
    expect(new Xoshiro128('chat').nextU32()).toBe(new Xoshiro128('chat').nextU32());
    expect(new Xoshiro128(5n).nextU32()).toBe(new Xoshiro128(5).nextU32());
  });

  it('uniforms lie in [0, 1), are exact in float32 and look uniform', () => {
    const rng = createRng(7);
    const bins = new Array<number>(16).fill(0);
    const n = 64000;
    let sum = 0;
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.nextUniform();
      if (!(u >= 0 && u < 1) || Math.fround(u) !== u) bad++;
      else bins[Math.floor(u * 16)]!++;
      sum += u;
    }
    expect(bad).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    const e = n / 16;
    const chi = bins.reduce((s, o) => s + ((o - e) * (o - e)) / e, 0);
    expect(chi).toBeLessThan(37.7); // 0.999 quantile, 15 degrees of freedom
  });

  it('rejects seeds that are not safe integers', () => {
    expect(() => createRng(1.5)).toThrow(/seed/);
  });
});

describe('sampleFromLogits', () => {
  it('temperature 0 is argmax, lowest index on ties', () => {
    expect(sampleFromLogits(LOGITS, { temperature: 0 }, 0.99)).toBe(1); // ids 1 and 3 tie at 3.0
    expect(sampleFromLogits(LOGITS, {}, 0.5)).toBe(1); // temperature defaults to 0 here
    expect(sampleFromLogits(Float32Array.from([-5, 7, 7.5, 7.5]), { temperature: 0, topK: 1 }, 0)).toBe(2);
  });

  it('topK = 1 is argmax for every uniform', () => {
    const rng = createRng(3);
    for (let i = 0; i < 200; i++) expect(sampleFromLogits(LOGITS, { temperature: 1.3, topK: 1 }, rng.nextUniform())).toBe(1);
  });

  it.each([
    { temperature: 1 },
    { temperature: 0.7 },
    { temperature: 2, topK: 4 },
    { temperature: 1, topP: 0.8 },
    { temperature: 1, minP: 0.2 },
    { temperature: 1.5, topK: 6, topP: 0.9, minP: 0.1 },
  ])('draws from the truncated, renormalised softmax: %o', (options) => {
    const probs = expected(LOGITS, options);
    expect([...samplingDistribution(LOGITS, options)].map(([id, p]) => [id, +p.toFixed(6)])).toEqual(
      [...probs].map(([id, p]) => [id, +p.toFixed(6)]),
    );
    const n = 40000;
    const counts = draw(LOGITS, options, n, 11);
    for (const id of counts.keys()) expect(probs.has(id)).toBe(true); // nothing outside the kept set
    const chi = chiSquare(counts, probs, n);
    expect(chi).toBeLessThan(CHI2_999[probs.size - 1]!);
  });

  it('topP keeps exactly the shortest ranked prefix reaching p (the crossing token included)', () => {
    // exp weights of LOGITS at T=1, ranked: ids 1,3 (e^3 each), 6 (e^2.5), 2 (e^2), 7, 0, 4, 5.
    const w = Array.from(LOGITS, (x) => Math.exp(x));
    const mass = w.reduce((a, b) => a + b, 0);
    const twoTop = (w[1]! + w[3]!) / mass; // ~0.62
    expect([...samplingDistribution(LOGITS, { temperature: 1, topP: twoTop - 1e-4 }).keys()]).toEqual([1, 3]);
    expect([...samplingDistribution(LOGITS, { temperature: 1, topP: twoTop + 1e-4 }).keys()]).toEqual([1, 3, 6]);
    expect([...samplingDistribution(LOGITS, { temperature: 1, topP: 0.01 }).keys()]).toEqual([1]);
    const counts = draw(LOGITS, { temperature: 1, topP: twoTop - 1e-4 }, 2000);
    expect([...counts.keys()].sort()).toEqual([1, 3]);
  });

  it('minP keeps exactly the tokens with p >= minP * pmax', () => {
    // p/pmax: id 6 e^-0.5 = 0.6065, id 2 e^-1 = 0.3679, id 7 e^-1.5 = 0.2231.
    expect([...samplingDistribution(LOGITS, { temperature: 1, minP: 0.6 }).keys()]).toEqual([1, 3, 6]);
    expect([...samplingDistribution(LOGITS, { temperature: 1, minP: 0.61 }).keys()]).toEqual([1, 3]);
    expect([...samplingDistribution(LOGITS, { temperature: 1, minP: 0.36 }).keys()]).toEqual([1, 3, 6, 2]);
    expect([...samplingDistribution(LOGITS, { temperature: 1, minP: 1 }).keys()]).toEqual([1, 3]);
    const counts = draw(LOGITS, { temperature: 1, minP: 0.61 }, 2000);
    expect([...counts.keys()].sort()).toEqual([1, 3]);
  });

  it('walks the kept tokens in index order for the inverse CDF (as the device does)', () => {
    // Kept {1, 3} with equal mass: u < 0.5 -> 1, u >= 0.5 -> 3.
    expect(sampleFromLogits(LOGITS, { temperature: 1, topK: 2 }, 0)).toBe(1);
    expect(sampleFromLogits(LOGITS, { temperature: 1, topK: 2 }, 0.4999)).toBe(1);
    expect(sampleFromLogits(LOGITS, { temperature: 1, topK: 2 }, 0.5)).toBe(3);
    expect(sampleFromLogits(LOGITS, { temperature: 1, topK: 2 }, 0.9999)).toBe(3);
  });

  it('same seed, same tokens', () => {
    const opts = { temperature: 1.2, topP: 0.95 };
    const a = draw(LOGITS, opts, 500, 99);
    const b = draw(LOGITS, opts, 500, 99);
    expect([...a]).toEqual([...b]);
    const seq = (seed: number): number[] => {
      const rng = createRng(seed);
      return Array.from({ length: 64 }, () => sampleFromLogits(LOGITS, opts, rng.nextUniform()));
    };
    expect(seq(5)).toEqual(seq(5));
    expect(seq(5)).not.toEqual(seq(6));
  });

  it('checks its options as the device does', () => {
    expect(() => resolveSampleOptions({ temperature: -1 })).toThrow(/temperature/);
    expect(() => resolveSampleOptions({ topP: 0 })).toThrow(/topP/);
    expect(() => resolveSampleOptions({ minP: 1.5 })).toThrow(/minP/);
    expect(() => resolveSampleOptions({ topK: 1.5 })).toThrow(/topK/);
    expect(() => sampleFromLogits(LOGITS, { temperature: 1 }, 1)).toThrow(/uniform/);
    expect(() => sampleFromLogits(new Float32Array(0), { temperature: 1 }, 0)).toThrow(/empty/);
  });
});

describe('host rule == device rule (CPU, tiny-a logits)', () => {
  let model: GptOssModel;
  let session: Session;
  let logits: Float32Array;
  beforeAll(async () => {
    model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    session = model.createSession({ maxContext: 64 });
    logits = await session.prefill(readJson<number[]>('tiny-a', 'tokens.json'));
  });
  afterAll(async () => {
    await session?.dispose();
    await model?.dispose();
  });

  it.each([
    { temperature: 0 },
    { temperature: 1 },
    { temperature: 0.6, topK: 40 },
    { temperature: 1, topP: 0.9 },
    { temperature: 1.4, minP: 0.05 },
    { temperature: 0.8, topK: 100, topP: 0.8, minP: 0.02 },
  ])('same token for the same uniform: %o', async (options) => {
    const rng = createRng(2024);
    for (let i = 0; i < 100; i++) {
      const u = rng.nextUniform();
      expect(await session.sample(options, u)).toBe(sampleFromLogits(logits, options, u));
    }
  });
});
