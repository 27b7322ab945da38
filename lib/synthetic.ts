// createSyntheticModel: a gpt-oss model of any shape whose weights are random numbers generated in
// memory, for benchmarking shapes whose checkpoint is not at hand (gpt-oss-120b is ~65 GB). It runs
// exactly like a loaded model (sessions, generate) but its output means nothing: not for inference.
//
// The weights are byte for byte those scripts/checkpoint-writer.mjs writes for the same shape and seed
// (native/model/synthetic.cpp), so a synthetic model and `loadModel` of a written checkpoint compute
// the same logits. The presets are the writer's (tiny, 20b, 120b), with its default seeds.
import { native } from './native.js';
import { parseConfig, type ModelConfig } from './loader/config.js';
import { GptOssModel, resolveDevice, type DeviceRequest } from './model.js';

/** A model shape, in the checkpoint writer's terms (its CheckpointSpec without the seed). */
export interface SyntheticShape {
  vocabSize: number;
  hiddenSize: number;
  /** per expert */
  intermediateSize: number;
  numLayers: number;
  numExperts: number;
  expertsPerToken: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** window of the sliding layers (the even ones) */
  slidingWindow: number;
  /** default 150000 */
  ropeTheta?: number;
  /** YaRN; default factor 32, originalMaxPositionEmbeddings 4096, betaFast 32, betaSlow 1, truncate false */
  rope?: Partial<{ factor: number; originalMaxPositionEmbeddings: number; betaFast: number; betaSlow: number; truncate: boolean }>;
  /** default 1e-5 */
  rmsNormEps?: number;
  /** default 7 */
  swigluLimit?: number;
  /** default 131072 */
  maxPositionEmbeddings?: number;
  /** default 4096 */
  initialContextLength?: number;
  eosTokenId?: number | null;
}

export type SyntheticPreset = 'tiny' | '20b' | '120b';

const COMMON = {
  ropeTheta: 150000,
  rope: { factor: 32, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, truncate: false },
  rmsNormEps: 1e-5,
  swigluLimit: 7,
  maxPositionEmbeddings: 131072,
  initialContextLength: 4096,
} as const;

const GPT_OSS_20B: SyntheticShape = {
  ...COMMON,
  vocabSize: 201088,
  hiddenSize: 2880,
  intermediateSize: 2880,
  numLayers: 24,
  numExperts: 32,
  expertsPerToken: 4,
  numHeads: 64,
  numKvHeads: 8,
  headDim: 64,
  slidingWindow: 128,
  eosTokenId: 200002,
};

/**
 * The checkpoint writer's presets: `tiny` (test/fixtures/tiny-a's shape), `20b` and `120b` (the
 * openai/gpt-oss-20b and -120b shapes: 24 layers x 32 experts, 36 layers x 128 experts).
 */
export const SYNTHETIC_PRESETS: Readonly<Record<SyntheticPreset, Readonly<SyntheticShape>>> = Object.freeze({
  tiny: Object.freeze({
    ...COMMON,
    vocabSize: 1024,
    hiddenSize: 256,
    intermediateSize: 256,
    numLayers: 4,
    numExperts: 8,
    expertsPerToken: 2,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    slidingWindow: 16,
    eosTokenId: null,
  }),
  '20b': Object.freeze(GPT_OSS_20B),
  '120b': Object.freeze({ ...GPT_OSS_20B, numLayers: 36, numExperts: 128 }),
});

/** The writer's default seed of each preset (a custom shape's default seed is 0, as the writer's). */
export const SYNTHETIC_PRESET_SEEDS: Readonly<Record<SyntheticPreset, number>> = Object.freeze({ tiny: 20251101, '20b': 20, '120b': 120 });

export interface SyntheticOptions {
  /** default 'auto' (CUDA when usable, else the CPU) */
  device?: DeviceRequest;
  /** integer in [0, 2^53); default: the preset's seed, 0 for a custom shape */
  seed?: number;
  /** keep only the first `layers` layers (1 to the shape's numLayers): a shorter model of the same width */
  layers?: number;
  /** called as weights are generated and bound: bytes done of total */
  onProgress?: (done: number, total: number) => void;
}

const FN = 'createSyntheticModel';
const PRESET_NAMES = Object.keys(SYNTHETIC_PRESETS) as SyntheticPreset[];

function resolveShape(shape: SyntheticPreset | SyntheticShape): { shape: SyntheticShape; preset?: SyntheticPreset } {
  if (typeof shape === 'string') {
    if (!Object.hasOwn(SYNTHETIC_PRESETS, shape))
      throw new RangeError(`${FN}: unknown preset '${shape}' (expected ${PRESET_NAMES.join(', ')} or a shape object)`);
    return { shape: SYNTHETIC_PRESETS[shape], preset: shape };
  }
  if (shape === null || typeof shape !== 'object' || Array.isArray(shape))
    throw new TypeError(`${FN}: argument 'shape' must be a preset name (${PRESET_NAMES.join(', ')}) or a shape object`);
  return { shape };
}

function checkShape(s: SyntheticShape): void {
  const ints = ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numExperts', 'expertsPerToken', 'numHeads', 'numKvHeads', 'headDim', 'slidingWindow'] as const;
  for (const k of ints) {
    const v: unknown = s[k];
    if (typeof v !== 'number') throw new TypeError(`${FN}: shape.${k} must be a number, got ${typeof v}`);
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${FN}: shape.${k} must be a positive integer, got ${v}`);
  }
  for (const k of ['hiddenSize', 'intermediateSize'] as const)
    if (s[k] % 32 !== 0) throw new RangeError(`${FN}: shape.${k} must be a multiple of 32 (MXFP4 blocks), got ${s[k]}`);
  if (s.headDim % 2 !== 0) throw new RangeError(`${FN}: shape.headDim must be even (RoPE rotates two halves), got ${s.headDim}`);
  if (s.numHeads % s.numKvHeads !== 0)
    throw new RangeError(`${FN}: shape.numKvHeads ${s.numKvHeads} must divide shape.numHeads ${s.numHeads}`);
  if (s.expertsPerToken > s.numExperts)
    throw new RangeError(`${FN}: shape.expertsPerToken ${s.expertsPerToken} exceeds shape.numExperts ${s.numExperts}`);
}

/**
 * The model config of a synthetic shape (what `model.config` will be), without generating anything:
 * the config.json the checkpoint writer would write, read by the same parser as loadModel's.
 */
export function syntheticConfig(shape: SyntheticPreset | SyntheticShape, options: Pick<SyntheticOptions, 'layers'> = {}): ModelConfig {
  const { shape: s } = resolveShape(shape);
  checkShape(s);
  let numLayers = s.numLayers;
  if (options.layers !== undefined) {
    const l: unknown = options.layers;
    if (typeof l !== 'number') throw new TypeError(`${FN}: option 'layers' must be a number, got ${typeof l}`);
    if (!Number.isSafeInteger(l) || l < 1 || l > s.numLayers)
      throw new RangeError(`${FN}: option 'layers' must be an integer in [1, ${s.numLayers}], got ${l}`);
    numLayers = l;
  }
  const rope = { ...COMMON.rope, ...(s.rope ?? {}) };
  const json = {
    model_type: 'gpt_oss',
    vocab_size: s.vocabSize,
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: numLayers,
    num_local_experts: s.numExperts,
    num_experts_per_tok: s.expertsPerToken,
    experts_per_token: s.expertsPerToken,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    head_dim: s.headDim,
    sliding_window: s.slidingWindow,
    layer_types: Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention')),
    rope_theta: s.ropeTheta ?? COMMON.ropeTheta,
    rope_scaling: {
      rope_type: 'yarn',
      factor: rope.factor,
      original_max_position_embeddings: rope.originalMaxPositionEmbeddings,
      beta_fast: rope.betaFast,
      beta_slow: rope.betaSlow,
      truncate: rope.truncate,
    },
    initial_context_length: s.initialContextLength ?? COMMON.initialContextLength,
    rms_norm_eps: s.rmsNormEps ?? COMMON.rmsNormEps,
    swiglu_limit: s.swigluLimit ?? COMMON.swigluLimit,
    max_position_embeddings: s.maxPositionEmbeddings ?? COMMON.maxPositionEmbeddings,
    eos_token_id: s.eosTokenId ?? null,
  };
  return parseConfig(json, `synthetic ${typeof shape === 'string' ? shape : 'shape'}`);
}

/**
 * A gpt-oss model with random weights generated in memory (no files): for benchmarks at any shape.
 *
 *   const model = await createSyntheticModel('120b', { device: 'cuda' });   // model.info.source === 'synthetic'
 *
 * The weights are those scripts/checkpoint-writer.mjs (make-checkpoint) writes for the same shape and
 * seed. On the CPU they take the model's size in anonymous memory; on a GPU the host only holds a
 * couple of GiB at a time while they are uploaded.
 */
export async function createSyntheticModel(shape: SyntheticPreset | SyntheticShape, options: SyntheticOptions = {}): Promise<GptOssModel> {
  if (options === null || typeof options !== 'object') throw new TypeError(`${FN}: argument 'options' must be an object`);
  const { preset } = resolveShape(shape);
  const config = syntheticConfig(shape, { layers: options.layers });
  const seedArg: unknown = options.seed ?? (preset ? SYNTHETIC_PRESET_SEEDS[preset] : 0);
  if (typeof seedArg !== 'number') throw new TypeError(`${FN}: option 'seed' must be a number, got ${typeof seedArg}`);
  if (!Number.isSafeInteger(seedArg) || seedArg < 0) throw new RangeError(`${FN}: option 'seed' must be an integer in [0, 2^53), got ${seedArg}`);
  const seed = seedArg;
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new TypeError(`${FN}: option 'onProgress' must be a function`);
  const { device, fallbackReason } = resolveDevice(options.device ?? 'auto', FN);
  const onProgress = options.onProgress;
  let nativeModel;
  if (!onProgress) {
    nativeModel = await native.NativeModel.synthetic({ config, seed, device });
  } else {
    // Reports travel on their own queue and can land after the promise settles: resolve only once the
    // last one (done === total, always sent) has been delivered.
    let delivered!: () => void;
    const last = new Promise<void>((resolve) => (delivered = resolve));
    nativeModel = await native.NativeModel.synthetic({ config, seed, device }, (done, total) => {
      try {
        onProgress(done, total);
      } finally {
        if (done === total) delivered();
      }
    });
    await last;
  }
  return new GptOssModel(nativeModel, { source: 'synthetic', config, seed, ...(preset ? { preset } : {}) }, fallbackReason);
}
