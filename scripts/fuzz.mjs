#!/usr/bin/env node
// Seeded fuzzing of what a user hands the runtime (issue 16): damaged checkpoints (config.json,
// safetensors headers and data, model.safetensors.index.json) and damaged GGUF files (the header's
// integers, strings and type tags, truncations, flipped bytes) through loadModel + forward, and
// Harmony token streams through the streaming parser. Cases run in child processes, in batches: the
// child announces each case before running it, so a signal or a hang is pinned on one case, and the
// next child picks up after it.
//
//   node scripts/fuzz.mjs [--kind checkpoint|gguf|harmony|all] [--cases N] [--seed S] [--jobs J] [--json]
//
// A case fails when the child dies by a signal or exits early (crash), when a case runs past 20 s
// (hang), when loadModel/forward throws something other than CheckpointError/ConfigError (untyped),
// or an error that does not name the file it is about (unnamed). Harmony cases fail when the parser
// throws or emits a malformed event. Exit status 1 when any case failed. Needs `npx tsc` (dist/).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Xoshiro128, writeCheckpoint, TINY } from './checkpoint-writer.mjs';
import { writeGgufFromCheckpoint } from './gguf-writer.mjs';

const HANG_MS = 20_000;
const BATCH = 40;
const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist/index.js');

// The base checkpoint: the tiny preset cut down so that a case loads in milliseconds.
const BASE = { ...TINY, vocabSize: 256, hiddenSize: 64, intermediateSize: 64, numLayers: 2, numExperts: 4, expertsPerToken: 2, numHeads: 4, numKvHeads: 2, headDim: 16, slidingWindow: 4, seed: 16 };

// ---------------------------------------------------------------------------------------------
// Checkpoint mutations. Each returns a short description; r: Xoshiro128 of (seed, case).
// ---------------------------------------------------------------------------------------------
const WEIRD = [0, -1, 1, 2, 3, 7, 63, 4096, 2 ** 24 + 1, 2 ** 31, 2 ** 53, 1e9, 1e308, -1e-5, 0.5, 1.5, 1e-40, null, 'x', 'NaN', '', [], {}, [1, 2], true, false];
const pick = (r, a) => a[r.nextU32() % a.length];
const int = (r, n) => r.nextU32() % n;

function readHeader(file) {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { json: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n), raw: b, n };
}
function writeHeader(file, json, data, { pad = 0, lengthDelta = 0 } = {}) {
  const text = Buffer.from(JSON.stringify(json) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(0, text.length + lengthDelta)));
  writeFileSync(file, Buffer.concat([len, text, data]));
}

const configMutations = [
  (r, c) => { const k = pick(r, Object.keys(c)); const v = pick(r, WEIRD); c[k] = v; return `config ${k} = ${JSON.stringify(v)}`; },
  (r, c) => { const k = pick(r, Object.keys(c)); delete c[k]; return `config without ${k}`; },
  (r, c) => { const k = pick(r, ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_local_experts', 'num_experts_per_tok', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'sliding_window', 'max_position_embeddings']); c[k] = c[k] + pick(r, [-1, 1, 2, -2, 32, c[k]]); return `config ${k} off by a little`; },
  (r, c) => { const rs = c.rope_scaling ?? {}; const k = pick(r, ['factor', 'beta_fast', 'beta_slow', 'original_max_position_embeddings', 'rope_type', 'truncate']); rs[k] = pick(r, WEIRD); c.rope_scaling = rs; return `rope_scaling.${k} = ${JSON.stringify(rs[k])}`; },
  (r, c) => { c.layer_types = pick(r, [[], ['x'], null, 'sliding_attention', c.layer_types?.slice(1), [...(c.layer_types ?? []), 'full_attention']]); return `layer_types = ${JSON.stringify(c.layer_types)}`; },
  (r, c) => { c.rope_scaling = pick(r, ['yarn', 5, [], null]); return `rope_scaling = ${JSON.stringify(c.rope_scaling)}`; },
];

const headerMutations = [
  (r, h) => { const t = pick(r, tensorNames(h)); h[t].dtype = pick(r, ['F16', 'F32', 'U8', 'I64', 'BF17', '', 5, null, 'F8_E4M3']); return `${t} dtype ${JSON.stringify(h[t].dtype)}`; },
  (r, h) => {
    const t = pick(r, tensorNames(h));
    const s = h[t].shape;
    const i = int(r, s.length + 1);
    const empty = [2 ** 45, 0]; // no bytes, so the size check agrees: a dimension past the runtime's 2^40 alone
    h[t].shape = pick(r, [[...s, 1], s.slice(1), [...s].reverse(), s.map((d, j) => (j === i ? pick(r, [0, -1, d + 1, 2 ** 40, 1.5, 'x']) : d)), [1, 1, 1, 1, 1, 1, 1, 1, ...s], empty, null, 'x']);
    if (h[t].shape === empty) h[t].data_offsets = [h[t].data_offsets[0], h[t].data_offsets[0]];
    return `${t} shape ${JSON.stringify(h[t].shape)}`;
  },
  (r, h) => { const t = pick(r, tensorNames(h)); const [a, b] = h[t].data_offsets; h[t].data_offsets = pick(r, [[b, a], [a + 1, b + 1], [a, b + 2], [a - 2, b - 2], [0, b - a], [a, 2 ** 53], [-1, b], [a], null, [a, b, 0]]); return `${t} data_offsets ${JSON.stringify(h[t].data_offsets)}`; },
  (r, h) => { const t = pick(r, tensorNames(h)); delete h[t]; return `without ${t}`; },
  (r, h) => { const t = pick(r, tensorNames(h)); h[`${t}.copy`] = { ...h[t] }; return `${t} duplicated under another name`; },
  (r, h) => { h[pick(r, ['zz.empty', 'a.empty'])] = { dtype: 'BF16', shape: [0], data_offsets: [0, 0] }; return 'an extra empty tensor'; },
  (r, h) => { h.__metadata__ = pick(r, [null, 5, 'x', { format: 'pt' }, []]); return `__metadata__ ${JSON.stringify(h.__metadata__)}`; },
];
const tensorNames = (h) => Object.keys(h).filter((k) => k !== '__metadata__');

const fileMutations = [
  (r, f) => { const b = readFileSync(f); const at = int(r, b.length); writeFileSync(f, b.subarray(0, at)); return `truncated at ${at} of ${b.length}`; },
  (r, f) => { const { json, data } = readHeader(f); writeHeader(f, json, data, { pad: 1 + int(r, 7) }); return 'header padded to an odd data start'; },
  (r, f) => { const { json, data } = readHeader(f); const d = pick(r, [-1, 1, -8, 8, 1e6, -1e9]); writeHeader(f, json, data, { lengthDelta: d }); return `header length off by ${d}`; },
  (r, f) => { const b = readFileSync(f); const n = Number(b.readBigUInt64LE(0)); for (let k = 0; k < 1 + int(r, 8); k++) b[8 + int(r, n)] = int(r, 256); writeFileSync(f, b); return 'header bytes flipped'; },
  (r, f) => { const b = readFileSync(f); b.writeBigUInt64LE(BigInt(pick(r, [0, 1, 7, 2 ** 40])), 0); writeFileSync(f, b); return 'header length field replaced'; },
  (r, f) => { const b = readFileSync(f); writeFileSync(f, Buffer.concat([b, Buffer.alloc(1 + int(r, 4096), 0x41)])); return 'garbage appended'; },
  (r, f) => { const b = readFileSync(f); const n = Number(b.readBigUInt64LE(0)); for (let k = 0; k < 64; k++) b[8 + n + int(r, b.length - 8 - n)] = 0xff; writeFileSync(f, b); return 'data bytes set to 0xff (NaN bf16)'; },
];

const indexMutations = [
  (r, ix) => { const k = pick(r, Object.keys(ix.weight_map)); ix.weight_map[k] = pick(r, ['model-00009-of-00002.safetensors', '../x', '', '.', 5, null, 'config.json']); return `weight_map[${k}] = ${JSON.stringify(ix.weight_map[k])}`; },
  (r, ix) => { const k = pick(r, Object.keys(ix.weight_map)); delete ix.weight_map[k]; return `weight_map without ${k}`; },
  (r, ix) => { ix.weight_map['model.extra.weight'] = Object.values(ix.weight_map)[0]; return 'weight_map lists an absent tensor'; },
  (r, ix) => { const v = pick(r, [null, [], 5, 'x', {}]); ix.weight_map = v; return `weight_map = ${JSON.stringify(v)}`; },
  (r, ix) => { const v = pick(r, [null, [], 5, 'x']); for (const k of Object.keys(ix)) delete ix[k]; ix.__replace = v; return `index.json = ${JSON.stringify(v)}`; },
];

async function makeCase(dir, base, sharded, seed, i) {
  const r = new Xoshiro128(seed, `checkpoint-${i}`);
  const src = sharded ? base.sharded : base.single;
  mkdirSync(dir, { recursive: true });
  const files = sharded ? ['config.json', 'model.safetensors.index.json', ...base.shards] : ['config.json', 'model.safetensors'];
  for (const f of files) copyFileSync(join(src, f), join(dir, f));
  const what = [];
  const rounds = 1 + (r.nextU32() % 4 === 0 ? 1 : 0);
  for (let k = 0; k < rounds; k++) {
    const family = int(r, sharded ? 4 : 3);
    if (family === 0) {
      const p = join(dir, 'config.json');
      let c;
      try {
        c = JSON.parse(readFileSync(p, 'utf8'));
      } catch {
        continue; // an earlier round cut it
      }
      if (c === null || typeof c !== 'object') continue;
      try {
        what.push(pick(r, configMutations)(r, c));
      } catch {
        continue; // not applicable to what an earlier round left
      }
      writeFileSync(p, int(r, 20) === 0 ? JSON.stringify(c).slice(0, int(r, 40)) : JSON.stringify(c));
    } else if (family === 1) {
      const f = join(dir, sharded ? pick(r, base.shards) : 'model.safetensors');
      let header;
      try {
        header = readHeader(f);
      } catch {
        continue; // an earlier round damaged it beyond parsing
      }
      const { json, data } = header;
      if (json === null || typeof json !== 'object' || tensorNames(json).length === 0) continue;
      try {
        what.push(pick(r, headerMutations)(r, json));
      } catch {
        continue;
      }
      writeHeader(f, json, data);
    } else if (family === 2) {
      const f = join(dir, sharded ? pick(r, base.shards) : 'model.safetensors');
      try {
        what.push(pick(r, fileMutations)(r, f));
      } catch {
        // a header-level mutation of a file an earlier round damaged beyond parsing: skipped
      }
    } else {
      const p = join(dir, 'model.safetensors.index.json');
      const ix = JSON.parse(readFileSync(p, 'utf8'));
      if (ix === null || typeof ix !== 'object' || ix.weight_map === null || typeof ix.weight_map !== 'object') continue; // replaced by an earlier round
      try {
        what.push(pick(r, indexMutations)(r, ix));
      } catch {
        continue;
      }
      writeFileSync(p, '__replace' in ix ? JSON.stringify(ix.__replace) : JSON.stringify(ix));
    }
  }
  if (int(r, 50) === 0) {
    const f = join(dir, 'model.safetensors');
    rmSync(f, { force: true });
    if (int(r, 2)) mkdirSync(f);
    else symlinkSync('model.safetensors', f);
    what.push('model.safetensors is a directory or a symlink loop');
  }
  return what.join('; ');
}

// ---------------------------------------------------------------------------------------------
// GGUF mutations: a copy of the base file (dense Q8_0, so the header holds several tensor types) with
// one or two of these. `info` is the writer's answer (dataStart: where the header, metadata and tensor
// infos end).
// ---------------------------------------------------------------------------------------------
const GGUF_INTS = [0n, 1n, 2n, 3n, 7n, 31n, 32n, 33n, 255n, 4096n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 40n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
const ggufMutations = [
  // a 32- or 64-bit integer of the header region (counts, lengths, dims, types, offsets) set to an edge value
  (r, buf, info) => {
    const at = int(r, Math.max(1, info.dataStart - 8));
    const v = pick(r, GGUF_INTS);
    if (int(r, 2)) buf.writeUInt32LE(Number(v & 0xffffffffn), at);
    else buf.writeBigUInt64LE(v, at);
    return { buf, what: `header integer at ${at} := ${v}` };
  },
  // one tensor info's field: dims, type or offset
  (r, buf, info) => {
    const t = pick(r, info.tensors);
    const key = Buffer.concat([Buffer.from([t.name.length, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(t.name)]);
    const at = buf.indexOf(key) + key.length;
    if (at < key.length) throw new Error('not found');
    const field = int(r, 4); // 0 n_dims, 1 a dim, 2 the type, 3 the offset
    const nd = buf.readUInt32LE(at);
    const pos = field === 0 ? at : field === 1 ? at + 4 + 8 * int(r, Math.max(1, Math.min(nd, 4))) : field === 2 ? at + 4 + 8 * nd : at + 8 + 8 * nd;
    const v = pick(r, GGUF_INTS);
    if (field === 0 || field === 2) buf.writeUInt32LE(Number(v & 0xffffffffn), pos);
    else buf.writeBigUInt64LE(v, pos);
    return { buf, what: `tensor '${t.name}' ${['n_dims', 'dim', 'type', 'offset'][field]} := ${v}` };
  },
  // bytes of the header region flipped
  (r, buf, info) => {
    const n = 1 + int(r, 8);
    for (let k = 0; k < n; k++) buf[int(r, info.dataStart)] ^= 1 << int(r, 8);
    return { buf, what: `${n} header bytes flipped` };
  },
  // the file cut short (inside the header or the data), or grown with garbage
  (r, buf, info) => {
    if (int(r, 4) === 0) {
      const extra = Buffer.alloc(1 + int(r, 4096), int(r, 256));
      return { buf: Buffer.concat([buf, extra]), what: `${extra.length} bytes appended` };
    }
    const len = int(r, 2) ? int(r, info.dataStart) : info.dataStart + int(r, buf.length - info.dataStart);
    return { buf: buf.subarray(0, len), what: `cut to ${len} of ${buf.length} bytes` };
  },
  // a metadata value's type tag changed (the key stays): the loader must check what it reads
  (r, buf) => {
    const keys = ['general.alignment', 'gpt-oss.block_count', 'gpt-oss.embedding_length', 'gpt-oss.expert_count', 'gpt-oss.attention.head_count', 'gpt-oss.context_length'];
    const k = pick(r, keys);
    const at = buf.indexOf(Buffer.from(k));
    if (at < 0) throw new Error('not found');
    const tag = pick(r, [0, 1, 4, 6, 7, 8, 9, 10, 12, 13, 99, 0xffffffff]);
    buf.writeUInt32LE(tag, at + k.length);
    return { buf, what: `metadata '${k}' type := ${tag}` };
  },
  // bytes of the data region flipped (weights: must load, or fail typed, never crash)
  (r, buf, info) => {
    const n = 1 + int(r, 64);
    for (let k = 0; k < n; k++) buf[info.dataStart + int(r, buf.length - info.dataStart)] ^= 0xff;
    return { buf, what: `${n} data bytes flipped` };
  },
];

function makeGgufCase(file, base, seed, i) {
  const r = new Xoshiro128(seed, `gguf-${i}`);
  let buf = Buffer.from(base.bytes);
  const what = [];
  const rounds = 1 + (int(r, 4) === 0 ? 1 : 0);
  for (let k = 0; k < rounds; k++) {
    try {
      const m = pick(r, ggufMutations)(r, buf, base.info);
      buf = m.buf;
      what.push(m.what);
    } catch {
      // not applicable to what an earlier round left
    }
  }
  writeFileSync(file, buf);
  return what.join('; ');
}

// ---------------------------------------------------------------------------------------------
// The child: runs the cases it is given, announcing each ("start i"), one JSON line per result.
// ---------------------------------------------------------------------------------------------
const CHILD = `
import { loadModel, createHarmonyParser, parseMessages, SPECIAL_TOKENS } from ${JSON.stringify(dist)};
import { createInterface } from 'node:readline';
const KNOWN = new Set(['message-start', 'text', 'tool-call', 'tool-call-error', 'message-end', 'return', 'error']);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line);
  out({ start: c.i });
  if (c.kind === 'checkpoint' || c.kind === 'gguf') {
    try {
      const m = await loadModel(c.dir, { device: 'cpu' });
      // tokens the (possibly mutated) config admits: an argument error is not what is tested here
      const n = Math.min(3, m.config.maxPositionEmbeddings);
      try { await m.forward([1, 2, 3].slice(0, n).map((t) => t % m.config.vocabSize)); } finally { await m.dispose(); }
      out({ i: c.i, ok: true });
    } catch (e) {
      out({ i: c.i, ok: false, name: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) });
    }
  } else {
    try {
      const p = createHarmonyParser();
      const events = [...p.pushAll(c.tokens), ...p.end()];
      parseMessages(c.tokens.filter((t) => Number.isInteger(t)));
      const bad = events.find((e) => !e || !KNOWN.has(e.type) || (e.type === 'error' && typeof e.message !== 'string'));
      out(bad ? { i: c.i, ok: false, name: 'BadEvent', message: JSON.stringify(bad) } : { i: c.i, ok: true });
    } catch (e) {
      out({ i: c.i, ok: false, name: 'Threw', message: String(e?.stack ?? e) });
    }
  }
}
`;

function harmonyCase(seed, i) {
  const r = new Xoshiro128(seed, `harmony-${i}`);
  const specials = [199998, 199999, 200002, 200003, 200005, 200006, 200007, 200008, 200012, 200013, 201087];
  const n = int(r, 300);
  const tokens = [];
  for (let k = 0; k < n; k++) {
    const x = int(r, 100);
    if (x < 35) tokens.push(pick(r, specials));
    else if (x < 92) tokens.push(int(r, 199998));
    else if (x < 97) tokens.push(pick(r, [200005, 200003]), int(r, 199998));
    else tokens.push(pick(r, [-1, 201088, 2 ** 31, 1.5]));
  }
  return tokens;
}

// Runs `cases` ({ i, kind, ... }) through children, `jobs` at a time; resolves to one result a case.
function runCases(cases, jobs) {
  const results = new Map();
  let next = 0;
  const runChild = () =>
    new Promise((resolve) => {
      if (next >= cases.length) return resolve();
      const batch = cases.slice(next, next + BATCH);
      next += batch.length;
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
      let current = null;
      let timer = null;
      let buf = '';
      let stderr = '';
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (current !== null) results.set(current, { ok: false, kind: 'hang', message: `no result after ${HANG_MS / 1000} s` });
          child.kill('SIGKILL');
        }, HANG_MS);
      };
      child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
      child.stdout.on('data', (d) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const o = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if ('start' in o) {
            current = o.start;
            arm();
          } else {
            results.set(o.i, o);
            current = null;
          }
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (current !== null && !results.has(current))
          results.set(current, { ok: false, kind: 'crash', message: `child died (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' | ')}` });
        // cases of this batch after the one that died go to a fresh child
        const rest = batch.filter((c) => !results.has(c.i));
        if (rest.length) cases.push(...rest.filter((c) => c.i !== current));
        resolve(runChild());
      });
      for (const c of batch) child.stdin.write(JSON.stringify(c) + '\n');
      child.stdin.end();
    });
  return Promise.all(Array.from({ length: jobs }, runChild)).then(() => results);
}

function classify(c, res) {
  if (!res) return { kind: 'lost' };
  if (res.kind) return res;
  if (res.ok) return { kind: 'ok' };
  if (c.kind === 'harmony') return { kind: 'failed', message: `${res.name}: ${res.message}` };
  if (res.name !== 'CheckpointError' && res.name !== 'ConfigError') return { kind: 'untyped', message: `${res.name}: ${res.message}` };
  if (!res.message.includes(c.dir)) return { kind: 'unnamed', message: res.message };
  return { kind: 'typed' };
}

export async function fuzz({ kind = 'all', cases = 1000, seed = 1, jobs = Math.min(2, cpus().length) } = {}) {
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'gpt-oss-fuzz-'));
  try {
    const base = { single: join(work, 'base'), sharded: join(work, 'base-sharded'), shards: [] };
    await writeCheckpoint(base.single, BASE);
    await writeCheckpoint(base.sharded, BASE, { shards: 2 });
    base.shards = Object.values(JSON.parse(readFileSync(join(base.sharded, 'model.safetensors.index.json'), 'utf8')).weight_map).filter((v, i, a) => a.indexOf(v) === i);
    const list = [];
    const kinds = kind === 'all' ? ['checkpoint', 'gguf', 'harmony'] : [kind];
    if (kinds.includes('gguf')) {
      const file = join(work, 'base.gguf');
      const info = await writeGgufFromCheckpoint(base.single, file, { dense: 'Q8_0' });
      base.gguf = { bytes: readFileSync(file), info };
    }
    for (let i = 0; i < cases; i++) {
      const k = kinds[i % kinds.length];
      if (k === 'checkpoint') {
        const dir = join(work, `case-${i}`);
        const what = await makeCase(dir, base, i % 5 === 4, seed, i);
        list.push({ i, kind: k, dir, what });
      } else if (k === 'gguf') {
        const file = join(work, `case-${i}.gguf`);  // a loader error names this file (classify: c.dir)
        list.push({ i, kind: k, dir: file, what: makeGgufCase(file, base.gguf, seed, i) });
      } else {
        list.push({ i, kind: k, tokens: harmonyCase(seed, i) });
      }
    }
    const results = await runCases([...list], jobs);
    const counts = {};
    const failures = [];
    for (const c of list) {
      const v = classify(c, results.get(c.i));
      counts[`${c.kind}:${v.kind}`] = (counts[`${c.kind}:${v.kind}`] ?? 0) + 1;
      if (!['ok', 'typed'].includes(v.kind)) failures.push({ case: c.i, kind: c.kind, outcome: v.kind, what: c.what ?? `${c.tokens.length} tokens`, message: v.message });
    }
    return { seed, cases, jobs, seconds: +((performance.now() - t0) / 1000).toFixed(1), counts, failures };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { kind: { type: 'string', default: 'all' }, cases: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, jobs: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const report = await fuzz({ kind: values.kind, cases: Number(values.cases), seed: Number(values.seed), ...(values.jobs ? { jobs: Number(values.jobs) } : {}) });
  if (values.json) console.log(JSON.stringify(report, null, 1));
  else {
    console.log(`fuzz: ${report.cases} cases (seed ${report.seed}, ${report.jobs} jobs) in ${report.seconds} s`, report.counts);
    for (const f of report.failures.slice(0, 50)) console.log(`  case ${f.case} [${f.kind}] ${f.outcome}: ${f.what}\n      ${f.message}`);
    if (report.failures.length > 50) console.log(`  ... ${report.failures.length - 50} more`);
  }
  process.exit(report.failures.length ? 1 : 0);
}
