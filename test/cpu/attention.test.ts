import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { availableIsas, f32, randint, randn, relL2, rng, withIsa } from './util.js';

describe('attention with sinks', () => {
  for (const isa of availableIsas()) {
    it(`matches the reference under ${isa} (prefill and decode, sliding and full)`, () => {
      const r = rng(`attention-${isa}`);
      withIsa(isa, () => {
        for (const window of [0, randint(r, 1, 20)]) {
          const hkv = randint(r, 1, 4);
          const hq = hkv * randint(r, 1, 5);
          const d = randint(r, 1, 80);
          const ctx = randint(r, 20, 90);
          const n = randint(r, 1, 12);
          const start = randint(r, 0, ctx - n);
          const pos = Tensor.fromI32(Int32Array.from({ length: n }, (_, i) => start + i), [n]);
          const kc = Tensor.empty('f32', [ctx, hkv, d]);
          const vc = Tensor.empty('f32', [ctx, hkv, d]);
          // Earlier rows through kvStore (decode-style), then this chunk's rows.
          const past = Tensor.fromI32(Int32Array.from({ length: start }, (_, i) => i), [start]);
          if (start > 0)
            ops.kvStore(Tensor.fromF32(randn(r, start * hkv * d), [start, hkv, d]),
              Tensor.fromF32(randn(r, start * hkv * d), [start, hkv, d]), past, kc, vc);
          ops.kvStore(Tensor.fromF32(randn(r, n * hkv * d), [n, hkv, d]),
            Tensor.fromF32(randn(r, n * hkv * d), [n, hkv, d]), pos, kc, vc);
          const q = Tensor.fromF32(randn(r, n * hq * d), [n, hq, d]);
          const sinks = Tensor.fromBf16(randn(r, hq), [hq]);
          const a = Tensor.empty('f32', [n, hq, d]);
          const b = Tensor.empty('f32', [n, hq, d]);
          ops.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), a);
          reference.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  for (const isa of availableIsas()) {
    it(`decode over a long cache matches the reference under ${isa} (split-K chunks, GQA group > 8)`, () => {
      const r = rng(`attention-long-${isa}`);
      withIsa(isa, () => {
        // ctx > 256 splits one token's keys into chunks; group 10 needs two head tiles of <= 8.
        for (const [hkv, group, d, window] of [[2, 10, 64, 0], [8, 8, 64, 300], [1, 3, 37, 0]]) {
          const hq = hkv * group;
          const ctx = randint(r, 600, 1100);
          const kc = Tensor.fromF32(randn(r, ctx * hkv * d), [ctx, hkv, d]);
          const vc = Tensor.fromF32(randn(r, ctx * hkv * d), [ctx, hkv, d]);
          const pos = Tensor.fromI32([ctx - 1 - randint(r, 0, 20)], [1]);
          const q = Tensor.fromF32(randn(r, hq * d), [1, hq, d]);
          const sinks = Tensor.fromBf16(randn(r, hq), [hq]);
          const a = Tensor.empty('f32', [1, hq, d]);
          const b = Tensor.empty('f32', [1, hq, d]);
          ops.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), a);
          reference.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  for (const isa of availableIsas()) {
    it(`paged: sequences in shuffled pool blocks equal contiguous caches and the reference under ${isa}`, () => {
      const r = rng(`paged-attention-${isa}`);
      withIsa(isa, () => {
        for (const [blockSize, window] of [[4, 0], [16, 0], [5, 7], [16, 40]] as const) {
          const hkv = randint(r, 1, 3);
          const hq = hkv * randint(r, 1, 10);
          const d = randint(r, 8, 70);
          const seqs = randint(r, 1, 4);
          // Each sequence: a length and queries (a decode token or a chunk) at its end.
          const lens = Array.from({ length: seqs }, () => randint(r, 1, 300));
          const counts = lens.map((len) => Math.min(len, randint(r, 1, 6)));
          const need = lens.map((len) => Math.ceil(len / blockSize));
          const blocks = need.reduce((a, b) => a + b, 0) + 3; // a few blocks nobody holds
          // Hand out the pool's blocks in a random order.
          const order = Array.from({ length: blocks }, (_, i) => i);
          for (let i = order.length - 1; i > 0; i--) {
            const j = randint(r, 0, i);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const width = Math.max(...need);
          const tables = new Int32Array(seqs * width).fill(-1);
          let next = 0;
          for (let s = 0; s < seqs; s++) for (let b = 0; b < need[s]!; b++) tables[s * width + b] = order[next++]!;
          const row = hkv * d;
          const pool = { k: randn(r, blocks * blockSize * row), v: randn(r, blocks * blockSize * row) };
          const n = counts.reduce((a, b) => a + b, 0);
          const positions = new Int32Array(n);
          const seqOf = new Int32Array(n);
          let t = 0;
          for (let s = 0; s < seqs; s++)
            for (let j = 0; j < counts[s]!; j++, t++) {
              positions[t] = lens[s]! - counts[s]! + j;
              seqOf[t] = s;
            }
          const q = randn(r, n * hq * d);
          const sinks = Tensor.fromBf16(randn(r, hq), [hq]);
          const kc = Tensor.fromF32(pool.k, [blocks * blockSize, hkv, d]);
          const vc = Tensor.fromF32(pool.v, [blocks * blockSize, hkv, d]);
          const args = [Tensor.fromI32(positions, [n]), Tensor.fromI32(seqOf, [n]), Tensor.fromI32(tables, [seqs, width]), blockSize,
            window, 1 / Math.sqrt(d)] as const;
          const fast = Tensor.empty('f32', [n, hq, d]);
          const slow = Tensor.empty('f32', [n, hq, d]);
          ops.pagedAttention(Tensor.fromF32(q, [n, hq, d]), kc, vc, sinks, ...args, fast);
          reference.pagedAttention(Tensor.fromF32(q, [n, hq, d]), kc, vc, sinks, ...args, slow);
          expect(relL2(f32(fast), f32(slow))).toBeLessThan(1e-5);
          // Each sequence alone, its rows copied out of the pool into a contiguous cache.
          let first = 0;
          for (let s = 0; s < seqs; s++) {
            const len = lens[s]!, cnt = counts[s]!;
            const k = new Float32Array(len * row), v = new Float32Array(len * row);
            for (let p = 0; p < len; p++) {
              const src = (tables[s * width + Math.floor(p / blockSize)]! * blockSize + (p % blockSize)) * row;
              k.set(pool.k.subarray(src, src + row), p * row);
              v.set(pool.v.subarray(src, src + row), p * row);
            }
            const alone = Tensor.empty('f32', [cnt, hq, d]);
            ops.attention(Tensor.fromF32(q.slice(first * hq * d, (first + cnt) * hq * d), [cnt, hq, d]), Tensor.fromF32(k, [len, hkv, d]),
              Tensor.fromF32(v, [len, hkv, d]), sinks, Tensor.fromI32(positions.slice(first, first + cnt), [cnt]), window, 1 / Math.sqrt(d), alone);
            expect(relL2(f32(alone), f32(fast).slice(first * hq * d, (first + cnt) * hq * d))).toBeLessThan(1e-5);
            first += cnt;
          }
        }
      });
    });
  }

  it('paged: rejects a query past its table, a block outside the pool and a bad sequence index, naming them', () => {
    const kc = Tensor.empty('f32', [8, 1, 4]);
    const q = Tensor.empty('f32', [1, 2, 4]);
    const out = Tensor.empty('f32', [1, 2, 4]);
    const sinks = Tensor.empty('f32', [2]);
    const call = (pos: number, seq: number, table: number[], blockSize = 4) =>
      ops.pagedAttention(q, kc, kc, sinks, Tensor.fromI32([pos], [1]), Tensor.fromI32([seq], [1]), Tensor.fromI32(table, [1, table.length]),
        blockSize, 0, 1, out);
    expect(() => call(4, 0, [1])).toThrow(/position 4 at index 0 lies past the 1 blocks of its table/);
    expect(() => call(5, 0, [1, 2])).toThrow(/blockTables\[0\]\[1\] = 2 is not a block of the pool \(2 blocks\)/);
    expect(() => call(0, 1, [0])).toThrow(/seqOfToken\[0\] = 1 is not a row of blockTables/);
    expect(() => call(0, 0, [0], 3)).toThrow(/blockSize 3 must be >= 1 and divide the pool's 8 rows/);
    expect(() => call(3, 0, [1])).not.toThrow();
  });

  it('one key and a sink: out = v * e^s / (e^s + e^sink)', () => {
    const kc = Tensor.fromF32([1, 0], [1, 1, 2]);
    const vc = Tensor.fromF32([2, 4], [1, 1, 2]);
    const out = Tensor.empty('f32', [1, 1, 2]);
    ops.attention(Tensor.fromF32([3, 5], [1, 1, 2]), kc, vc, Tensor.fromF32([1], [1]), Tensor.fromI32([0], [1]), 0, 1, out);
    const p = Math.exp(3) / (Math.exp(3) + Math.exp(1));
    expect(f32(out)[0]).toBeCloseTo(2 * p, 5);
    expect(f32(out)[1]).toBeCloseTo(4 * p, 5);
  });

  it('rejects positions outside the cache and mismatched heads', () => {
    const kc = Tensor.empty('f32', [4, 2, 8]);
    const q = Tensor.empty('f32', [1, 4, 8]);
    const out = Tensor.empty('f32', [1, 4, 8]);
    const sinks = Tensor.empty('f32', [4]);
    expect(() => ops.attention(q, kc, kc, sinks, Tensor.fromI32([4], [1]), 0, 1, out)).toThrow(RangeError);
    expect(() => ops.attention(Tensor.empty('f32', [1, 3, 8]), kc, kc, Tensor.empty('f32', [3]),
      Tensor.fromI32([0], [1]), 0, 1, Tensor.empty('f32', [1, 3, 8]))).toThrow(/multiple of kv heads/);
    expect(() => ops.attention(q, kc, kc, sinks, Tensor.fromF32([0], [1]), 0, 1, out)).toThrow(/positions/);
    expect(() => ops.kvStore(Tensor.empty('f32', [1, 2, 8]), Tensor.empty('f32', [1, 2, 8]), Tensor.fromI32([9], [1]), kc, kc))
      .toThrow(RangeError);
  });
});
