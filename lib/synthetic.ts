// createSyntheticModel: a gpt-oss model of any shape whose weights are random numbers generated in
// memory, for benchmarking shapes whose checkpoint is not at hand (gpt-oss-120b is ~65 GB). It runs
// exactly like a loaded model (sessions, generate) but its output means nothing: not for inference.
//
// The weights are byte for byte those scripts/checkpoint-writer.mjs writes for the same shape and seed
// (native/model/synthetic.cpp), so a synthetic model and `loadModel` of a written checkpoint compute
// the same logits. The presets are the writer's objects (tiny, 20b, 120b), with its default seeds.
import { native } from './native.js';
import { parseConfig, type ModelConfig } from './loader/config.js';
import { GptOssModel, autoDeviceForFormat, resolveActivations, resolveDevice, resolveKvCache, type DeviceRequest, type KvCacheDtype } from './model.js';
import type { ExpertActivations } from './ops.js';
// The presets and the shape type are the writer's: one definition of each (the writer is plain JS so
// that it runs without TypeScript; it ships with the package under scripts/).
import { configJson, PRESETS, type CheckpointSpec } from '../scripts/checkpoint-writer.mjs';

/**
 * A model shape, in the checkpoint writer's terms (its CheckpointSpec without the seed; fields and
 * defaults documented in scripts/checkpoint-writer.d.mts). The fields that only shape a config.json
 * file (token ids, torch dtype, ...) are accepted and ignored.
 */
export type SyntheticShape = Omit<CheckpointSpec, 'seed'>;

export type SyntheticPreset = 'tiny' | '20b' | '120b';

/**
 * The checkpoint writer's presets, the writer's own objects: `tiny` (test/fixtures/tiny-a's shape),
 * `20b` and `120b` (the openai/gpt-oss-20b and -120b shapes: 24 layers x 32 experts, 36 layers x 128
 * experts).
 */
export const SYNTHETIC_PRESETS: Readonly<Record<SyntheticPreset, Readonly<SyntheticShape>>> = Object.freeze({
  tiny: PRESETS.tiny,
  '20b': PRESETS['20b'],
  '120b': PRESETS['120b'],
});

/** The writer's default seed of each preset (a custom shape's default seed is 0, as the writer's). */
export const SYNTHETIC_PRESET_SEEDS: Readonly<Record<SyntheticPreset, number>> = Object.freeze({
  tiny: Number(PRESETS.tiny.seed),
  '20b': Number(PRESETS['20b'].seed),
  '120b': Number(PRESETS['120b'].seed),
});

export interface SyntheticOptions {
  /** default 'auto' (CUDA when usable, else the CPU) */
  device?: DeviceRequest;
  /** integer in [0, 2^53); default: the preset's seed, 0 for a custom shape */
  seed?: number;
  /** keep only the first `layers` layers (1 to the shape's numLayers): a shorter model of the same width */
  layers?: number;
  /** called as weights are generated and bound: bytes done of total */
  onProgress?: (done: number, total: number) => void;
  /** as LoadOptions.activations */
  activations?: ExpertActivations;
  /** as LoadOptions.kvCache */
  kvCache?: KvCacheDtype;
  /** as LoadOptions.denseWeights: 'q8' quantizes the generated attention projections and LM head to Q8_0 */
  denseWeights?: 'as-stored' | 'q8';
  /**
   * 'bf16': the generated MXFP4 experts dequantized (exactly) to bf16 and run by the bf16 expert kernels,
   * as LoadOptions.experts 'bf16' runs a fine-tuned checkpoint: the same model's values at 4x the expert
   * bytes. Runs on the CPU and CUDA; under device 'auto' with a HIP GPU it stays on the CPU, as loadModel's.
   */
  experts?: 'mxfp4' | 'bf16';
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
  // The config.json the writer would write for this shape, read as a loaded checkpoint's is.
  const json: unknown = JSON.parse(configJson({ ...s, numLayers, seed: 0 }));
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
  const experts = options.experts ?? 'mxfp4';
  if (experts !== 'mxfp4' && experts !== 'bf16')
    throw new RangeError(`${FN}: option 'experts' must be 'mxfp4' or 'bf16', got ${String(experts)}`);
  const request = options.device ?? 'auto';
  const { device, fallbackReason } = autoDeviceForFormat(request, resolveDevice(request, FN), 'safetensors', experts === 'bf16');
  const activations = resolveActivations(options.activations, device, FN);
  const kvCache = resolveKvCache(options.kvCache, device, FN);
  const onProgress = options.onProgress;
  const denseWeights = options.denseWeights ?? 'as-stored';
  if (denseWeights !== 'as-stored' && denseWeights !== 'q8')
    throw new RangeError(`${FN}: option 'denseWeights' must be 'as-stored' or 'q8', got ${String(denseWeights)}`);
  let nativeModel;
  if (!onProgress) {
    nativeModel = await native.NativeModel.synthetic({ config, seed, device, activations, kvCache, denseWeights, experts });
  } else {
    // Reports travel on their own queue and can land after the promise settles: resolve only once the
    // last one (done === total, always sent) has been delivered.
    let delivered!: () => void;
    const last = new Promise<void>((resolve) => (delivered = resolve));
    nativeModel = await native.NativeModel.synthetic({ config, seed, device, activations, kvCache, denseWeights, experts }, (done, total) => {
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
