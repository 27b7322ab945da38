// Every N-API entry point under garbage arguments: each call returns or throws a JS error; none
// crashes the process (a crash kills this test file's worker and fails the run).
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../lib/loader/index.js';
import { syntheticConfig } from '../lib/synthetic.js';
import { native } from '../lib/native.js';
import { fixtureDir } from './helpers/fixtures.js';

// A small deterministic PRNG so a failure replays.
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const A = native;
const tensors = () => [
  new A.Tensor('f32', [2, 64]),
  new A.Tensor('f32', [1, 2, 64]),
  new A.Tensor('bf16', [64]),
  new A.Tensor('bf16', [4, 64]),
  new A.Tensor('i32', [2], 'cpu', Int32Array.from([1, 3])),
  new A.Tensor('i32', [2, 2], 'cpu', Int32Array.from([0, 9, -5, 1 << 30])),
  new A.Tensor('u8', [7]),
  new A.Tensor('mxfp4', [2, 4, 64]),
  new A.Tensor('f32', [0]),
  (() => {
    const d = new A.Tensor('f32', [3]);
    d.dispose();
    return d;
  })(),
];
const scalars = [undefined, null, 0, -1, 1.5, 2 ** 40, NaN, Infinity, 'x', '', true, {}, [], [1, -2], () => 0, Symbol('s'), 10n];

function garbage(rand: () => number, pool: unknown[]): unknown {
  return pool[Math.floor(rand() * pool.length)];
}

function callSafely(fn: () => unknown): 'ok' | 'threw' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message.length).toBeGreaterThan(0);
    return 'threw';
  }
}

describe('N-API entry points under garbage arguments', () => {
  it('kernel ops (fast and reference) throw named errors and never crash', () => {
    const rand = prng(20261129);
    const pool = [...tensors(), ...scalars];
    const names = ['embedding', 'rmsnorm', 'linear', 'rope', 'kvStore', 'attention', 'router', 'moe', 'add', 'mxfp4Dequantize', 'sample'];
    let threw = 0;
    for (const table of [A.ops, A.ops.reference]) {
      for (const name of names) {
        const fn = table[name] as (...args: unknown[]) => unknown;
        for (let trial = 0; trial < 150; trial++) {
          const argc = Math.floor(rand() * 10);
          const args = Array.from({ length: argc }, () => garbage(rand, pool));
          if (callSafely(() => fn(...args)) === 'threw') threw++;
        }
      }
    }
    // Nearly every garbage call is rejected (a few random ones can be valid).
    expect(threw).toBeGreaterThan(0.9 * 2 * 11 * 150);
  });

  it('Tensor construction, reads and moves reject garbage', () => {
    const rand = prng(7);
    const dtypes = ['f32', 'bf16', 'i32', 'u8', 'mxfp4', 'f64', '', 3];
    const shapes = [[], [2], [2, 32], [-1], [1.5], ['a'], [2 ** 41], [1, 2, 3, 4, 5, 6, 7, 8, 9], 'x', undefined];
    const devices = ['cpu', 'cuda', 'cuda:7', 'cuda:x', 'tpu', undefined, 4];
    const datas = [undefined, new Float32Array(64), new Uint8Array(3), new ArrayBuffer(256), 'bytes', [1, 2]];
    for (let trial = 0; trial < 400; trial++) {
      callSafely(() => {
        const t = new A.Tensor(
          garbage(rand, dtypes) as 'f32',
          garbage(rand, shapes) as number[],
          garbage(rand, devices) as string,
          garbage(rand, datas) as Float32Array,
          garbage(rand, datas) as Uint8Array,
        );
        t.read();
        t.to(garbage(rand, devices) as string);
        t.readScales();
      });
    }
    const t = new A.Tensor('f32', [4]);
    t.dispose();
    expect(() => t.read()).toThrow(/disposed/);
    expect(() => A.ops.add(t, new A.Tensor('f32', [4]))).toThrow(TypeError);
  });

  it('NativeModel.load and NativeSession reject garbage specs and arguments', async () => {
    const rand = prng(99);
    const specs: unknown[] = [
      undefined,
      {},
      { config: {} },
      { config: { vocabSize: 'x' }, files: [], tensors: [] },
      { config: { vocabSize: 8, hiddenSize: 32 }, files: [fixtureDir('tiny-a') + '/model.safetensors'], tensors: [{}] },
      { config: null, files: 'x', tensors: 5, device: 'cuda:99' },
    ];
    for (const spec of specs) {
      let err: unknown;
      try {
        await A.NativeModel.load(spec as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
    }
    for (let trial = 0; trial < 50; trial++) {
      callSafely(() => new A.NativeSession(garbage(rand, [...scalars, A.Tensor]) as never, garbage(rand, scalars) as number));
    }
  });

  it('NativeModel.synthetic and NativeModel.syntheticTensor reject garbage specs and arguments', async () => {
    const config = syntheticConfig('tiny');
    const specs: unknown[] = [
      undefined,
      null,
      5,
      {},
      { config: {}, seed: 1 },
      { config, seed: -1 },
      { config, seed: 1.5 },
      { config, seed: '3' },
      { config, seed: NaN },
      { config, seed: 2 ** 53 },
      { config, seed: 10n },
      { config, seed: 1, device: 'tpu' },
      { config, seed: 1, device: 'cuda:99' },
      { config: { ...config, hiddenSize: 100 }, seed: 1, device: 'cpu' },
      { config: { ...config, numKvHeads: 3 }, seed: 1, device: 'cpu' },
      { config: { ...config, layerTypes: ['sliding_attention'] }, seed: 1, device: 'cpu' },
    ];
    for (const spec of specs) {
      let err: unknown;
      try {
        await A.NativeModel.synthetic(spec as never, garbage(prng(3), scalars) as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(spec, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).toBeInstanceOf(Error);
    }
    const rand = prng(17);
    const names = ['model.norm.weight', 'model.layers.0.mlp.experts.gate_up_proj', 'x', '', 5, undefined];
    for (let trial = 0; trial < 60; trial++) {
      const spec = garbage(rand, [...specs.slice(0, 8), { config, seed: 1 }]);
      callSafely(() => A.NativeModel.syntheticTensor(spec as never, garbage(rand, names) as string, garbage(rand, [0, -1, 16, 1.5, 'x', undefined]) as number));
    }
  });

  it('a live session rejects garbage forward/sample/step/truncate calls and still works after', async () => {
    const ck = openCheckpoint(fixtureDir('tiny-a'));
    const model = await A.NativeModel.load({ config: ck.config, files: ck.files, tensors: ck.tensors, device: 'cpu' });
    const s = new A.NativeSession(model, 16);
    const rand = prng(5);
    const tokenArgs = [new Int32Array([1, 2]), new Int32Array([]), new Int32Array([5000]), new Float32Array([1]), [1, 2], 'ab', undefined];
    const modes = ['all', 'last', 'none', 'most', 3, undefined];
    const params = [{ temperature: 0, topK: 0, topP: 1, minP: 0 }, { temperature: -1, topK: 0, topP: 1, minP: 0 }, { temperature: 0 }, {}, null, 'p'];
    for (let trial = 0; trial < 120; trial++) {
      const which = Math.floor(rand() * 4);
      try {
        if (which === 0) await s.forward(garbage(rand, tokenArgs) as Int32Array, garbage(rand, modes) as 'all');
        else if (which === 1) await s.sample(garbage(rand, params) as never, garbage(rand, [0.5, 1, -0.1, NaN, 'u']) as number);
        else if (which === 2) await s.step(garbage(rand, [1, -1, 5000, 1.5, 'x']) as number, garbage(rand, params) as never, 0.5);
        else s.truncate(garbage(rand, [0, 1, -1, 100, 'x', undefined]) as number);
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
      }
    }
    // Still consistent: reset and run a real forward.
    s.truncate(0);
    const logits = await s.forward(new Int32Array([1, 2, 3]), 'all');
    expect(logits.length).toBe(3 * 1024);
    expect(s.length).toBe(3);
    s.dispose();
    model.dispose();
  });
});
