#!/usr/bin/env node
// Model-level checks on a CUDA device (run by scripts/gpu-check.sh on the GPU host):
//  1. tiny-a on CUDA vs HF transformers' float32 logits: rel L2 < 1e-2, argmax equal wherever the
//     fixture's top1-top2 margin exceeds 1% of the row's largest |logit|, and >= 97% overall;
//  2. CUDA vs the CPU backend on the same weights;
//  3. incremental decoding (prefill + steps, CUDA graph replays) equals the full forward;
//  4. greedy continuation vs greedy.json up to the first step whose margin is below our error;
//  5. the KV cache dtypes (loadModel's kvCache) on deeper random checkpoints written by
//     scripts/make-checkpoint.mjs (scripts/kv-checkpoints.mjs: 6-8 layers, 16-32 experts top-4,
//     window 24, larger attention scores and logits): an 80-token prompt's logits on CUDA per dtype vs
//     the CPU backend with the same cache contents and vs its exact f32 cache, printed as a table; the
//     GPU's default type (f32k-f16v) gated < 1e-2 vs the exact cache with its argmax, the others reported;
//  6. optional: a checkpoint directory (the exact gpt-oss-20b shape) loads, prefills and generates.
//  7. bf16 experts (loadModel's experts: 'bf16'; passed on the H200 in the seventh session): tiny-a-bf16 (the
//     fine-tuned layout, written by transformers) on CUDA vs the CPU backend and vs transformers' own
//     logits (rel L2 < 1e-2; f32 KV cache), incremental decode (the bf16 expert GEMVs) == the full forward (the
//     grouped bf16 tile), transformers' greedy continuation. GPTOSS_CHECK_BF16_EXPERTS=1 adds it to the
//     run, =only runs it alone (scripts/gpu-all.sh does, in its bf16 experts step).
// GPTOSS_CHECK_KV_CACHE: the tiny-a checks' kvCache (default: the device's, f32k-f16v on CUDA);
// GPTOSS_CHECK_DEEP=0 skips check 5 (it sets kvCache itself, so one run a session is enough).
// Prints one line per check and a final "N passed, N failed" line; exit code 1 on any failure.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GPU_DEFAULT_KV_CACHE, KV_CACHE_DTYPES, loadModel } from '../dist/model.js';
import { KV_CHECKPOINTS, cpuLogits, fidelityToExact, kvCheckpoint, kvPrompt, passesExactGate } from './kv-checkpoints.mjs';
import { argmax, hasNaN, relL2 } from './logits.mjs';

const fixture = new URL('../test/fixtures/tiny-a/', import.meta.url).pathname;
const json = (f) => JSON.parse(readFileSync(fixture + f, 'utf8'));
const tokens = json('tokens.json');
const greedy = json('greedy.json');
const margins = json('margins.json');
const refBuf = readFileSync(fixture + 'logits.f32');
const reference = new Float32Array(refBuf.buffer, refBuf.byteOffset, refBuf.byteLength / 4);
const V = 1024;
const bigModel = process.argv[2];

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}  ${detail}`);
}

const device = process.env.GPTOSS_CHECK_DEVICE ?? 'cuda';
const bf16Experts = process.env.GPTOSS_CHECK_BF16_EXPERTS ?? '0';

// Check 7: bf16 experts as stored, on the device (the loader transposes them to [E, out, in] rows).
async function bf16ExpertChecks() {
  const fx = new URL('../test/fixtures/tiny-a-bf16/', import.meta.url).pathname;
  const fxJson = (f) => JSON.parse(readFileSync(fx + f, 'utf8'));
  const fxTokens = fxJson('tokens.json'), fxGreedy = fxJson('greedy.json');
  const buf = readFileSync(fx + 'logits.f32');
  const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const t0 = performance.now();
  // an f32 KV cache: the gates then measure the expert kernels, not the 16-bit cache (3.5e-3 on tiny-a)
  const g = await loadModel(fx, { device, experts: 'bf16', kvCache: 'f32' });
  const loadMs = performance.now() - t0;
  const c = await loadModel(fx, { device: 'cpu', experts: 'bf16' });
  const a = await g.forward(fxTokens), b = await c.forward(fxTokens);
  let same = 0, sameRef = 0;
  for (let t = 0; t < fxTokens.length; t++) {
    same += argmax(a, t * V, V) === argmax(b, t * V, V);
    sameRef += argmax(a, t * V, V) === argmax(ref, t * V, V);
  }
  const eCpu = relL2(a, b), eRef = relL2(a, ref);
  const group = g.info.groups.find((x) => x.group === 'experts');
  check('bf16 experts: tiny-a-bf16 vs transformers', eRef < 1e-2 && !hasNaN(a),
    `rel L2 ${eRef.toExponential(3)} (CPU backend: ${relL2(b, ref).toExponential(3)}), argmax ${sameRef}/${fxTokens.length}, experts ${group?.dtype}, load ${loadMs.toFixed(0)} ms, ${g.info.conversions.join('; ')}`);
  check('bf16 experts: CUDA vs CPU', eCpu < 1e-2 && same >= fxTokens.length - 1, `rel L2 ${eCpu.toExponential(3)}, argmax ${same}/${fxTokens.length}`);
  const s = g.createSession({ maxContext: 128 });
  const rows = [await s.prefillAll(fxTokens.slice(0, 29))];
  for (const t of fxTokens.slice(29)) rows.push(await s.step(t));
  const inc = new Float32Array(fxTokens.length * V);
  let o = 0;
  for (const r of rows) { inc.set(r, o); o += r.length; }
  check('bf16 experts: incremental decode (GEMVs) == full forward (grouped tile)', relL2(inc, a) < 1e-3, `rel L2 ${relL2(inc, a).toExponential(3)}`);
  await s.truncate(0);
  await s.prefill(fxTokens);
  const out = [];
  for (let i = 0; i < fxGreedy.length; i++) {
    const next = await s.sample({ temperature: 0 }, 0.5);
    out.push(next);
    await s.step(next);
  }
  let agreeFirst = 0;
  while (agreeFirst < out.length && out[agreeFirst] === fxGreedy[agreeFirst]) agreeFirst++;
  check("bf16 experts: greedy continuation == transformers' (tiny-a-bf16 greedy.json)", agreeFirst === fxGreedy.length,
    `${agreeFirst}/${fxGreedy.length} equal; got ${out.join(',')}`);
  await s.dispose();
  await g.dispose();
  await c.dispose();
}
if (bf16Experts === 'only') {
  await bf16ExpertChecks();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
const tinyKv = process.env.GPTOSS_CHECK_KV_CACHE || undefined;
const gpu = await loadModel(fixture, { device, ...(tinyKv ? { kvCache: tinyKv } : {}) });
const cpu = await loadModel(fixture, { device: 'cpu' });
console.log(`tiny-a on ${gpu.info.backend}, kv cache ${gpu.info.kvCache}`);
// the option, else GPTOSS_CUDA_KV_CACHE, else f32k-f16v on a GPU; the CPU's cache is f32 whatever the variable says
// (GPTOSS_CHECK_DEVICE=cpu: a dry run of this script on the CPU, whose only cache is f32)
const onCpu = device === 'cpu';
const expectKv = tinyKv || (onCpu ? 'f32' : process.env.GPTOSS_CUDA_KV_CACHE || GPU_DEFAULT_KV_CACHE);
check('KV cache dtype (option, GPTOSS_CUDA_KV_CACHE, default f32k-f16v)', gpu.info.kvCache === expectKv && cpu.info.kvCache === 'f32',
  `${device}: ${gpu.info.kvCache} (expected ${expectKv}), cpu: ${cpu.info.kvCache}`);
// GPTOSS_CUDA_MOE_DECODE=mma-relaid (issue 12 item 1): the experts were re-laid at load (the load report
// says so), and every check below then runs the relaid decode kernel and the grouped GEMM on that layout.
if (!onCpu && process.env.GPTOSS_CUDA_MOE_DECODE === 'mma-relaid')
  check('experts in the decode layout (mma-relaid)', (gpu.info.conversions ?? []).some((c) => /decode layout/.test(c)),
    JSON.stringify(gpu.info.conversions ?? []));

const lg = await gpu.forward(tokens);
const lc = await cpu.forward(tokens);
const err = relL2(lg, reference);
check('tiny-a logits vs transformers', err < 1e-2 && !hasNaN(lg), `rel L2 ${err.toExponential(3)} (CPU backend: ${relL2(lc, reference).toExponential(3)})`);
let agree = 0, required = 0, requiredAgree = 0;
const posErr = [];
for (let t = 0; t < tokens.length; t++) {
  let e = 0;
  for (let i = 0; i < V; i++) e = Math.max(e, Math.abs(lg[t * V + i] - reference[t * V + i]));
  posErr.push(e);
  const same = argmax(lg, t * V, V) === argmax(reference, t * V, V);
  agree += same;
  // Rows whose top1-top2 margin exceeds 1% of the row's largest |logit|: an error within the budget the
  // 1e-2 rel L2 gate allows cannot flip them, so they must agree. (The budget is fixed, not our measured
  // error: a margin above twice our own max error could never flip, and such a check could never fail.)
  let rowMax = 0;
  for (let i = 0; i < V; i++) rowMax = Math.max(rowMax, Math.abs(reference[t * V + i]));
  if (margins.prompt_top1_top2_margin[t] > 1e-2 * rowMax) { required++; requiredAgree += same; }
}
check('tiny-a argmax where margin > 1% of the row max', requiredAgree === required, `${requiredAgree}/${required} (max abs logit error ${Math.max(...posErr).toExponential(2)})`);
check('tiny-a argmax overall >= 97%', agree / tokens.length >= 0.97, `${agree}/${tokens.length}`);
check('CUDA vs CPU backend', relL2(lg, lc) < 1e-2, `rel L2 ${relL2(lg, lc).toExponential(3)}`);

// Incremental decode vs full forward (decode steps replay the captured CUDA graph).
{
  const s = gpu.createSession({ maxContext: 128 });
  const split = 29;
  const rows = [await s.prefillAll(tokens.slice(0, split))];
  for (const t of tokens.slice(split)) rows.push(await s.step(t));
  const inc = new Float32Array(tokens.length * V);
  let o = 0;
  for (const r of rows) { inc.set(r, o); o += r.length; }
  const e = relL2(inc, lg);
  check('incremental decode == full forward', e < 1e-3, `rel L2 ${e.toExponential(3)}`);
  // Greedy continuation, compared up to the first step whose margin is below our error.
  await s.truncate(0);
  let logits = await s.prefill(tokens);
  const out = [];
  for (let i = 0; i < greedy.length; i++) {
    const next = await s.sample({ temperature: 0 }, 0.5);
    out.push(next);
    logits = await s.step(next);
  }
  const tol = 2 * Math.max(...posErr);
  let comparable = greedy.length;
  for (let i = 0; i < greedy.length; i++) if (margins.greedy_top1_top2_margin[i] < tol) { comparable = i; break; }
  const same = out.slice(0, comparable).every((t, i) => t === greedy[i]);
  check('greedy continuation (device sampling)', same, `${comparable} comparable steps; got ${out.join(',')}`);
  // The pipelined decode (ids fed back on the device, steps queued ahead) draws what one step a call
  // draws, greedy and sampled, and stops after a stop id with the same cache length.
  for (const opts of [{ temperature: 0 }, { temperature: 1, topK: 50 }]) {
    const uniforms = Array.from({ length: 24 }, (_, i) => ((i * 0.61803398875) % 1 + 0.013) % 1);
    await s.truncate(0);
    await s.append(tokens);
    const one = [];
    for (const u of uniforms) one.push(await s.stepSample(one.length ? one[one.length - 1] : greedy[0], opts, u));
    const lenOne = s.length;
    await s.truncate(0);
    await s.append(tokens);
    const many = Array.from(await s.stepSampleMany(greedy[0], opts, uniforms));
    const stopAt = 9;
    await s.truncate(0);
    await s.append(tokens);
    const cut = Array.from(await s.stepSampleMany(greedy[0], opts, uniforms, [one[stopAt]]));
    const firstStop = one.indexOf(one[stopAt]);
    const ok = many.join() === one.join() && s.length === tokens.length + cut.length && cut.join() === one.slice(0, firstStop + 1).join() &&
      lenOne === tokens.length + uniforms.length;
    check(`stepSampleMany == stepSample (T=${opts.temperature})`, ok, `${many.length} steps, stop after ${cut.length}`);
  }
  await s.dispose();
}
await gpu.dispose();
await cpu.dispose();

// Q8_0 dense weights on CUDA (q8.cu; issue 15): denseWeights: 'q8' on tiny-a and the same weights as
// GGUF files (experts repacked into the Hugging Face blocks, Q8_0 repacked at upload), vs the CPU.
{
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeGgufFromCheckpoint } = await import('./gguf-writer.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'gpt-oss-gpu-gguf-'));
  try {
    const pairs = [['denseWeights q8', fixture, { denseWeights: 'q8' }]];
    for (const dense of ['BF16', 'Q8_0']) {
      const path = join(dir, `tiny-a-${dense}.gguf`);
      await writeGgufFromCheckpoint(fixture, path, { dense, embedding: dense === 'Q8_0' ? 'Q8_0' : 'BF16' });
      pairs.push([`GGUF ${dense} dense`, path, {}]);
    }
    for (const [name, path, opts] of pairs) {
      const t0 = performance.now();
      const g = await loadModel(path, { device, ...opts });
      const loadMs = performance.now() - t0;
      const c = await loadModel(path, { device: 'cpu', ...opts });
      const a = await g.forward(tokens), b = await c.forward(tokens);
      let same = 0;
      for (let t = 0; t < tokens.length; t++) same += argmax(a, t * V, V) === argmax(b, t * V, V);
      const e = relL2(a, b);
      check(`${name}: CUDA vs CPU`, e < 1e-2 && !hasNaN(a), `rel L2 ${e.toExponential(3)}, argmax ${same}/${tokens.length}, load ${loadMs.toFixed(0)} ms, ${g.info.conversions.join('; ')}`);
      const s = g.createSession({ maxContext: 128 });
      const rows = [await s.prefillAll(tokens.slice(0, 29))];
      for (const t of tokens.slice(29)) rows.push(await s.step(t));
      const inc = new Float32Array(tokens.length * V);
      let o = 0;
      for (const r of rows) { inc.set(r, o); o += r.length; }
      check(`${name}: incremental decode == full forward`, relL2(inc, a) < 1e-3, `rel L2 ${relL2(inc, a).toExponential(3)}`);
      await s.dispose();
      if (name === 'GGUF BF16 dense') {
        const greedyOn = async (m) => {
          const ss = m.createSession({ maxContext: 128 });
          await ss.prefill(tokens);
          const out = [];
          for (let i = 0; i < greedy.length; i++) {
            const next = await ss.sample({ temperature: 0 }, 0.5);
            out.push(next);
            await ss.step(next);
          }
          await ss.dispose();
          return out;
        };
        const st = await loadModel(fixture, { device });
        const want = await greedyOn(st), stLogits = await st.forward(tokens);
        await st.dispose();
        const got = await greedyOn(g);
        check('GGUF BF16 dense on CUDA: greedy == the safetensors form on CUDA', got.join() === want.join(),
          `${got.join(',')}; logits vs safetensors on CUDA rel L2 ${relL2(a, stLogits).toExponential(3)}`);
      }
      await g.dispose();
      await c.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// KV cache dtypes on deeper random checkpoints (issue 12 item 6). Per kvCache, the device's logits
// against (a) the CPU backend holding the same cache contents (its f32 cache with each value rounded as
// the GPU's dtype stores it: cpuLogits) and (b) the CPU's exact f32 cache: what the dtype itself costs.
// Gated: the GPU's default type only (GPU_DEFAULT_KV_CACHE, f32k-f16v), on (b): within 1e-2, argmax
// equal at >= 97% of the rows (kv-checkpoints.mjs passesExactGate). The H200 measured (b) 4.1e-4 / 8.1e-4 / 9.3e-4, argmax 80/80 (seventh session), as the
// CPU emulation predicted. The other types are reported in the table, not gated: on these chaotic random
// checkpoints a 16-bit K tips near-tied router choices, and on CUDA even a cache of the same contents
// can route differently from the CPU (bf16 0.15-0.25 from exact, f16 up to 6e-2).
if (process.env.GPTOSS_CHECK_DEEP !== '0') {
  const root = process.env.GPTOSS_CHECK_CKPT_DIR || join(tmpdir(), 'gptoss-kv-checkpoints');
  const gated = onCpu ? 'f32' : GPU_DEFAULT_KV_CACHE;
  const types = onCpu ? ['f32'] : KV_CACHE_DTYPES;
  const table = new Map(types.map((t) => [t, []]));
  for (const spec of KV_CHECKPOINTS) {
    const dir = kvCheckpoint(root, spec);
    const Vd = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocab_size;
    const prompt = kvPrompt(Vd);
    const exact = cpuLogits(dir, prompt, Vd, null);
    for (const kvCache of types) {
      const m = await loadModel(dir, { device, kvCache });
      const got = await m.forward(prompt);
      await m.dispose();
      const same = kvCache === 'f32' ? exact : cpuLogits(dir, prompt, Vd, kvCache);
      const f = fidelityToExact(got, exact, Vd);
      const cell = `${relL2(got, same).toExponential(2)} / ${f.relL2.toExponential(2)} (${f.agree}/${f.rows}${f.nan ? ', NaN' : ''})`;
      table.get(kvCache).push(cell);
      if (kvCache === gated)
        check(`${spec.name}: ${kvCache} (the default cache) vs the exact f32 cache`, passesExactGate(f),
          `rel L2 ${f.relL2.toExponential(3)} (< 1e-2), argmax ${f.agree}/${f.rows} (>= 97%)`);
    }
  }
  console.log(`\nKV cache on ${device}, per checkpoint: rel L2 vs the CPU with the same cache contents / vs the exact f32 cache (argmax vs exact); gated: ${gated} only`);
  console.log(`| cache | ${KV_CHECKPOINTS.map((c) => c.name).join(' | ')} |`);
  console.log(`|---|${KV_CHECKPOINTS.map(() => '---|').join('')}`);
  for (const [t, cells] of table) console.log(`| ${t === gated ? `**${t}** (gated)` : `${t} (reported)`} | ${cells.join(' | ')} |`);
  console.log('');
}

if (bigModel) {
  const t0 = performance.now();
  const m = await loadModel(bigModel, { device });
  const loadMs = performance.now() - t0;
  const s = m.createSession({ maxContext: 1024 });
  const prompt = Array.from({ length: 512 }, (_, i) => (i * 7919) % 199998);
  const t1 = performance.now();
  const logits = await s.prefill(prompt);
  const prefillMs = performance.now() - t1;
  const gen = [];
  const t2 = performance.now();
  let tok = await s.sample({ temperature: 0 }, 0.5);
  for (let i = 0; i < 64; i++) {
    gen.push(tok);
    await s.append([tok]);
    tok = await s.sample({ temperature: 0.8, topP: 0.95 }, (i * 0.6180339887) % 1);
  }
  const decodeMs = performance.now() - t2;
  const valid = gen.every((t) => Number.isInteger(t) && t >= 0 && t < m.config.vocabSize);
  check(`${bigModel} loads and generates`, valid && !hasNaN(logits),
    `load ${(loadMs / 1000).toFixed(1)} s, prefill 512: ${(512000 / prefillMs).toFixed(0)} tok/s, decode: ${(64000 / decodeMs).toFixed(1)} tok/s, tokens ${gen.slice(0, 8).join(',')}...`);
  await s.dispose();
  await m.dispose();
}
if (bf16Experts === '1') await bf16ExpertChecks();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
