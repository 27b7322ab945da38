import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { randint, randn, rng } from './util.js';

function probs(logits: number[], t: number): number[] {
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp((l - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

// Pearson chi-square over `draws` stratified uniforms; returns the statistic (df = kept - 1).
function chiSquare(logits: Tensor, params: object, expected: number[], draws: number): number {
  const counts = new Array(expected.length).fill(0);
  for (let i = 0; i < draws; i++) counts[ops.sample(logits, params, (i + 0.5) / draws)]++;
  let chi = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] * draws;
    if (e === 0) expect(counts[i]).toBe(0);
    else chi += (counts[i] - e) ** 2 / e;
  }
  return chi;
}

describe('sample', () => {
  it('temperature 0 is argmax (lowest index on ties), fast and reference', () => {
    const r = rng('sample-greedy');
    const v = randint(r, 2, 5000);
    const l = randn(r, v);
    const best = l.indexOf(Math.max(...l));
    const t = Tensor.fromF32(l, [1, v]);
    expect(ops.sample(t, { temperature: 0 }, 0.3)).toBe(best);
    expect(reference.sample(t, {}, 0.9)).toBe(best);
    expect(ops.sample(Tensor.fromF32([1, 5, 5, 2], [4]), {}, 0.5)).toBe(1);
  });

  it('draws from softmax(l / T) and applies top-k / top-p / min-p', () => {
    const logits = [2, 1, 0.5, 0, -1, 3];
    const t = Tensor.fromF32(logits, [6]);
    const p = probs(logits, 0.8);
    // Stratified draws: the histogram matches the distribution almost exactly.
    expect(chiSquare(t, { temperature: 0.8 }, p, 20000)).toBeLessThan(1);
    // top-k 2: tokens 5 and 0 renormalized.
    const k2 = [0, 0, 0, 0, 0, 0];
    k2[5] = p[5] / (p[5] + p[0]);
    k2[0] = p[0] / (p[5] + p[0]);
    expect(chiSquare(t, { temperature: 0.8, topK: 2 }, k2, 20000)).toBeLessThan(1);
    // top-p 0.7: the shortest prefix (by prob) reaching 0.7.
    const order = [5, 0, 1, 2, 3, 4];
    let cum = 0;
    const kept: number[] = [];
    for (const i of order) {
      kept.push(i);
      cum += p[i];
      if (cum >= 0.7) break;
    }
    const tp = new Array(6).fill(0);
    const mass = kept.reduce((a, i) => a + p[i], 0);
    for (const i of kept) tp[i] = p[i] / mass;
    expect(chiSquare(t, { temperature: 0.8, topP: 0.7 }, tp, 20000)).toBeLessThan(1);
    // min-p 0.2: p >= 0.2 * p_max.
    const mp = p.map((x) => (x >= 0.2 * p[5] ? x : 0));
    const ms = mp.reduce((a, b) => a + b, 0);
    expect(chiSquare(t, { temperature: 0.8, minP: 0.2 }, mp.map((x) => x / ms), 20000)).toBeLessThan(1);
  });

  it('fast path picks the same token as the reference for the same uniform (large vocab)', () => {
    const r = rng('sample-parity');
    const v = randint(r, 3000, 9000);
    const t = Tensor.fromF32(randn(r, v, 3), [v]);
    for (const params of [{ temperature: 1 }, { temperature: 0.7, topK: 40 }, { temperature: 1.2, topP: 0.9 },
      { temperature: 1, topP: 0.999 }, { temperature: 1, minP: 0.05 }, { temperature: 0.9, topK: 100, topP: 0.8, minP: 0.01 }])
      for (let i = 0; i < 20; i++) {
        const u = r();
        expect(ops.sample(t, params, u)).toBe(reference.sample(t, params, u));
      }
  });

  it('rejects bad parameters', () => {
    const t = Tensor.fromF32([1, 2], [2]);
    expect(() => ops.sample(t, { temperature: -1 }, 0.5)).toThrow(RangeError);
    expect(() => ops.sample(t, { topP: 0 }, 0.5)).toThrow(/topP/);
    expect(() => ops.sample(t, {}, 1)).toThrow(/uniform/);
    expect(() => ops.sample(Tensor.fromI32([1], [1]), {}, 0.5)).toThrow(TypeError);
  });
});
