// Synthetic weights (createSyntheticModel, native/model/synthetic.cpp) against the checkpoint writer
// (scripts/checkpoint-writer.mjs): the same bytes for the same shape and seed, hence the same logits
// as loadModel of the written checkpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSyntheticModel,
  loadModel,
  parseConfig,
  syntheticConfig,
  SYNTHETIC_PRESETS,
  SYNTHETIC_PRESET_SEEDS,
  type SyntheticShape,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { checkpointTensors, PRESETS, TINY, tensorData, totalTensorBytes, writeCheckpoint, type CheckpointSpec } from './helpers/checkpoint.js';
import { readJson, relL2 } from './helpers/fixtures.js';

// Odd sizes on purpose: 3 query heads (sinks: an odd bf16 count, half a stream word at the end), 5
// experts, intermediate 128 (the writer's Math.round(-0.5) = 0 scale shift), hidden 96 (shift -1),
// a 16384 x 96 embedding (1.5M draws: every 16-bit normal-table index).
const SMALL: SyntheticShape = {
  vocabSize: 16384,
  hiddenSize: 96,
  intermediateSize: 128,
  numLayers: 2,
  numExperts: 5,
  expertsPerToken: 2,
  numHeads: 3,
  numKvHeads: 1,
  headDim: 16,
  slidingWindow: 4,
};
const spec = (shape: SyntheticShape, seed: number): CheckpointSpec => ({ ...shape, seed });
const TOKENS = [1, 5, 9, 200, 3, 77, 1000, 12, 4, 8, 15, 16];

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gpt-oss-synthetic-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('synthetic tensors', () => {
  it('are byte for byte the checkpoint writer\'s, however the streams are cut (jump-ahead)', () => {
    for (const seed of [0, 7, 2 ** 40 + 3]) {
      const config = syntheticConfig(SMALL);
      for (const t of checkpointTensors(spec(SMALL, seed))) {
        const want = tensorData(t, seed);
        for (const chunkWords of [1 << 20, 37, 1]) {
          if (chunkWords === 1 && t.nbytes > 1 << 16) continue; // word-by-word jumps only on the small ones
          const got = Buffer.from(native.NativeModel.syntheticTensor({ config, seed }, t.name, chunkWords));
          expect(got.length, t.name).toBe(t.nbytes);
          expect(got.equals(want), `${t.name} seed ${seed} chunk ${chunkWords}`).toBe(true);
        }
      }
    }
  });

  it('a name the config has no tensor for is a RangeError naming it', () => {
    const config = syntheticConfig(SMALL);
    expect(() => native.NativeModel.syntheticTensor({ config, seed: 1 }, 'model.layers.2.self_attn.sinks', 16)).toThrow(RangeError);
    expect(() => native.NativeModel.syntheticTensor({ config, seed: 1 }, 'model.layers.0.mlp.experts.gate_up_proj', 16)).toThrow(
      /gate_up_proj'/,
    );
  });
});

describe('createSyntheticModel', () => {
  async function compareWithCheckpoint(shape: SyntheticShape | 'tiny', seed: number | undefined, writerSpec: CheckpointSpec, layers?: number) {
    const dir = join(tmp, `${typeof shape === 'string' ? shape : 'custom'}-${seed}-${layers ?? 'all'}`);
    await writeCheckpoint(dir, writerSpec);
    const loaded = await loadModel(dir, { device: 'cpu' });
    const synthetic = await createSyntheticModel(shape, { device: 'cpu', seed, layers });
    try {
      expect(synthetic.config).toEqual(loaded.config);
      expect(synthetic.info.weightBytes).toBe(totalTensorBytes(writerSpec));
      const tokens = TOKENS.map((t) => t % writerSpec.vocabSize);
      const a = await loaded.forward(tokens);
      const b = await synthetic.forward(tokens);
      expect(relL2(b, a)).toBe(0);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      return b;
    } finally {
      await loaded.dispose();
      await synthetic.dispose();
    }
  }

  it('computes exactly the logits of the written checkpoint (tiny preset, its default seed)', async () => {
    await compareWithCheckpoint('tiny', undefined, TINY);
  });

  it('computes exactly the logits of the written checkpoint (custom shapes, several seeds, fewer layers)', async () => {
    const x = await compareWithCheckpoint(SMALL, 3, spec(SMALL, 3));
    const y = await compareWithCheckpoint(SMALL, 2 ** 33 + 1, spec(SMALL, 2 ** 33 + 1));
    expect(relL2(x, y)).toBeGreaterThan(0.1); // another seed, other weights
    // `layers` keeps the first layers of the full model: the writer's checkpoint with numLayers 1
    await compareWithCheckpoint(SMALL, 3, spec({ ...SMALL, numLayers: 1 }, 3), 1);
  });

  it('denseWeights: \'q8\' gives the logits of the written checkpoint loaded with denseWeights: \'q8\'', async () => {
    const dir = join(tmp, 'tiny-q8');
    await writeCheckpoint(dir, TINY);
    const loaded = await loadModel(dir, { device: 'cpu', denseWeights: 'q8' });
    const synthetic = await createSyntheticModel('tiny', { device: 'cpu', denseWeights: 'q8' });
    const plain = await createSyntheticModel('tiny', { device: 'cpu' });
    try {
      const tokens = TOKENS.map((t) => t % TINY.vocabSize);
      const a = await loaded.forward(tokens), b = await synthetic.forward(tokens), c = await plain.forward(tokens);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      expect(relL2(b, c)).toBeGreaterThan(1e-4); // it did quantize
    } finally {
      await loaded.dispose();
      await synthetic.dispose();
      await plain.dispose();
    }
  });

  it('says it is synthetic, runs sessions, and reports progress up to the total', async () => {
    const seen: Array<[number, number]> = [];
    const model = await createSyntheticModel('tiny', { device: 'cpu', seed: 11, onProgress: (d, t) => seen.push([d, t]) });
    try {
      expect(model.info).toMatchObject({ source: 'synthetic', seed: 11, preset: 'tiny', device: 'cpu', bytesOnDisk: 0, files: [] });
      const total = totalTensorBytes({ ...TINY, seed: 11 });
      expect(model.info.weightBytes).toBe(total);
      expect(seen.length).toBeGreaterThan(0);
      for (let i = 0; i < seen.length; i++) {
        expect(seen[i][1]).toBe(total);
        if (i > 0) expect(seen[i][0]).toBeGreaterThanOrEqual(seen[i - 1][0]);
      }
      expect(seen[seen.length - 1][0]).toBe(total);
      const s = model.createSession({ maxContext: 16 });
      await s.prefill([1, 2, 3]);
      const next = await s.stepSample(4, { temperature: 0 }, 0.5);
      expect(next).toBeGreaterThanOrEqual(0);
      expect(next).toBeLessThan(1024);
      expect(s.length).toBe(4);
      await s.dispose();
    } finally {
      await model.dispose();
    }
  });

  it('rejects bad arguments with typed errors naming the argument', async () => {
    const bad = async (shape: unknown, options: unknown, type: typeof TypeError | typeof RangeError, re: RegExp) => {
      let err: unknown;
      try {
        await createSyntheticModel(shape as never, options as never);
      } catch (e) {
        err = e;
      }
      expect(err, `${JSON.stringify(shape)} ${JSON.stringify(options)}`).toBeInstanceOf(type);
      expect((err as Error).message).toMatch(re);
    };
    await bad('7b', {}, RangeError, /unknown preset '7b'.*tiny, 20b, 120b/);
    await bad(null, {}, TypeError, /argument 'shape'/);
    await bad('tiny', { seed: -1 }, RangeError, /option 'seed'/);
    await bad('tiny', { seed: 1.5 }, RangeError, /option 'seed'/);
    await bad('tiny', { seed: 2 ** 53 }, RangeError, /option 'seed'/);
    await bad('tiny', { seed: '3' }, TypeError, /option 'seed'/);
    await bad('tiny', { layers: 0 }, RangeError, /option 'layers' must be an integer in \[1, 4\]/);
    await bad('120b', { layers: 37 }, RangeError, /option 'layers' must be an integer in \[1, 36\]/);
    await bad('tiny', { layers: '2' }, TypeError, /option 'layers'/);
    await bad('tiny', { device: 'tpu' }, RangeError, /createSyntheticModel: unknown device 'tpu'/);
    await bad('tiny', { onProgress: 5 }, TypeError, /option 'onProgress'/);
    await bad('tiny', { denseWeights: 'q4' }, RangeError, /option 'denseWeights' must be 'as-stored' or 'q8'/);
    await bad('tiny', { device: 'cpu', activations: 'bf16' }, RangeError, /createSyntheticModel: option 'activations' 'bf16' is a CUDA mode.*device cpu multiplies f32 or q8/);
    await bad('tiny', 5, TypeError, /argument 'options'/);
    await bad({ ...SMALL, hiddenSize: 100 }, {}, RangeError, /shape\.hiddenSize must be a multiple of 32/);
    await bad({ ...SMALL, numKvHeads: 2 }, {}, RangeError, /shape\.numKvHeads 2 must divide shape\.numHeads 3/);
    await bad({ ...SMALL, expertsPerToken: 6 }, {}, RangeError, /shape\.expertsPerToken/);
    await bad({ ...SMALL, numLayers: undefined }, {}, TypeError, /shape\.numLayers must be a number/);
    await bad({ ...SMALL, headDim: 15 }, {}, RangeError, /shape\.headDim must be even/);
  });
});

describe('synthetic presets', () => {
  it('the native loader refuses activations \'bf16\' off CUDA too (the model checks what the TypeScript side checks)', async () => {
    const config = syntheticConfig('tiny');
    let err: unknown;
    try {
      await native.NativeModel.synthetic({ config, seed: 1, device: 'cpu', activations: 'bf16' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/activations 'bf16' is a CUDA mode; device cpu multiplies f32 or q8 activations/);
    err = undefined;
    try {
      await native.NativeModel.synthetic({ config, seed: 1, device: 'cpu', activations: 'q4' as never });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/spec\.activations must be 'f32', 'q8' or 'bf16', got 'q4'/);
  });

  it('tiny is test/fixtures/tiny-a\'s config, and the default seeds are the writer\'s (nothing allocated)', () => {
    // SYNTHETIC_PRESETS are the writer's objects; what ties them to the outside world is the fixture
    // transformers made, and the seeds the written checkpoints were made with.
    expect(syntheticConfig('tiny')).toEqual(parseConfig(readJson('tiny-a', 'config.json')));
    expect(SYNTHETIC_PRESET_SEEDS).toEqual({ tiny: 20251101, '20b': 20, '120b': 120 });
    expect(SYNTHETIC_PRESETS['20b']).toBe(PRESETS['20b']);
  });

  it('have the gpt-oss-20b and gpt-oss-120b shapes', () => {
    const common = {
      vocabSize: 201088, hiddenSize: 2880, intermediateSize: 2880, numHeads: 64, numKvHeads: 8, headDim: 64, slidingWindow: 128,
      expertsPerToken: 4, ropeTheta: 150000, rmsNormEps: 1e-5, swigluLimit: 7, maxPositionEmbeddings: 131072,
      ropeScaling: { type: 'yarn', factor: 32, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, truncate: false },
    };
    const c20 = syntheticConfig('20b');
    const c120 = syntheticConfig('120b');
    expect(c20).toMatchObject({ ...common, numLayers: 24, numExperts: 32 });
    expect(c120).toMatchObject({ ...common, numLayers: 36, numExperts: 128 });
    expect(c120.layerTypes.slice(0, 4)).toEqual(['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']);
    expect(SYNTHETIC_PRESETS['120b'].numExperts).toBe(128);
    // the checkpoint sizes: 13.8 GB and 65.2 GB of tensors
    expect(totalTensorBytes(PRESETS['20b'])).toBeGreaterThan(13.7e9);
    expect(totalTensorBytes(PRESETS['120b'])).toBeGreaterThan(65e9);
    const short = syntheticConfig('120b', { layers: 2 });
    expect(short.numLayers).toBe(2);
    expect(short.layerTypes).toEqual(['sliding_attention', 'full_attention']);
  });
});
