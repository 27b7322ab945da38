// GGUF files (llama.cpp, Ollama, LM Studio), parsed and checked here before anything is mapped.
// Layout (ggml docs/gguf.md, version 3; version 2 is the same with these sizes): little-endian
//   magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
//   metadata: { string key, u32 value_type, value } x kv_count,
//   tensor infos: { string name, u32 n_dims, u64 dims[n_dims] (innermost first), u32 ggml_type, u64 offset } x tensor_count,
//   padding to general.alignment (default 32), then the tensor data; offsets are relative to its start.
// A string is a u64 byte length and UTF-8 bytes. Every length, count, offset and size is checked
// against the file before it is used: a damaged file is a CheckpointError naming the file and tensor.
import { closeFile, openRegular, readAt, runSync, type Io } from './io.js';
import { CheckpointError } from '../errors.js';
import { checkShape } from './shape.js';
import { MAX_COUNT, MAX_HEAD_DIM, MAX_POSITIONS, MAX_SIZE, type LayerType, type ModelConfig } from './config.js';

/** ggml_type -> name, values a block holds, bytes a block takes (ggml.c type_traits). */
const GGML_TYPES: Record<number, { name: string; block: number; bytes: number }> = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  3: { name: 'Q4_1', block: 32, bytes: 20 },
  6: { name: 'Q5_0', block: 32, bytes: 22 },
  7: { name: 'Q5_1', block: 32, bytes: 24 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  9: { name: 'Q8_1', block: 32, bytes: 36 },
  10: { name: 'Q2_K', block: 256, bytes: 84 },
  11: { name: 'Q3_K', block: 256, bytes: 110 },
  12: { name: 'Q4_K', block: 256, bytes: 144 },
  13: { name: 'Q5_K', block: 256, bytes: 176 },
  14: { name: 'Q6_K', block: 256, bytes: 210 },
  15: { name: 'Q8_K', block: 256, bytes: 292 },
  16: { name: 'IQ2_XXS', block: 256, bytes: 66 },
  17: { name: 'IQ2_XS', block: 256, bytes: 74 },
  18: { name: 'IQ3_XXS', block: 256, bytes: 98 },
  19: { name: 'IQ1_S', block: 256, bytes: 50 },
  20: { name: 'IQ4_NL', block: 32, bytes: 18 },
  21: { name: 'IQ3_S', block: 256, bytes: 110 },
  22: { name: 'IQ2_S', block: 256, bytes: 82 },
  23: { name: 'IQ4_XS', block: 256, bytes: 136 },
  24: { name: 'I8', block: 1, bytes: 1 },
  25: { name: 'I16', block: 1, bytes: 2 },
  26: { name: 'I32', block: 1, bytes: 4 },
  27: { name: 'I64', block: 1, bytes: 8 },
  28: { name: 'F64', block: 1, bytes: 8 },
  29: { name: 'IQ1_M', block: 256, bytes: 56 },
  30: { name: 'BF16', block: 1, bytes: 2 },
  34: { name: 'TQ1_0', block: 256, bytes: 54 },
  35: { name: 'TQ2_0', block: 256, bytes: 66 },
  39: { name: 'MXFP4', block: 32, bytes: 17 },
};

export const GGML_TYPE_IDS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(GGML_TYPES).map(([id, t]) => [t.name, Number(id)]),
);

export type GgufValue = number | bigint | boolean | string | GgufValue[] | { arrayType: string; length: number };

export interface GgufTensor {
  name: string;
  /** ggml's dims, innermost first (as in the file). */
  dims: number[];
  /** Outermost first (row-major, as safetensors and this runtime spell shapes). */
  shape: number[];
  type: string;
  typeId: number;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  length: number;
}

export interface GgufFile {
  path: string;
  fileSize: number;
  version: number;
  alignment: number;
  dataStart: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
}

// Arrays longer than this are kept as { arrayType, length } (tokenizer vocabularies and merges:
// the runtime has its own o200k_harmony tokenizer and only checks their size).
const MAX_KEPT_ARRAY = 4096;
const VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** The parse needs bytes past the prefix read so far: read up to `end` (at least) and parse again. */
class NeedMore {
  constructor(readonly end: number) {}
}

/**
 * Sequential reads through a prefix of the file held in memory (the metadata and tensor table sit at
 * the start); every read past the end of the file is a named truncation.
 */
class Reader {
  readonly #prefix: Buffer;
  readonly #short: boolean; // the file gave fewer bytes than its size said (it shrank while read)
  pos = 0;
  constructor(readonly path: string, prefix: Buffer, requested: number, readonly size: number) {
    this.#prefix = prefix;
    this.#short = prefix.length < requested;
  }
  #need(n: number, what: string): Buffer {
    if (this.pos + n > this.size)
      throw new CheckpointError(this.path, `${what} at byte ${this.pos} runs past the end of the file (${this.size} bytes): truncated`);
    const end = this.pos + n;
    if (end > this.#prefix.length) {
      if (this.#short)
        throw new CheckpointError(this.path, `${what} at byte ${this.pos}: the file ended early (read ${Math.max(0, this.#prefix.length - this.pos)} of ${n} bytes)`);
      throw new NeedMore(end);
    }
    const off = this.pos;
    this.pos = end;
    return this.#prefix.subarray(off, end);
  }
  u32(what: string): number {
    return this.#need(4, what).readUInt32LE(0);
  }
  u64(what: string): bigint {
    return this.#need(8, what).readBigUInt64LE(0);
  }
  /** A u64 that must fit a safe integer (counts, lengths, dims, offsets). */
  size64(what: string): number {
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(this.path, `${what} ${v} is out of range`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.size64(`${what} length`);
    if (n > this.size - this.pos) throw new CheckpointError(this.path, `${what}: length ${n} runs past the end of the file`);
    return this.#need(n, what).toString('utf8');
  }
  skip(n: number, what: string): void {
    if (n > this.size - this.pos) throw new CheckpointError(this.path, `${what} runs past the end of the file (${this.size} bytes): truncated`);
    this.pos += n;
  }
  scalar(type: number, what: string): number | bigint | boolean {
    const b = this.#need(SCALAR_BYTES[type], what);
    switch (type) {
      case 0: return b.readUInt8(0);
      case 1: return b.readInt8(0);
      case 2: return b.readUInt16LE(0);
      case 3: return b.readInt16LE(0);
      case 4: return b.readUInt32LE(0);
      case 5: return b.readInt32LE(0);
      case 6: return b.readFloatLE(0);
      case 7: return b.readUInt8(0) !== 0;
      case 10: return b.readBigUInt64LE(0);
      case 11: return b.readBigInt64LE(0);
      default: return b.readDoubleLE(0);
    }
  }
}

function readValue(r: Reader, type: number, what: string, depth = 0): GgufValue {
  if (type === 8) return r.string(what);
  if (type === 9) {
    if (depth > 2) throw new CheckpointError(r.path, `${what}: arrays nested deeper than 3`);
    const elemType = r.u32(`${what} array type`);
    const n = r.size64(`${what} array length`);
    if (!(elemType in SCALAR_BYTES) && elemType !== 8 && elemType !== 9)
      throw new CheckpointError(r.path, `${what}: unknown array element type ${elemType}`);
    if (elemType in SCALAR_BYTES && n > MAX_KEPT_ARRAY) {
      r.skip(n * SCALAR_BYTES[elemType], what);
      return { arrayType: VALUE_TYPES[elemType], length: n };
    }
    // A string element takes at least its 8-byte length: a count the file cannot hold is damage.
    if (elemType === 8 && n > (r.size - r.pos) / 8) throw new CheckpointError(r.path, `${what}: ${n} strings cannot fit in the file`);
    const out: GgufValue[] = [];
    for (let i = 0; i < n; i++) {
      const v = readValue(r, elemType, `${what}[${i}]`, depth + 1);
      if (n <= MAX_KEPT_ARRAY) out.push(v);
    }
    return n <= MAX_KEPT_ARRAY ? out : { arrayType: VALUE_TYPES[elemType], length: n };
  }
  if (!(type in SCALAR_BYTES)) throw new CheckpointError(r.path, `${what}: unknown metadata value type ${type}`);
  return r.scalar(type, what);
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** True when `path` is a regular file that starts with the GGUF magic (Ollama's blobs have no extension). */
export function isGgufFile(path: string): boolean {
  try {
    return runSync(isGgufFileSteps(path));
  } catch {
    return false;
  }
}

/** @internal isGgufFile's reads, for either driver (lib/loader/io.ts); throws CheckpointError when `path` cannot be read as a file. */
export function* isGgufFileSteps(path: string): Io<boolean> {
  const file = yield* openRegular(path, (f, message) => new CheckpointError(f, message));
  try {
    const b = yield* readAt(file, 4, 0);
    return b.length === 4 && b.readUInt32LE(0) === GGUF_MAGIC;
  } finally {
    yield* closeFile(file);
  }
}

export function readGguf(path: string): GgufFile {
  return runSync(readGgufSteps(path));
}

/** @internal readGguf's reads and checks, for either driver: the header is read as a prefix of the file, grown until it parses. */
export function* readGgufSteps(path: string): Io<GgufFile> {
  const file = yield* openRegular(path, (f, message) => new CheckpointError(f, message));
  try {
    let want = Math.min(file.size, 4 << 20);
    for (;;) {
      const prefix = yield* readAt(file, want, 0);
      try {
        return parseGguf(path, file.size, prefix, want);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        want = Math.min(file.size, Math.max(2 * want, e.end + (1 << 20)));
      }
    }
  } finally {
    yield* closeFile(file);
  }
}

function parseGguf(path: string, fileSize: number, prefix: Buffer, requested: number): GgufFile {
  {
    const r = new Reader(path, prefix, requested, fileSize);
    const magic = r.u32('magic');
    if (magic !== GGUF_MAGIC) throw new CheckpointError(path, `not a GGUF file (magic 0x${magic.toString(16)}, expected "GGUF")`);
    const version = r.u32('version');
    if (version !== 2 && version !== 3) throw new CheckpointError(path, `GGUF version ${version} is not supported (2 and 3 are)`);
    const tensorCount = r.size64('tensor count');
    const kvCount = r.size64('metadata count');
    // Each tensor info takes >= 24 bytes and each key/value >= 12: counts the file cannot hold are damage.
    if (tensorCount * 24 > fileSize || kvCount * 12 > fileSize)
      throw new CheckpointError(path, `${tensorCount} tensors and ${kvCount} metadata entries cannot fit in ${fileSize} bytes: damaged header`);
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = r.string(`metadata key ${i}`);
      const type = r.u32(`metadata '${key}' type`);
      metadata.set(key, readValue(r, type, `metadata '${key}'`));
    }
    const alignValue = metadata.get('general.alignment') ?? 32;
    if (typeof alignValue !== 'number' || !Number.isInteger(alignValue) || alignValue <= 0 || (alignValue & (alignValue - 1)) !== 0)
      throw new CheckpointError(path, `general.alignment ${String(alignValue)} is not a power of two`);
    const alignment = alignValue;

    const infos: Omit<GgufTensor, 'offset' | 'length'>[] = [];
    const rel: number[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = r.string(`tensor ${i} name`);
      const nDims = r.u32(`tensor '${name}' dimension count`);
      if (nDims < 1 || nDims > 4) throw new CheckpointError(path, `has ${nDims} dimensions (ggml allows 1 to 4)`, name);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(r.size64(`tensor '${name}' dimension ${d}`));
      const typeId = r.u32(`tensor '${name}' type`);
      const offset = r.size64(`tensor '${name}' offset`);
      const t = GGML_TYPES[typeId];
      if (!t) throw new CheckpointError(path, `unknown ggml type ${typeId}`, name);
      infos.push({ name, dims, shape: [...dims].reverse(), type: t.name, typeId });
      rel.push(offset);
    }
    const dataStart = Math.ceil(r.pos / alignment) * alignment;
    const dataSize = fileSize - dataStart;
    if (dataSize < 0) throw new CheckpointError(path, `the tensor data would start at byte ${dataStart}, past the end of the file (${fileSize} bytes): truncated`);
    const tensors = new Map<string, GgufTensor>();
    infos.forEach((info, i) => {
      const t = GGML_TYPES[info.typeId];
      checkShape(path, info.name, info.shape);
      const n = info.dims.reduce((a, b) => a * b, 1);
      if (info.dims[0] % t.block !== 0)
        throw new CheckpointError(path, `${t.name} rows of ${info.dims[0]} values do not fill whole ${t.block}-value blocks`, info.name);
      const length = (n / t.block) * t.bytes;
      if (rel[i] % alignment !== 0) throw new CheckpointError(path, `data offset ${rel[i]} is not a multiple of the alignment ${alignment}`, info.name);
      if (rel[i] + length > dataSize)
        throw new CheckpointError(
          path,
          `data [${rel[i]}, ${rel[i] + length}) (${t.name}${JSON.stringify(info.shape)}) runs past the end of the data (${dataSize} bytes after the header): the file is truncated or the offset is out of range`,
          info.name,
        );
      if (tensors.has(info.name)) throw new CheckpointError(path, 'appears twice in the tensor table', info.name);
      tensors.set(info.name, { ...info, offset: dataStart + rel[i], length });
    });
    const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].length)
        throw new CheckpointError(path, `data overlaps tensor '${sorted[i - 1].name}'`, sorted[i].name);
    return { path, fileSize, version, alignment, dataStart, metadata, tensors };
  }
}

/**
 * gpt-oss hyperparameters from GGUF metadata (llama.cpp's convert_hf_to_gguf.py GptOssModel writes
 * them under the architecture name, 'gpt-oss'; Ollama's own conversion uses 'gptoss').
 */
export function ggufConfig(g: GgufFile): ModelConfig {
  const arch = g.metadata.get('general.architecture');
  if (arch !== 'gpt-oss' && arch !== 'gptoss')
    throw new CheckpointError(g.path, `general.architecture is ${JSON.stringify(arch ?? null)}, this runtime loads gpt-oss`);
  const key = (k: string) => `${arch}.${k}`;
  // The bounds config.json's integers have (config.ts): a GGUF past them is not a gpt-oss, and its counts size
  // arrays built here (block_count: the layer types).
  const int = (k: string, fallback: number | undefined, max: number, min = 1): number => {
    const v = g.metadata.get(key(k)) ?? fallback;
    if (v === undefined) throw new CheckpointError(g.path, `metadata '${key(k)}' is missing`);
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max)
      throw new CheckpointError(g.path, `metadata '${key(k)}' must be an integer in [${min}, ${max}], got ${String(v)}`);
    return n;
  };
  const num = (k: string, fallback?: number): number => {
    const v = g.metadata.get(key(k)) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(g.path, `metadata '${key(k)}' must be a number, got ${String(v)}`);
    return v;
  };
  const numLayers = int('block_count', undefined, MAX_COUNT);
  const embd = g.tensors.get('token_embd.weight');
  if (!embd) throw new CheckpointError(g.path, 'is missing (the vocabulary size comes from its rows)', 'token_embd.weight');
  const headDim = int('attention.key_length', undefined, MAX_HEAD_DIM);
  if (int('attention.value_length', headDim, MAX_HEAD_DIM) !== headDim)
    throw new CheckpointError(g.path, `metadata '${key('attention.value_length')}' differs from key_length ${headDim}`);
  const scalingType = g.metadata.get(key('rope.scaling.type'));
  const factor = g.metadata.get(key('rope.scaling.factor'));
  const yarn = scalingType === 'yarn' || (scalingType === undefined && typeof factor === 'number' && factor > 1);
  if (scalingType !== undefined && scalingType !== 'yarn' && scalingType !== 'none')
    throw new CheckpointError(g.path, `rope scaling ${JSON.stringify(scalingType)} is not supported (gpt-oss uses yarn)`);
  // Even layers slide, odd layers attend fully: gpt-oss's layer_types, and llama.cpp's swa pattern 2.
  const layerTypes: LayerType[] = Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
  const eos: number[] = [];
  const eosId = g.metadata.get('tokenizer.ggml.eos_token_id');
  if (typeof eosId === 'number') eos.push(eosId);
  const eosIds = g.metadata.get('tokenizer.ggml.eos_token_ids');
  if (Array.isArray(eosIds)) for (const v of eosIds) if (typeof v === 'number' && !eos.includes(v)) eos.push(v);
  const config: ModelConfig = {
    vocabSize: embd.shape[0],
    hiddenSize: int('embedding_length', undefined, MAX_SIZE),
    intermediateSize: int('expert_feed_forward_length', g.metadata.has(key('expert_feed_forward_length')) ? undefined : int('feed_forward_length', undefined, MAX_SIZE), MAX_SIZE),
    numLayers,
    numExperts: int('expert_count', undefined, MAX_COUNT),
    expertsPerToken: int('expert_used_count', undefined, MAX_COUNT),
    numHeads: int('attention.head_count', undefined, MAX_COUNT),
    numKvHeads: int('attention.head_count_kv', undefined, MAX_COUNT),
    headDim,
    slidingWindow: int('attention.sliding_window', undefined, MAX_SIZE, 0),
    layerTypes,
    ropeTheta: num('rope.freq_base'),
    ropeScaling: yarn
      ? {
          type: 'yarn',
          factor: num('rope.scaling.factor'),
          originalMaxPositionEmbeddings: int('rope.scaling.original_context_length', 4096, MAX_POSITIONS),
          // llama.cpp's defaults (and gpt-oss's config.json); the GGUF carries no beta keys for gpt-oss.
          betaFast: num('rope.scaling.yarn_beta_fast', 32),
          betaSlow: num('rope.scaling.yarn_beta_slow', 1),
          // gpt-oss's config.json says truncate: false; transformers, whose logits the safetensors form
          // matches, keeps the ramp ends unrounded.
          truncate: false,
        }
      : null,
    rmsNormEps: num('attention.layer_norm_rms_epsilon'),
    // Not in the GGUF: llama.cpp hard-codes gpt-oss's clamp (7.0), as config.json's swiglu_limit.
    swigluLimit: 7.0,
    maxPositionEmbeddings: int('context_length', undefined, MAX_POSITIONS),
    eosTokenIds: eos,
  };
  if (config.hiddenSize % 32 !== 0 || config.intermediateSize % 32 !== 0)
    throw new CheckpointError(g.path, 'embedding_length and expert_feed_forward_length must be multiples of 32 (MXFP4 blocks)');
  if (config.expertsPerToken > config.numExperts)
    throw new CheckpointError(g.path, `expert_used_count ${config.expertsPerToken} exceeds expert_count ${config.numExperts}`);
  if (config.numHeads % config.numKvHeads !== 0)
    throw new CheckpointError(g.path, `head_count_kv ${config.numKvHeads} does not divide head_count ${config.numHeads}`);
  return config;
}

/**
 * The dtype string native/model binds a GGUF tensor as: the ggml type name, except MXFP4 (ggml's
 * 17-byte blocks, not Hugging Face's blocks + scales), which binds as MXFP4_GGML. Types the runtime
 * does not read pass through by name, so the error names the tensor the model needs and its type.
 */
export function ggufRecordDtype(t: GgufTensor): string {
  return t.type === 'MXFP4' ? 'MXFP4_GGML' : t.type;
}
