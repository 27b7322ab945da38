// What the native addon exports, stated exactly (the TypeScript side never reaches past this).
import type { ModelConfig } from './loader/config.js';

export type DTypeName = 'f32' | 'bf16' | 'f16' | 'i32' | 'u8' | 'mxfp4' | 'mxfp4-ggml' | 'q8_0';

export interface NativeTensor {
  readonly dtype: DTypeName;
  readonly shape: number[];
  readonly device: string;
  readonly nbytes: number;
  read(): ArrayBuffer;
  readScales(): ArrayBuffer;
  to(device: string): NativeTensor;
  dispose(): void;
}

export interface NativeTensorConstructor {
  new (
    dtype: DTypeName,
    shape: readonly number[],
    device?: string,
    data?: ArrayBufferView | ArrayBuffer,
    scales?: ArrayBufferView | ArrayBuffer,
  ): NativeTensor;
}

// The model hyper-parameters the native side reads (by these names) from the parsed config.json.
export type NativeConfig = Omit<ModelConfig, 'eosTokenIds'>;

export interface NativeTensorRecord {
  name: string;
  file: number;
  dtype: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface NativeModelSpec {
  config: NativeConfig;
  /** The config.json the config came from (ConfigErrors from the native side name it). */
  configFile?: string;
  files: string[];
  tensors: NativeTensorRecord[];
  device: string;
  activations?: 'f32' | 'q8' | 'bf16';
  /** The KV cache dtype (absent: the backend's default); checked against the device natively too. */
  kvCache?: 'f16' | 'bf16' | 'f32' | 'f32k-f16v';
  /** 'safetensors' (Hugging Face names and dtypes, default) or 'gguf' (llama.cpp names, ggml types). */
  format?: 'safetensors' | 'gguf';
  /** 'q8': quantize bf16/f16/f32 attention projections and the LM head to Q8_0 at load. */
  denseWeights?: 'as-stored' | 'q8';
  /** Experts stored dense (fine-tuned bf16 checkpoints): 'mxfp4' quantizes at load, 'bf16' runs them as stored (CUDA: transposed at upload). */
  experts?: 'mxfp4' | 'bf16';
}

/** One tensor group as loaded (native/model LoadGroup). */
export interface NativeLoadGroup {
  group: string;
  /** dtypes as stored in the file, '+'-joined */
  fileDtype: string;
  /** dtypes the model runs from */
  dtype: string;
  fileBytes: number;
  memoryBytes: number;
  /** of memoryBytes, those written at load (quantized or widened copies) */
  convertedBytes: number;
}

export interface NativeSyntheticSpec {
  config: NativeConfig;
  /** integer in [0, 2^53): the checkpoint writer's seed */
  seed: number;
  device: string;
  activations?: 'f32' | 'q8' | 'bf16';
  kvCache?: 'f16' | 'bf16' | 'f32' | 'f32k-f16v';
  denseWeights?: 'as-stored' | 'q8';
  /** 'bf16': the generated MXFP4 experts dequantized to bf16 and run as bf16 experts */
  experts?: 'mxfp4' | 'bf16';
}

export interface NativeModel {
  info(): {
    backend: string;
    device: string;
    weightBytes: number;
    activations: 'f32' | 'q8' | 'bf16';
    kvCache: 'f16' | 'bf16' | 'f32' | 'f32k-f16v';
    groups: NativeLoadGroup[];
    conversions: string[];
    convertSeconds: number;
    readWaitSeconds: number;
    pageInSeconds: number;
  };
  dispose(): void;
}

export interface NativeModelConstructor {
  load(spec: NativeModelSpec, onProgress?: (done: number, total: number) => void): Promise<NativeModel>;
  /** Random weights generated in memory: the tensors scripts/checkpoint-writer.mjs writes for this config and seed. */
  synthetic(spec: NativeSyntheticSpec, onProgress?: (done: number, total: number) => void): Promise<NativeModel>;
  /** One synthetic tensor's bytes by its checkpoint name, generated in pieces of chunkWords stream words (tests). */
  syntheticTensor(spec: Omit<NativeSyntheticSpec, 'device'>, name: string, chunkWords: number): ArrayBuffer;
}

export interface NativeSampleParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

export interface NativeSession {
  readonly length: number;
  readonly maxContext: number;
  forward(tokens: Int32Array, mode: 'all' | 'last'): Promise<Float32Array>;
  forward(tokens: Int32Array, mode: 'none'): Promise<undefined>;
  sample(params: NativeSampleParams, uniform: number, bias?: NativeLogitBias): Promise<number>;
  /** model/logprobs.h: the last logits row's log-softmax at id and at its `top` (0..20) most likely ids. */
  logprobs(id: number, top: number): Promise<NativeTokenLogprobs>;
  step(token: number, params: NativeSampleParams, uniform: number, bias?: NativeLogitBias): Promise<number>;
  stepMany(token: number, params: NativeSampleParams, uniforms: Float64Array, stops?: Int32Array): Promise<Int32Array>;
  truncate(length: number): void;
  dispose(): void;
}

export interface NativeSessionConstructor {
  new (model: NativeModel, maxContext: number): NativeSession;
}

/** model/logit_bias.h LogitBias: deltas[i] added at ids[i] before a draw. */
export interface NativeLogitBias {
  ids: Int32Array;
  deltas: Float32Array;
  allow?: Uint32Array;
}

/** model/logprobs.h TokenLogprobs: the drawn id's log-probability and the row's most likely ids' (most likely first). */
export interface NativeTokenLogprobs {
  logprob: number;
  topIds: Int32Array;
  topLogprobs: Float32Array;
}

/** One sequence's share of a NativeBatch step (options already resolved: sampling.ts). */
export interface NativeBatchItem {
  seq: number;
  tokens: Int32Array;
  sample: { options: NativeSampleParams; uniform: number } | null;
  /** Pipelined decode: the uniform of this sequence's next decode step (model/batch.h StepItem.ahead). */
  next?: number;
  /** stepLogprobs only, with sample: report the draw's log-probabilities and this many alternatives (0..20). */
  logprobs?: number;
  /** With sample, not with next: added to the row before the draw. */
  bias?: NativeLogitBias;
}

/** model/batch.h: sequences over a paged KV cache, advanced together one batched forward a step. */
export interface NativeBatch {
  readonly blockSize: number;
  readonly totalBlocks: number;
  readonly openSequences: number;
  /** Blocks in the prefix cache (held by sequences or kept for later ones). */
  readonly cachedBlocks: number;
  /** Created with pipelineDecode. */
  readonly pipelinesDecode: boolean;
  /** Rows of the decode step queued ahead now (0: none). */
  readonly queuedAhead: number;
  /** Decode steps queued ahead so far, claimed by the step after, dropped. */
  readonly pipelineStats: { queued: number; claimed: number; dropped: number };
  freeBlocks(): number;
  /**
   * null when the pool or maxSequences cannot take it now; RangeError when it could never fit. The
   * prompt's cached whole blocks are shared: length(seq) is then the tokens it starts with.
   */
  open(maxTokens: number, prompt?: Int32Array): number | null;
  close(seq: number): void;
  /** Tokens the sequence holds. */
  length(seq: number): number;
  step(items: NativeBatchItem[]): Promise<Int32Array>;
  /** step(), plus the logits each sampling item drew from ([draws, vocab], in item order). */
  stepLogits(items: NativeBatchItem[]): Promise<{ ids: Int32Array; logits: Float32Array }>;
  /** step(), plus each item's TokenLogprobs where it sets `logprobs` (null elsewhere). */
  stepLogprobs(items: NativeBatchItem[]): Promise<{ ids: Int32Array; logprobs: (NativeTokenLogprobs | null)[] }>;
  dispose(): void;
}

export interface NativeBatchConstructor {
  new (model: NativeModel, options: { maxSequences: number; kvBlocks: number; blockSize: number; padDecodeSteps?: boolean; pipelineDecode?: boolean }): NativeBatch;
}

export interface HipBuildInfo {
  /** The HIP plugin (gpt_oss_hip.so) was built with this addon. */
  built: boolean;
  pluginPath: string;
  /** The libamdhip64 that loaded ('' when none did). */
  runtime: string;
  /** hipRuntimeGetVersion: major * 1e7 + minor * 1e5 + patch. */
  runtimeVersion: number;
  pluginLoaded: boolean;
  /** The plugin's offload archs, e.g. ['gfx942', 'gfx90a']. */
  archs: string[];
  /** Why the runtime or the plugin did not load ('' when both did). */
  error: string;
}

export interface Addon {
  napiVersion: number;
  Tensor: NativeTensorConstructor;
  NativeModel: NativeModelConstructor;
  NativeSession: NativeSessionConstructor;
  NativeBatch: NativeBatchConstructor;
  cudaUnavailableReason(): string;
  cudaDeviceCount(): number;
  /** The classes native checkpoint/config errors are constructed as (called once, by lib/native.ts). */
  setErrorClasses(classes: { CheckpointError: Function; ConfigError: Function }): void;
  hipUnavailableReason(): string;
  hipDeviceCount(): number;
  /** What this build carries for HIP (native/hip/hip_loader.h): loads the runtime and plugin, no device. */
  hipBuildInfo(): HipBuildInfo;
  // Kernel ops for tests and microbenchmarks (typed in ops.ts).
  ops: Record<string, any>;
}
