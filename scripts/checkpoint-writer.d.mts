// Types for scripts/checkpoint-writer.mjs (random gpt-oss checkpoints in the Hugging Face layout).

export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

export interface RopeYarnSpec {
  factor: number;
  originalMaxPositionEmbeddings: number;
  betaFast: number;
  betaSlow: number;
  truncate: boolean;
}

/** The shape and config of a gpt-oss checkpoint to generate. */
export interface CheckpointSpec {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numExperts: number;
  expertsPerToken: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  slidingWindow: number;
  /** PRNG seed; the same seed gives byte-identical files. */
  seed: number | bigint | string;
  ropeTheta?: number;
  rope?: Partial<RopeYarnSpec>;
  rmsNormEps?: number;
  swigluLimit?: number;
  maxPositionEmbeddings?: number;
  initialContextLength?: number;
  /** undefined: key left out of config.json; null: written as null. */
  bosTokenId?: number | null;
  eosTokenId?: number | null;
  padTokenId?: number | null;
  torchDtype?: string;
  transformersVersion?: string;
  /** config.json ends with '\n' (as save_pretrained writes it) unless false (tiny-a's has none). */
  configTrailingNewline?: boolean;
  /** E8M0 exponent range [lo, hi] for gate_up_proj_scales (default 122..124 at hidden 256, shifted by fan-in). */
  gateUpScaleRange?: [number, number];
  /** E8M0 exponent range [lo, hi] for down_proj_scales (default 120..122 at intermediate 256, shifted by fan-in). */
  downScaleRange?: [number, number];
}

export type TensorInit =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'bytes' }
  | { kind: 'range'; lo: number; hi: number };

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  nbytes: number;
  init: TensorInit;
}

export interface PlacedTensor extends TensorInfo {
  /** data_offsets, relative to the start of the data section */
  begin: number;
  end: number;
}

export interface WriteProgress {
  file: string;
  tensor: string;
  tensorIndex: number;
  tensorCount: number;
  bytesWritten: number;
  totalBytes: number;
}

export interface WriteCheckpointOptions {
  /** 1 (default): model.safetensors; n > 1: n shard files + model.safetensors.index.json. */
  shards?: number;
  /** 'hf' (default): model-00001-of-00003.safetensors; 'gpt-oss': model-00000-of-00002.safetensors as openai's repos. */
  shardNaming?: 'hf' | 'gpt-oss';
  /** bytes generated per write (default 4 MiB) */
  chunkBytes?: number;
  onProgress?: (p: WriteProgress) => void;
}

export interface WriteCheckpointResult {
  dir: string;
  configPath: string;
  /** safetensors files written, in shard order */
  files: string[];
  /** model.safetensors.index.json when sharded */
  indexPath?: string;
  /** tensor data bytes (index.json's metadata.total_size) */
  totalBytes: number;
  /** bytes of all safetensors files (headers included) */
  fileBytes: number;
  tensorCount: number;
}

export declare function fnv1a32(str: string): number;
export declare class SplitMix32 {
  state: number;
  constructor(seed: number);
  nextU32(): number;
}
export declare function seedState(seed: number | bigint | string, stream?: string): Uint32Array;
export declare class Xoshiro128 {
  constructor(seed?: number | bigint | string, stream?: string);
  nextU32(): number;
  nextFloat(): number;
  nextInt(lo: number, hi: number): number;
  nextNormal(): number;
  fillU32(out: Uint32Array, start?: number, end?: number): void;
}
export declare function inverseNormalCdf(p: number): number;
/** 65536 standard-normal quantiles at (i + 0.5) / 65536, built on first call. */
export declare function normalTable16(): Float32Array;

export declare const TINY: Readonly<CheckpointSpec>;
export declare const GPT_OSS_20B: Readonly<CheckpointSpec>;
export declare const GPT_OSS_120B: Readonly<CheckpointSpec>;
export declare const PRESETS: Readonly<{ tiny: CheckpointSpec; '20b': CheckpointSpec; '120b': CheckpointSpec }>;
export declare function validateSpec<T extends CheckpointSpec>(spec: T): T;

export declare function pyFloatRepr(x: number): string;
export declare function pyJsonDumps(value: unknown, opts?: { indent?: number | null; sortKeys?: boolean }): string;
export declare function layerTypes(numLayers: number): string[];
export declare function configObject(spec: CheckpointSpec): Record<string, unknown>;
export declare function configJson(spec: CheckpointSpec): string;

export declare const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>>;
export declare function safetensorsOrder(a: { name: string; dtype: string }, b: { name: string; dtype: string }): number;
export declare function defaultScaleRanges(spec: CheckpointSpec): { gateUp: [number, number]; down: [number, number] };
export declare function checkpointTensors(spec: CheckpointSpec): TensorInfo[];
export declare function totalTensorBytes(spec: CheckpointSpec): number;
/** 8-byte length + the JSON (key order as given) padded with spaces to a multiple of 8. */
export declare function encodeSafetensorsHeader(header: Record<string, unknown>): Buffer;
export declare function safetensorsHeader(
  tensors: readonly TensorInfo[],
  metadata?: Record<string, string> | null,
): { header: Buffer; entries: PlacedTensor[]; dataBytes: number };
export declare function tensorData(t: TensorInfo, seed: number | bigint | string): Buffer;
export declare function planShards(tensors: readonly TensorInfo[], n: number): TensorInfo[][];
export declare function shardFileName(i: number, n: number, naming?: 'hf' | 'gpt-oss'): string;
export declare function writeCheckpoint(dir: string, spec: CheckpointSpec, opts?: WriteCheckpointOptions): Promise<WriteCheckpointResult>;
