// A Hugging Face gpt-oss checkpoint -> a GGUF file in llama.cpp's gpt-oss layout, written by this
// project (for tests and benchmarks: the same weights in both forms). Facts it follows (llama.cpp's
// convert_hf_to_gguf.py GptOssModel, llama-arch.cpp LLM_ARCH_OPENAI_MOE, ggml-common.h):
//  - names: token_embd, output_norm, output, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
//    attn_sinks, post_attention_norm, ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps}
//    with .weight / .bias;
//  - dims innermost first (the reverse of the safetensors shape);
//  - experts: gate_up's rows split into gate (rows 0::2) and up (rows 1::2), biases likewise;
//  - MXFP4 (ggml type 39): 17-byte blocks, the E8M0 scale byte then 16 bytes in which byte j holds
//    value j (low nibble) and value j + 16 (high nibble); Hugging Face's byte k holds values 2k and
//    2k + 1; the E2M1 codes are the same;
//  - Q8_0 (type 8): 34-byte blocks, f16 d = max|v| / 127, then 32 int8 round(v / d);
//  - vectors (norms, biases, sinks) and the router in F32, as llama.cpp writes them.
// Plain Node ESM so scripts/make-gguf.mjs and the tests share it.

import { open } from 'node:fs/promises';
import { closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAt, readSafetensorsHeader } from './checkpoint-writer.mjs';

export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8, BF16: 30, MXFP4: 39 };
const BLOCK = { F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], MXFP4: [32, 17] };

export function ggmlBytes(type, numel) {
  const [block, bytes] = BLOCK[type];
  return (numel / block) * bytes;
}

// ---- number formats ----
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function bf16ToF32(h) {
  u32[0] = h << 16;
  return f32[0];
}
/** f32 -> IEEE half, round to nearest even (as native/core/dtype.h f32_to_f16). */
export function f32ToF16(x) {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    u32[0] = abs;
    const units = f32[0] * 16777216;
    let r = Math.round(units);
    if (r - units === 0.5 && r % 2 === 1) r -= 1; // ties to even
    return sign | r;
  }
  const r = (abs + 0xfff + ((abs >>> 13) & 1)) >>> 0;
  return sign | ((r - (112 << 23)) >>> 13);
}

/** One Q8_0 block of 32 f32 values into out[o, o + 34) (native/cpu/q8.cpp's rule, bit for bit). */
export function quantizeQ8Block(v, out, o) {
  let amax = 0;
  for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(v[k]));
  const d = Math.fround(amax / 127);
  const inv = d !== 0 ? Math.fround(1 / d) : 0;
  const dh = f32ToF16(d);
  out[o] = dh & 255;
  out[o + 1] = dh >>> 8;
  for (let k = 0; k < 32; k++) {
    const p = Math.fround(v[k] * inv);
    let q = Math.sign(p) * Math.round(Math.abs(p)); // std::round: half away from zero
    q = Math.max(-127, Math.min(127, q));
    out[o + 2 + k] = q & 255;
  }
}

/** One Hugging Face MXFP4 block (16 code bytes + its scale) -> ggml's 17 bytes at out[o]. */
export function repackMxfp4Block(codes, co, scale, out, o) {
  out[o] = scale;
  for (let j = 0; j < 16; j++) {
    const lo = (codes[co + (j >> 1)] >> ((j & 1) * 4)) & 15; // value j
    const hi = (codes[co + ((j + 16) >> 1)] >> (((j + 16) & 1) * 4)) & 15; // value j + 16
    out[o + 1 + j] = lo | (hi << 4);
  }
}

// ---- safetensors input ----
// Opens every shard of the checkpoint in `dir`; each fd goes into `fds` (the caller closes them).
function readSafetensors(dir, fds) {
  const index = join(dir, 'model.safetensors.index.json');
  let names;
  try {
    names = [...new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map))].sort();
  } catch {
    names = ['model.safetensors'];
  }
  const tensors = new Map();
  for (const name of names) {
    const path = join(dir, name);
    const { fd, start, header } = readSafetensorsHeader(path);
    fds.push(fd);
    for (const [k, v] of Object.entries(header)) {
      if (k === '__metadata__') continue;
      tensors.set(k, { fd, path, dtype: v.dtype, shape: v.shape, offset: start + v.data_offsets[0], length: v.data_offsets[1] - v.data_offsets[0] });
    }
  }
  return tensors;
}

function tensorBytes(t, byteOffset = 0, length = t.length - byteOffset) {
  return readAt(t.fd, Buffer.alloc(length), t.offset + byteOffset, t.path);
}

// ---- GGUF header ----
function ggufString(s) {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}
function kv(key, type, value) {
  const parts = [ggufString(key)];
  const t = Buffer.alloc(4);
  const types = { u16: 2, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 };
  t.writeUInt32LE(types[type]);
  parts.push(t);
  if (type === 'u16') { const b = Buffer.alloc(2); b.writeUInt16LE(value); parts.push(b); }
  else if (type === 'u32') { const b = Buffer.alloc(4); b.writeUInt32LE(value); parts.push(b); }
  else if (type === 'i32') { const b = Buffer.alloc(4); b.writeInt32LE(value); parts.push(b); }
  else if (type === 'f32') { const b = Buffer.alloc(4); b.writeFloatLE(value); parts.push(b); }
  else if (type === 'bool') parts.push(Buffer.from([value ? 1 : 0]));
  else if (type === 'string') parts.push(ggufString(value));
  else if (type === 'array') {
    // value: { type: 'i32' | 'string', items }
    const h = Buffer.alloc(12);
    h.writeUInt32LE(types[value.type]);
    h.writeBigUInt64LE(BigInt(value.items.length), 4);
    parts.push(h);
    for (const it of value.items) {
      if (value.type === 'string') parts.push(ggufString(it));
      else { const b = Buffer.alloc(4); b.writeInt32LE(it); parts.push(b); }
    }
  }
  return Buffer.concat(parts);
}

/** The GGUF tensor list for a config: [ggufName, hfSource, type, shape (outermost first), transform]. */
export function ggufPlan(config, { dense = 'BF16', vectors = 'F32', router = 'F32', embedding } = {}) {
  const L = config.num_hidden_layers;
  const plan = [];
  const add = (name, source, type, shape, kind) => plan.push({ name, source, type, shape, kind });
  const V = config.vocab_size, H = config.hidden_size, I = config.intermediate_size, E = config.num_local_experts;
  const D = config.head_dim, Hq = config.num_attention_heads, Hkv = config.num_key_value_heads;
  add('token_embd.weight', 'model.embed_tokens.weight', embedding ?? dense, [V, H], 'dense');
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`, b = `blk.${l}.`;
    add(b + 'attn_norm.weight', p + 'input_layernorm.weight', vectors, [H], 'dense');
    add(b + 'attn_q.weight', p + 'self_attn.q_proj.weight', dense, [Hq * D, H], 'dense');
    add(b + 'attn_q.bias', p + 'self_attn.q_proj.bias', vectors, [Hq * D], 'dense');
    add(b + 'attn_k.weight', p + 'self_attn.k_proj.weight', dense, [Hkv * D, H], 'dense');
    add(b + 'attn_k.bias', p + 'self_attn.k_proj.bias', vectors, [Hkv * D], 'dense');
    add(b + 'attn_v.weight', p + 'self_attn.v_proj.weight', dense, [Hkv * D, H], 'dense');
    add(b + 'attn_v.bias', p + 'self_attn.v_proj.bias', vectors, [Hkv * D], 'dense');
    add(b + 'attn_output.weight', p + 'self_attn.o_proj.weight', dense, [H, Hq * D], 'dense');
    add(b + 'attn_output.bias', p + 'self_attn.o_proj.bias', vectors, [H], 'dense');
    add(b + 'attn_sinks.weight', p + 'self_attn.sinks', vectors, [Hq], 'dense');
    add(b + 'post_attention_norm.weight', p + 'post_attention_layernorm.weight', vectors, [H], 'dense');
    add(b + 'ffn_gate_inp.weight', p + 'mlp.router.weight', router, [E, H], 'dense');
    add(b + 'ffn_gate_inp.bias', p + 'mlp.router.bias', vectors, [E], 'dense');
    add(b + 'ffn_gate_exps.weight', p + 'mlp.experts.gate_up_proj', 'MXFP4', [E, I, H], 'experts-even');
    add(b + 'ffn_gate_exps.bias', p + 'mlp.experts.gate_up_proj_bias', vectors, [E, I], 'bias-even');
    add(b + 'ffn_up_exps.weight', p + 'mlp.experts.gate_up_proj', 'MXFP4', [E, I, H], 'experts-odd');
    add(b + 'ffn_up_exps.bias', p + 'mlp.experts.gate_up_proj_bias', vectors, [E, I], 'bias-odd');
    add(b + 'ffn_down_exps.weight', p + 'mlp.experts.down_proj', 'MXFP4', [E, H, I], 'experts');
    add(b + 'ffn_down_exps.bias', p + 'mlp.experts.down_proj_bias', vectors, [E, H], 'dense');
  }
  add('output_norm.weight', 'model.norm.weight', vectors, [H], 'dense');
  add('output.weight', 'lm_head.weight', dense, [V, H], 'dense');
  return plan;
}

// bf16 values (Uint16Array) -> the target type's bytes.
function encode(values, type) {
  const n = values.length;
  if (type === 'BF16') return Buffer.from(values.buffer, values.byteOffset, n * 2);
  if (type === 'F32') {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bf16ToF32(values[i]);
    return Buffer.from(out.buffer);
  }
  if (type === 'F16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = f32ToF16(bf16ToF32(values[i]));
    return Buffer.from(out.buffer);
  }
  if (type === 'Q8_0') {
    const out = Buffer.alloc((n / 32) * 34);
    const block = new Float32Array(32);
    for (let g = 0; g < n / 32; g++) {
      for (let k = 0; k < 32; k++) block[k] = bf16ToF32(values[g * 32 + k]);
      quantizeQ8Block(block, out, g * 34);
    }
    return out;
  }
  throw new Error(`cannot encode ${type}`);
}

function bf16Of(t, byteOffset, length) {
  const b = tensorBytes(t, byteOffset, length);
  return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
}

// opts.vocab 'placeholder': a token list llama.cpp accepts (it refuses a 'gpt2' model without
// tokenizer.ggml.tokens / merges), so llama.cpp-based runtimes can load the file for a benchmark fed
// with token ids: token i is the text "<i>" (normal type), no merges. Not a usable tokenizer: this
// runtime ignores these arrays (it has its own o200k_harmony), llama.cpp would tokenize text to nothing
// useful. Default: no vocabulary (as before).
function vocabMeta(vocab, size) {
  if (vocab === undefined || vocab === 'none') return [];
  if (vocab !== 'placeholder') throw new Error(`vocab must be 'none' or 'placeholder', got ${vocab}`);
  const tokens = Array.from({ length: size }, (_, i) => `<${i}>`);
  return [
    kv('tokenizer.ggml.pre', 'string', 'gpt-4o'),
    kv('tokenizer.ggml.tokens', 'array', { type: 'string', items: tokens }),
    kv('tokenizer.ggml.token_type', 'array', { type: 'i32', items: new Array(size).fill(1) }),
    kv('tokenizer.ggml.merges', 'array', { type: 'string', items: [] }),
    kv('tokenizer.ggml.bos_token_id', 'u32', 199998),
    kv('tokenizer.ggml.padding_token_id', 'u32', 199999),
  ];
}

/**
 * Writes `out` (GGUF v3) from the Hugging Face checkpoint in `dir`. Options: dense ('BF16' | 'F32' |
 * 'F16' | 'Q8_0', attention and LM head; default BF16), embedding (default: dense), vectors and
 * router ('F32' default, or 'BF16'), chatTemplate, name, alignment (32), vocab ('none' default, or
 * 'placeholder': see vocabMeta).
 * Returns { tensors: [{ name, type, shape, offset, length }], fileBytes }.
 */
export async function writeGgufFromCheckpoint(dir, out, opts = {}) {
  // The checkpoint's fds belong to this call: closed when it ends, however it ends (a bad option, a missing
  // tensor, a write error), and never by another call running beside it.
  const fds = [];
  try {
    return await writeGguf(dir, out, opts, fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

async function writeGguf(dir, out, opts, fds) {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const src = readSafetensors(dir, fds);
  const plan = ggufPlan(config, opts);
  const alignment = opts.alignment ?? 32;
  const arch = opts.architecture ?? 'gpt-oss';
  const a = (k) => `${arch}.${k}`;
  const rs = config.rope_scaling ?? {};
  const meta = [
    kv('general.architecture', 'string', arch),
    kv('general.name', 'string', opts.name ?? 'gpt-oss (gpt-oss-node test writer)'),
    kv('general.alignment', 'u32', alignment),
    kv('general.file_type', 'u32', opts.fileType ?? 38),
    kv(a('block_count'), 'u32', config.num_hidden_layers),
    kv(a('context_length'), 'u32', config.max_position_embeddings),
    kv(a('embedding_length'), 'u32', config.hidden_size),
    kv(a('feed_forward_length'), 'u32', config.intermediate_size),
    kv(a('expert_feed_forward_length'), 'u32', config.intermediate_size),
    kv(a('attention.head_count'), 'u32', config.num_attention_heads),
    kv(a('attention.head_count_kv'), 'u32', config.num_key_value_heads),
    kv(a('attention.key_length'), 'u32', config.head_dim),
    kv(a('attention.value_length'), 'u32', config.head_dim),
    kv(a('attention.sliding_window'), 'u32', config.sliding_window),
    kv(a('attention.layer_norm_rms_epsilon'), 'f32', config.rms_norm_eps),
    kv(a('rope.freq_base'), 'f32', config.rope_theta),
    kv(a('expert_count'), 'u32', config.num_local_experts),
    kv(a('expert_used_count'), 'u32', config.num_experts_per_tok ?? config.experts_per_token),
    kv(a('rope.scaling.type'), 'string', 'yarn'),
    kv(a('rope.scaling.factor'), 'f32', rs.factor ?? 32),
    kv(a('rope.scaling.original_context_length'), 'u32', rs.original_max_position_embeddings ?? 4096),
    kv('tokenizer.ggml.model', 'string', 'gpt2'),
    kv('tokenizer.ggml.eos_token_id', 'u32', 200002),
    kv('tokenizer.ggml.eos_token_ids', 'array', { type: 'i32', items: [199999, 200002, 200012] }),
    ...vocabMeta(opts.vocab, config.vocab_size),
    ...(opts.chatTemplate !== undefined ? [kv('tokenizer.chat_template', 'string', opts.chatTemplate)] : []),
  ];
  // opts.splits N > 1: llama.cpp's gguf-split layout: N files <out without .gguf>-0000i-of-0000N.gguf, the tensors
  // in N contiguous groups, the metadata in the first part only, split.no / split.count / split.tensors.count in each.
  const nParts = opts.splits ?? 1;
  const groups = [];
  for (let i = 0; i < nParts; i++) groups.push(plan.slice(Math.floor((i * plan.length) / nParts), Math.floor(((i + 1) * plan.length) / nParts)));
  const stem = out.replace(/\.gguf$/i, '');
  const result = { tensors: [], fileBytes: 0, files: [] };
  for (let part = 0; part < nParts; part++) {
    const path = nParts > 1 ? `${stem}-${String(part + 1).padStart(5, '0')}-of-${String(nParts).padStart(5, '0')}.gguf` : out;
    const splitMeta = nParts > 1
      ? [kv('split.no', 'u16', part), kv('split.count', 'u16', nParts), kv('split.tensors.count', 'i32', plan.length)]
      : [];
    const partMeta = part === 0 ? [...meta, ...splitMeta] : [...splitMeta, kv('general.alignment', 'u32', alignment)];
    const r = await writePart(path, groups[part], partMeta);
    result.tensors.push(...r.tensors.map((t) => ({ ...t, file: path })));
    result.fileBytes += r.fileBytes;
    result.files.push(path);
    if (part === 0) result.dataStart = r.dataStart;
  }
  return result;

  async function writePart(out, plan, meta) {
  // Tensor infos with offsets (each aligned).
  // Tensor infos with offsets (each aligned).
  let rel = 0;
  const infos = [];
  for (const t of plan) {
    const numel = t.shape.reduce((x, y) => x * y, 1);
    const length = ggmlBytes(t.type, numel);
    infos.push({ ...t, offset: rel, length });
    rel = Math.ceil((rel + length) / alignment) * alignment;
  }
  const head = Buffer.alloc(24);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(infos.length), 8);
  head.writeBigUInt64LE(BigInt(meta.length), 16);
  const tinfo = infos.map((t) => {
    const dims = [...t.shape].reverse();
    const b = Buffer.alloc(4 + 8 * dims.length + 4 + 8);
    b.writeUInt32LE(dims.length, 0);
    dims.forEach((d, i) => b.writeBigUInt64LE(BigInt(d), 4 + 8 * i));
    b.writeUInt32LE(GGML_TYPE[t.type], 4 + 8 * dims.length);
    b.writeBigUInt64LE(BigInt(t.offset), 8 + 8 * dims.length);
    return Buffer.concat([ggufString(t.name), b]);
  });
  let header = Buffer.concat([head, ...meta, ...tinfo]);
  const dataStart = Math.ceil(header.length / alignment) * alignment;
  header = Buffer.concat([header, Buffer.alloc(dataStart - header.length)]);
  const fh = await open(out, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    for (const t of infos) {
      const pos = dataStart + t.offset;
      if (t.kind === 'dense') {
        const s = src.get(t.source);
        if (!s || s.dtype !== 'BF16') throw new Error(`${dir}: ${t.source} missing or not BF16`);
        // Rows in chunks of ~8 MiB of bf16 so a 20b embedding never sits in memory twice.
        const cols = t.shape[t.shape.length - 1];
        const rows = s.length / 2 / cols;
        const chunkRows = Math.max(1, Math.floor((8 << 20) / (cols * 2)));
        let written = 0;
        for (let r = 0; r < rows; r += chunkRows) {
          const nr = Math.min(chunkRows, rows - r);
          const enc = encode(bf16Of(s, r * cols * 2, nr * cols * 2), t.type);
          await fh.write(enc, 0, enc.length, pos + written);
          written += enc.length;
        }
      } else if (t.kind === 'bias-even' || t.kind === 'bias-odd') {
        const s = src.get(t.source);
        const all = bf16Of(s, 0, s.length);
        const half = new Uint16Array(all.length / 2);
        const odd = t.kind === 'bias-odd' ? 1 : 0;
        for (let i = 0; i < half.length; i++) half[i] = all[2 * i + odd];
        const enc = encode(half, t.type);
        await fh.write(enc, 0, enc.length, pos);
      } else {
        // experts: HF [E, R, C/32, 16] blocks + [E, R, C/32] scales -> ggml [E, R', C/32] 17-byte blocks;
        // experts-even/odd take gate_up's rows 0::2 / 1::2.
        const blocks = src.get(t.source + '_blocks'), scales = src.get(t.source + '_scales');
        const [E, R, C] = t.shape;
        const nblk = C / 32;
        const step = t.kind === 'experts' ? 1 : 2, first = t.kind === 'experts-odd' ? 1 : 0;
        const srcRows = R * step;
        let written = 0;
        for (let e = 0; e < E; e++) {
          const bb = tensorBytes(blocks, e * srcRows * nblk * 16, srcRows * nblk * 16);
          const sb = tensorBytes(scales, e * srcRows * nblk, srcRows * nblk);
          const outBuf = Buffer.alloc(R * nblk * 17);
          for (let r = 0; r < R; r++) {
            const sr = r * step + first;
            for (let g = 0; g < nblk; g++) repackMxfp4Block(bb, (sr * nblk + g) * 16, sb[sr * nblk + g], outBuf, (r * nblk + g) * 17);
          }
          await fh.write(outBuf, 0, outBuf.length, pos + written);
          written += outBuf.length;
        }
      }
    }
    const total = dataStart + rel;
    await fh.truncate(total);
    return { tensors: infos.map((t) => ({ name: t.name, type: t.type, shape: t.shape, offset: dataStart + t.offset, length: t.length })), fileBytes: total, dataStart };
  } finally {
    await fh.close();
  }
  }
}
