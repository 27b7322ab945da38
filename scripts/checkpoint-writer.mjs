// Random gpt-oss checkpoints in the exact Hugging Face layout, for any config.
//
// Plain Node ESM (no TypeScript at run time) so that both the CLI (scripts/make-checkpoint.mjs)
// and the tests (test/helpers/checkpoint.ts re-exports this with the types of
// scripts/checkpoint-writer.d.mts) use the same code.
//
// Layout (see test/fixtures/tiny-a/README.md): MXFP4 experts (`*_blocks` U8 [E, rows, cols/32, 16],
// `*_scales` U8 E8M0 [E, rows, cols/32]), everything else BF16. safetensors conventions as the
// `safetensors` Python/Rust writer: tensors ordered by dtype (wider first: BF16 before U8) then by
// name, header keys in that order after `__metadata__`, header padded with spaces to 8 bytes,
// data contiguous.
//
// Everything is streamed: tensor by tensor, in chunks of a few MiB, written with positional writes on
// a file handle, so a 13 GB gpt-oss-20b-shaped file never sits in memory. Values come from a seeded
// xoshiro128** stream per tensor (seeded from the spec's seed and the tensor's name), so the same
// seed gives byte-identical files regardless of sharding or chunk size.

import { open, mkdir, writeFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { closeSync, openSync, readSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// RNG: splitmix32 (seeding) + xoshiro128** (streams)
// ---------------------------------------------------------------------------------------------

/** FNV-1a 32-bit hash of a string's UTF-8 bytes. */
export function fnv1a32(str) {
  const bytes = new TextEncoder().encode(str);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: a tiny generator used to expand seeds into xoshiro state. */
export class SplitMix32 {
  constructor(seed) {
    this.state = seed >>> 0;
  }
  nextU32() {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
}

/**
 * 128-bit state derived from a seed (number, bigint or string) and an optional stream name
 * (e.g. a tensor name): different streams of one seed are independent.
 */
export function seedState(seed, stream = '') {
  const sm = new SplitMix32(fnv1a32(`seed:${String(seed)}`));
  const mix = fnv1a32(`stream:${stream}`);
  sm.nextU32();
  sm.state = (sm.state ^ mix) >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) s[i] = sm.nextU32();
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return s;
}

/** xoshiro128** (Blackman & Vigna): fast 32-bit generator. */
export class Xoshiro128 {
  /** @param {number|bigint|string} seed @param {string} [stream] */
  constructor(seed = 0, stream = '') {
    const s = seedState(seed, stream);
    this.s0 = s[0] | 0;
    this.s1 = s[1] | 0;
    this.s2 = s[2] | 0;
    this.s3 = s[3] | 0;
  }
  nextU32() {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }
  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat() {
    return this.nextU32() / 4294967296;
  }
  /** Integer uniform in [lo, hi] (inclusive). */
  nextInt(lo, hi) {
    return lo + Math.floor(this.nextFloat() * (hi - lo + 1));
  }
  /** Standard normal (table based: 16 bits per sample, two samples per 32-bit draw are NOT mixed here). */
  nextNormal() {
    return normalTable16()[this.nextU32() >>> 16];
  }
  /** Fill a Uint32Array (hot loop, state kept in locals). */
  fillU32(out, start = 0, end = out.length) {
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let i = start; i < end; i++) {
      const x = Math.imul(s1, 5);
      out[i] = Math.imul((x << 7) | (x >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

/** Acklam's inverse normal CDF (relative error < 1.2e-9). */
export function inverseNormalCdf(p) {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const plow = 0.02425;
  if (p < plow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - plow) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * 65536 standard-normal quantiles at (i + 0.5) / 65536: a 16-bit draw indexes one sample. Built on
 * first use (a few ms), not at import: lib/synthetic.ts imports this module for its presets, so every
 * program that imports the package would pay for it.
 */
let normalTable = null;
export function normalTable16() {
  if (!normalTable) {
    normalTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) normalTable[i] = inverseNormalCdf((i + 0.5) / 65536);
  }
  return normalTable;
}

// ---------------------------------------------------------------------------------------------
// Specs and presets
// ---------------------------------------------------------------------------------------------

const ROPE_YARN = Object.freeze({ factor: 32, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, truncate: false });

const COMMON = Object.freeze({
  ropeTheta: 150000,
  rope: ROPE_YARN,
  rmsNormEps: 1e-5,
  swigluLimit: 7.0,
  maxPositionEmbeddings: 131072,
  initialContextLength: 4096,
});

/** Like test/fixtures/tiny-a (same config.json, same tensor names/dtypes/shapes; different random data). */
export const TINY = Object.freeze({
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
  seed: 20251101,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
  torchDtype: 'bfloat16',
  configTrailingNewline: false,
});

/** openai/gpt-oss-20b shapes; config.json as the real checkpoint's. */
export const GPT_OSS_20B = Object.freeze({
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
  seed: 20,
  eosTokenId: 200002,
  padTokenId: 199999,
  transformersVersion: '4.55.0.dev0',
});

/** openai/gpt-oss-120b shapes: 36 layers, 128 experts, otherwise as 20b. */
export const GPT_OSS_120B = Object.freeze({
  ...GPT_OSS_20B,
  numLayers: 36,
  numExperts: 128,
  seed: 120,
});

export const PRESETS = Object.freeze({ tiny: TINY, '20b': GPT_OSS_20B, '120b': GPT_OSS_120B });

/** Throws on a spec the layout cannot express. */
export function validateSpec(spec) {
  const ints = ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numExperts', 'expertsPerToken', 'numHeads', 'numKvHeads', 'headDim', 'slidingWindow'];
  for (const k of ints) {
    const v = spec[k];
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`checkpoint spec: ${k} must be a positive integer, got ${v}`);
  }
  if (spec.hiddenSize % 32 !== 0) throw new Error(`checkpoint spec: hiddenSize ${spec.hiddenSize} must be a multiple of 32 (MXFP4 blocks)`);
  if (spec.intermediateSize % 32 !== 0) throw new Error(`checkpoint spec: intermediateSize ${spec.intermediateSize} must be a multiple of 32 (MXFP4 blocks)`);
  if (spec.numHeads % spec.numKvHeads !== 0) throw new Error(`checkpoint spec: numHeads ${spec.numHeads} must be a multiple of numKvHeads ${spec.numKvHeads}`);
  if (spec.expertsPerToken > spec.numExperts) throw new Error(`checkpoint spec: expertsPerToken ${spec.expertsPerToken} > numExperts ${spec.numExperts}`);
  return spec;
}

// ---------------------------------------------------------------------------------------------
// config.json (Python json.dumps(indent=2, sort_keys=True) formatting, floats as Python writes them)
// ---------------------------------------------------------------------------------------------

class PyFloat {
  constructor(v) {
    this.v = v;
  }
}
const f = (v) => new PyFloat(v);

/** Python's repr() of a float: shortest round-trip digits, '.0' on integers, 'e-05' style exponents. */
export function pyFloatRepr(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e');
  const e = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let out;
  if (e >= -5 && e < 16) {
    // Python switches to exponent notation below 1e-4 (repr uses 'r' format: exp < -4 or exp >= 16)
    if (e < -4) out = null;
    else if (e >= digits.length - 1) out = digits + '0'.repeat(e - (digits.length - 1)) + '.0';
    else if (e >= 0) out = digits.slice(0, e + 1) + '.' + digits.slice(e + 1);
    else out = '0.' + '0'.repeat(-e - 1) + digits;
  }
  if (out == null) {
    const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    out = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return (neg ? '-' : '') + out;
}

/** json.dumps(value, indent=indent, sort_keys=sortKeys) as Python writes it (ASCII keys/strings). */
export function pyJsonDumps(value, { indent = 2, sortKeys = true } = {}) {
  const nl = indent == null ? '' : '\n';
  const item = indent == null ? ', ' : ',';
  const pad = (level) => (indent == null ? '' : ' '.repeat(indent * level));
  const enc = (v, level) => {
    if (v instanceof PyFloat) return pyFloatRepr(v.v);
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) return pyFloatRepr(v);
      return String(v);
    }
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'string') return JSON.stringify(v);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[' + nl + v.map((x) => pad(level + 1) + enc(x, level + 1)).join(item + nl) + nl + pad(level) + ']';
    }
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    if (sortKeys) keys.sort();
    if (keys.length === 0) return '{}';
    return '{' + nl + keys.map((k) => pad(level + 1) + JSON.stringify(k) + ': ' + enc(v[k], level + 1)).join(item + nl) + nl + pad(level) + '}';
  };
  return enc(value, 0);
}

/** layer_types: alternating sliding_attention / full_attention, starting with sliding. */
export function layerTypes(numLayers) {
  return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
}

/** The config.json object (floats wrapped so pyJsonDumps prints them as Python floats). */
export function configObject(spec) {
  const rope = { ...ROPE_YARN, ...(spec.rope ?? {}) };
  const cfg = {
    architectures: ['GptOssForCausalLM'],
    attention_bias: true,
    attention_dropout: f(0.0),
    experts_per_token: spec.expertsPerToken,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    hidden_size: spec.hiddenSize,
    initial_context_length: spec.initialContextLength ?? 4096,
    initializer_range: f(0.02),
    intermediate_size: spec.intermediateSize,
    layer_types: layerTypes(spec.numLayers),
    max_position_embeddings: spec.maxPositionEmbeddings ?? 131072,
    model_type: 'gpt_oss',
    num_attention_heads: spec.numHeads,
    num_experts_per_tok: spec.expertsPerToken,
    num_hidden_layers: spec.numLayers,
    num_key_value_heads: spec.numKvHeads,
    num_local_experts: spec.numExperts,
    output_router_logits: false,
    quantization_config: {
      modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
      quant_method: 'mxfp4',
    },
    rms_norm_eps: f(spec.rmsNormEps ?? 1e-5),
    rope_scaling: {
      beta_fast: f(rope.betaFast),
      beta_slow: f(rope.betaSlow),
      factor: f(rope.factor),
      original_max_position_embeddings: rope.originalMaxPositionEmbeddings,
      rope_type: 'yarn',
      truncate: rope.truncate,
    },
    rope_theta: spec.ropeTheta ?? 150000,
    router_aux_loss_coef: f(0.9),
    sliding_window: spec.slidingWindow,
    swiglu_limit: f(spec.swigluLimit ?? 7.0),
    tie_word_embeddings: false,
    use_cache: true,
    vocab_size: spec.vocabSize,
  };
  // Optional keys: `undefined` leaves the key out (the real gpt-oss config has no bos_token_id and no
  // torch_dtype), `null` writes null (as tiny-a's config does).
  if (spec.bosTokenId !== undefined) cfg.bos_token_id = spec.bosTokenId;
  if (spec.eosTokenId !== undefined) cfg.eos_token_id = spec.eosTokenId;
  if (spec.padTokenId !== undefined) cfg.pad_token_id = spec.padTokenId;
  if (spec.torchDtype !== undefined) cfg.torch_dtype = spec.torchDtype;
  if (spec.transformersVersion !== undefined) cfg.transformers_version = spec.transformersVersion;
  return cfg;
}

/**
 * config.json text in Hugging Face's style (json.dumps(indent=2, sort_keys=True); save_pretrained adds a
 * trailing newline, tiny-a's generator did not: spec.configTrailingNewline, default true).
 */
export function configJson(spec) {
  return pyJsonDumps(configObject(spec), { indent: 2, sortKeys: true }) + (spec.configTrailingNewline === false ? '' : '\n');
}

// ---------------------------------------------------------------------------------------------
// Tensor layout
// ---------------------------------------------------------------------------------------------

export const DTYPE_SIZE = Object.freeze({ BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 });
// Rust safetensors' Dtype enum order; `serialize` sorts by dtype descending, then by name.
const DTYPE_RANK = Object.freeze({ BOOL: 0, U8: 1, I8: 2, F8_E5M2: 3, F8_E4M3: 4, I16: 5, U16: 6, F16: 7, BF16: 8, I32: 9, U32: 10, F32: 11, F64: 12, I64: 13, U64: 14 });

/** safetensors' on-disk order: wider dtype first, then name (byte order). */
export function safetensorsOrder(a, b) {
  const r = (DTYPE_RANK[b.dtype] ?? 0) - (DTYPE_RANK[a.dtype] ?? 0);
  if (r !== 0) return r;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function scaleRange(center) {
  return [center - 1, center + 1];
}

/** Default E8M0 exponent ranges: tiny-a's (gate_up 122..124, down 120..122) at fan-in 256, shifted by fan-in. */
export function defaultScaleRanges(spec) {
  const shift = (fanIn) => Math.round(Math.log2(fanIn / 256) / 2);
  return {
    gateUp: spec.gateUpScaleRange ?? scaleRange(123 - shift(spec.hiddenSize)),
    down: spec.downScaleRange ?? scaleRange(121 - shift(spec.intermediateSize)),
  };
}

/**
 * Every tensor of the checkpoint in model (state_dict) order: embed, layers 0..L-1, norm, lm_head.
 * Each: { name, dtype, shape, nbytes, init } where init says how the random data is drawn.
 */
export function checkpointTensors(spec) {
  validateSpec(spec);
  const h = spec.hiddenSize;
  const I = spec.intermediateSize;
  const E = spec.numExperts;
  const qDim = spec.numHeads * spec.headDim;
  const kvDim = spec.numKvHeads * spec.headDim;
  const scales = defaultScaleRanges(spec);
  const normal = (std, mean = 0) => ({ kind: 'normal', mean, std });
  // Optional multipliers (make-checkpoint --qk-scale / --logit-scale; default 1, the presets' bytes):
  // q and k projections (attention scores scale by qkScale^2) and the LM head (logits by logitScale).
  const qkScale = spec.qkScale ?? 1;
  const logitScale = spec.logitScale ?? 1;
  const out = [];
  const add = (name, dtype, shape, init) => {
    const nbytes = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    out.push({ name, dtype, shape, nbytes, init });
  };
  const norm = normal(0.1, 1);
  const bias = normal(0.1);
  add('model.embed_tokens.weight', 'BF16', [spec.vocabSize, h], normal(1));
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, 'BF16', [h], norm);
    add(`${p}.self_attn.q_proj.weight`, 'BF16', [qDim, h], normal(qkScale / Math.sqrt(h)));
    add(`${p}.self_attn.q_proj.bias`, 'BF16', [qDim], bias);
    add(`${p}.self_attn.k_proj.weight`, 'BF16', [kvDim, h], normal(qkScale / Math.sqrt(h)));
    add(`${p}.self_attn.k_proj.bias`, 'BF16', [kvDim], bias);
    add(`${p}.self_attn.v_proj.weight`, 'BF16', [kvDim, h], normal(1 / Math.sqrt(h)));
    add(`${p}.self_attn.v_proj.bias`, 'BF16', [kvDim], bias);
    add(`${p}.self_attn.o_proj.weight`, 'BF16', [h, qDim], normal(1 / Math.sqrt(qDim)));
    add(`${p}.self_attn.o_proj.bias`, 'BF16', [h], bias);
    add(`${p}.self_attn.sinks`, 'BF16', [spec.numHeads], normal(0.5));
    add(`${p}.post_attention_layernorm.weight`, 'BF16', [h], norm);
    add(`${p}.mlp.router.weight`, 'BF16', [E, h], normal(1 / Math.sqrt(h)));
    add(`${p}.mlp.router.bias`, 'BF16', [E], bias);
    add(`${p}.mlp.experts.gate_up_proj_blocks`, 'U8', [E, 2 * I, h / 32, 16], { kind: 'bytes' });
    add(`${p}.mlp.experts.gate_up_proj_scales`, 'U8', [E, 2 * I, h / 32], { kind: 'range', lo: scales.gateUp[0], hi: scales.gateUp[1] });
    add(`${p}.mlp.experts.gate_up_proj_bias`, 'BF16', [E, 2 * I], bias);
    add(`${p}.mlp.experts.down_proj_blocks`, 'U8', [E, h, I / 32, 16], { kind: 'bytes' });
    add(`${p}.mlp.experts.down_proj_scales`, 'U8', [E, h, I / 32], { kind: 'range', lo: scales.down[0], hi: scales.down[1] });
    add(`${p}.mlp.experts.down_proj_bias`, 'BF16', [E, h], bias);
  }
  add('model.norm.weight', 'BF16', [h], norm);
  add('lm_head.weight', 'BF16', [spec.vocabSize, h], normal((2 * logitScale) / Math.sqrt(h)));
  return out;
}

/** Sum of all tensors' bytes (what index.json calls metadata.total_size). */
export function totalTensorBytes(spec) {
  return checkpointTensors(spec).reduce((a, t) => a + t.nbytes, 0);
}

/** Opens a safetensors file for reading: its fd, where its data starts and its parsed JSON header. */
export function readSafetensorsHeader(path) {
  const fd = openSync(path, 'r');
  try {
    const n = Number(readAt(fd, Buffer.alloc(8), 0, path).readBigUInt64LE(0));
    return { fd, start: 8 + n, header: JSON.parse(readAt(fd, Buffer.alloc(n), 8, path).toString('utf8')) };
  } catch (e) {
    closeSync(fd);  // a short or malformed header: the caller never sees the fd
    throw e;
  }
}

/** Fills `buf` from `fd` at byte `pos`; a file that ends first is an error naming `what` (the file). */
export function readAt(fd, buf, pos, what = 'file') {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) throw new Error(`${what}: unexpected end of file at ${pos + got}`);
    got += n;
  }
  return buf;
}

/**
 * A safetensors header object as the file's first bytes, as the safetensors library writes them: the
 * 8-byte little-endian length, then the JSON (key order as given) padded with spaces to a multiple of 8.
 */
export function encodeSafetensorsHeader(obj) {
  const json = JSON.stringify(obj);
  const jsonBytes = Buffer.byteLength(json);
  const padded = jsonBytes + ((8 - (jsonBytes % 8)) % 8);
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  header.write(json, 8, 'utf8');
  return header;
}

/**
 * The safetensors header for a list of tensors, as the safetensors library writes it:
 * returns { header: Buffer (encodeSafetensorsHeader), entries (in data order, with begin/end), dataBytes }.
 */
export function safetensorsHeader(tensors, metadata = { format: 'pt' }) {
  const entries = [...tensors].sort(safetensorsOrder);
  const obj = {};
  if (metadata) obj.__metadata__ = metadata;
  let off = 0;
  const placed = entries.map((t) => {
    const begin = off;
    off += t.nbytes;
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [begin, off] };
    return { ...t, begin, end: off };
  });
  return { header: encodeSafetensorsHeader(obj), entries: placed, dataBytes: off };
}

// ---------------------------------------------------------------------------------------------
// Data generation (chunked)
// ---------------------------------------------------------------------------------------------

/**
 * A stateful filler for one tensor: fill(buf, nbytes) writes the next nbytes of the tensor's data.
 * Chunk sizes must be multiples of 4 bytes (except the tensor's last chunk) so that the stream
 * does not depend on the chunk size.
 */
function makeFiller(t, seed) {
  const rng = new Xoshiro128(seed, t.name);
  let u32 = new Uint32Array(0);
  const words = (n) => {
    if (u32.length < n) u32 = new Uint32Array(Math.max(n, 1 << 16));
    rng.fillU32(u32, 0, n);
    return u32;
  };
  const init = t.init;
  if (init.kind === 'bytes') {
    return (buf, n) => {
      const nw = Math.ceil(n / 4);
      const w = words(nw);
      const src = new Uint8Array(w.buffer, 0, nw * 4);
      buf.set(src.subarray(0, n), 0);
    };
  }
  if (init.kind === 'range') {
    const lo = init.lo;
    const span = init.hi - init.lo + 1;
    return (buf, n) => {
      const nw = Math.ceil(n / 4);
      const w = words(nw);
      for (let i = 0; i < n; i++) {
        const byte = (w[i >>> 2] >>> ((i & 3) * 8)) & 0xff;
        buf[i] = lo + ((byte * span) >>> 8);
      }
    };
  }
  if (init.kind === 'normal') {
    if (t.dtype !== 'BF16') throw new Error(`normal init only for BF16 tensors (${t.name})`);
    const mean = init.mean;
    const std = init.std;
    let f32 = new Float32Array(0);
    const table = normalTable16();
    return (buf, n) => {
      const count = n >>> 1; // bf16 elements
      const nw = Math.ceil(count / 2);
      const w = words(nw);
      if (f32.length < count) f32 = new Float32Array(Math.max(count, 1 << 16));
      for (let i = 0; i < count; i++) {
        const r = w[i >>> 1];
        const idx = i & 1 ? r >>> 16 : r & 0xffff;
        f32[i] = mean + std * table[idx];
      }
      const bits = new Uint32Array(f32.buffer, 0, count);
      const out16 = new Uint16Array(buf.buffer, buf.byteOffset, count);
      for (let i = 0; i < count; i++) {
        const b = bits[i];
        out16[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
    };
  }
  throw new Error(`unknown init kind ${init.kind} for ${t.name}`);
}

/** A Buffer on its own ArrayBuffer (offset 0, so typed-array views over it are aligned). */
function alignedBuffer(n) {
  return Buffer.from(new ArrayBuffer(n));
}

/** The complete data of one tensor (only for small tensors: tests, corrupt helpers). */
export function tensorData(t, seed) {
  const buf = alignedBuffer(t.nbytes);
  makeFiller(t, seed)(buf, t.nbytes);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Sharding
// ---------------------------------------------------------------------------------------------

/** Split the model-ordered tensor list into exactly n contiguous, non-empty groups of about equal bytes. */
export function planShards(tensors, n) {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`shards must be a positive integer, got ${n}`);
  if (n > tensors.length) throw new Error(`cannot split ${tensors.length} tensors into ${n} shards`);
  const total = tensors.reduce((a, t) => a + t.nbytes, 0);
  const groups = [];
  let start = 0;
  let cum = 0;
  for (let k = 1; k < n; k++) {
    const target = (total * k) / n;
    let i = start;
    let c = cum;
    // take at least one tensor, leave at least one per remaining shard
    const maxEnd = tensors.length - (n - k);
    do {
      c += tensors[i].nbytes;
      i++;
    } while (i < maxEnd && c + tensors[i].nbytes / 2 <= target);
    groups.push(tensors.slice(start, i));
    start = i;
    cum = c;
  }
  groups.push(tensors.slice(start));
  return groups;
}

/** Shard file name: 'hf' → model-00001-of-00003.safetensors; 'gpt-oss' (openai's repos) → model-00000-of-00002.safetensors. */
export function shardFileName(i, n, naming = 'hf') {
  const p = (x) => String(x).padStart(5, '0');
  return naming === 'gpt-oss' ? `model-${p(i)}-of-${p(n - 1)}.safetensors` : `model-${p(i + 1)}-of-${p(n)}.safetensors`;
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

const CHECKPOINT_FILE_RE = /^model(-\d{5}-of-\d{5})?\.safetensors$|^model\.safetensors\.index\.json$/;

/**
 * Write config.json and the weights (one model.safetensors, or `shards` files plus
 * model.safetensors.index.json) into dir, streaming.
 */
export async function writeCheckpoint(dir, spec, opts = {}) {
  validateSpec(spec);
  const shards = opts.shards ?? 1;
  const naming = opts.shardNaming ?? 'hf';
  const chunkBytes = Math.max(4096, Math.floor((opts.chunkBytes ?? 4 << 20) / 8) * 8);
  const seed = spec.seed ?? 0;
  const onProgress = opts.onProgress;

  await mkdir(dir, { recursive: true });
  // stale weights from an earlier run (e.g. an index.json next to a fresh single file) would mislead loaders
  for (const name of await readdir(dir)) {
    if (CHECKPOINT_FILE_RE.test(name)) await unlink(join(dir, name));
  }
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, configJson(spec));

  const tensors = checkpointTensors(spec);
  const totalBytes = tensors.reduce((a, t) => a + t.nbytes, 0);
  const groups = shards === 1 ? [tensors] : planShards(tensors, shards);
  const names = groups.length === 1 ? ['model.safetensors'] : groups.map((_, i) => shardFileName(i, groups.length, naming));

  const files = [];
  let fileBytes = 0;
  let bytesWritten = 0;
  let tensorIndex = 0;
  const bufs = [alignedBuffer(chunkBytes), alignedBuffer(chunkBytes)];
  for (let g = 0; g < groups.length; g++) {
    const file = join(dir, names[g]);
    const { header, entries, dataBytes } = safetensorsHeader(groups[g]);
    const fh = await open(file, 'w');
    try {
      await fh.write(header, 0, header.length, 0);
      let pos = header.length;
      let pending = null;
      let which = 0;
      for (const t of entries) {
        const fill = makeFiller(t, seed);
        let left = t.nbytes;
        while (left > 0) {
          const n = Math.min(left, chunkBytes);
          const buf = bufs[which];
          fill(buf, n);
          // overlap: the previous chunk's write runs (libuv thread) while this one was generated
          if (pending) await pending;
          pending = fh.write(buf, 0, n, pos).then((r) => {
            if (r.bytesWritten !== n) throw new Error(`short write to ${file}`);
          });
          which ^= 1;
          pos += n;
          left -= n;
          bytesWritten += n;
          if (onProgress) onProgress({ file, tensor: t.name, tensorIndex, tensorCount: tensors.length, bytesWritten, totalBytes });
        }
        if (t.nbytes === 0 && onProgress) onProgress({ file, tensor: t.name, tensorIndex, tensorCount: tensors.length, bytesWritten, totalBytes });
        tensorIndex++;
      }
      if (pending) await pending;
      if (pos !== header.length + dataBytes) throw new Error(`internal: wrote ${pos} bytes, expected ${header.length + dataBytes}`);
      await fh.truncate(pos);
      fileBytes += pos;
    } finally {
      await fh.close();
    }
    files.push(file);
  }

  let indexPath;
  if (groups.length > 1) {
    const weightMap = {};
    groups.forEach((grp, i) => {
      for (const t of grp) weightMap[t.name] = names[i];
    });
    indexPath = join(dir, 'model.safetensors.index.json');
    const index = { metadata: { total_size: totalBytes }, weight_map: weightMap };
    await writeFile(indexPath, pyJsonDumps(index, { indent: 2, sortKeys: true }) + '\n');
  }
  return { dir, configPath, files, indexPath, totalBytes, fileBytes, tensorCount: tensors.length };
}
