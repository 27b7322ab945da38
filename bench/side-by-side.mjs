#!/usr/bin/env node
// This package and node-llama-cpp 3.21.1 on the SAME GGUF file, same threads, same context, one after
// the other in child processes, with the machine's read bandwidth and load measured beside each run.
//
//   node bench/side-by-side.mjs [--gguf FILE] [--keep] [--scratch DIR] [--threads 2] [--context 256]
//        [--prefill 128] [--decode 32] [--runs ours-f32,ours-q8,ours-avx2-f32,ours-avx2-q8,nlc,nlc-avx2]
//        (ours[-ISA]-default: no activations option, the CPU's default for that ISA)
//        [--label NAME] [--out bench/results]
//
// The file: --gguf when it exists, else a gpt-oss-20b-shaped random checkpoint (scripts/make-checkpoint.mjs
// --preset 20b, 13.8 GB) converted by scripts/make-gguf.mjs to the published gpt-oss-20b-mxfp4.gguf's types
// (MXFP4 experts, Q8_0 attention / embedding / LM head, F32 vectors and router) with a placeholder token
// list (llama.cpp refuses a model without one; both sides are fed token ids). The checkpoint is deleted
// once converted, the GGUF at the end unless --keep. Disk and memory are checked first.
// node-llama-cpp is installed into the scratch dir with `npm i --no-save` (not a dependency of this
// package); 'nlc-avx2' runs a copy of that install whose ggml CPU variants are cut down to the AVX2 one
// ("haswell"), the counterpart of GPTOSS_CPU_ISA=avx2 on an AVX-512 machine.
//
// Per run: prefill of --prefill tokens from an empty context; decode of --decode tokens after a prompt
// of --context tokens (greedy, one token a forward pass); wall-clock tok/s and the process's CPU seconds
// per token (load-independent on a shared machine); the read bandwidth (ops.readBandwidth, --threads
// threads, 1 GiB) and load average just before the run; bytes a decode token reads (every dense tensor,
// one embedding row, top-k/E of the experts: the same for both runtimes on the same file) and the share
// of the bandwidth that decode reached.
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { freemem, hostname, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { decodeBytesPerToken } from './decode-bytes.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NLC_VERSION = '3.21.1';
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const threads = Number(opt('--threads', '2'));
const context = Number(opt('--context', '256'));
const prefillN = Number(opt('--prefill', '128'));
const decodeN = Number(opt('--decode', '32'));
// Token ids below the vocabulary (--vocab-size, passed to the children by the parent from the file).
const vocabSize = Number(opt('--vocab-size', '201088'));
const tokensFor = (n, seed) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % Math.min(vocabSize, 199998));

function memAvailable() {
  const m = readFileSync('/proc/meminfo', 'utf8').match(/MemAvailable:\s+(\d+)/);
  return m ? Number(m[1]) * 1024 : freemem();
}
function rss() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`${k}:\\s+(\\d+)`)) || [0, 0])[1]) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile') };
}
const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

// ---------------- children: one runtime each ----------------
async function childOurs(gguf, activations) {
  const { loadModel } = await import(join(root, 'dist/model.js'));
  const { cpuInfo } = await import(join(root, 'dist/ops.js'));
  const t0 = performance.now();
  // 'default': no activations option, so the CPU's default for the ISA in use (lib/model.ts defaultCpuActivations).
  const model = await loadModel(gguf, { device: 'cpu', activations: activations === 'default' ? undefined : activations });
  const loadMs = performance.now() - t0;
  const bytesPerToken = decodeBytesPerToken(model);
  const afterLoad = rss();
  const info = cpuInfo();
  // prefill
  let s = model.createSession({ maxContext: prefillN + 1 });
  await s.append(tokensFor(16, 2)); // warm-up (first touch of every weight page)
  await s.reset();
  let c0 = cpuSeconds(), t = performance.now();
  await s.append(tokensFor(prefillN, 3));
  const prefill = { ms: performance.now() - t, cpuS: cpuSeconds() - c0 };
  await s.dispose();
  // decode after a prompt of `context` tokens
  s = model.createSession({ maxContext: context + decodeN + 4 });
  await s.append(tokensFor(context, 4));
  let token = await s.sample({ temperature: 0 }, 0.5);
  for (let i = 0; i < 2; i++) token = await s.stepSample(token, { temperature: 0 }, 0.5);
  c0 = cpuSeconds();
  t = performance.now();
  for (let done = 0; done < decodeN; ) {
    const ids = await s.stepSampleMany(token, { temperature: 0 }, new Array(Math.min(16, decodeN - done)).fill(0.5));
    token = ids[ids.length - 1];
    done += ids.length;
  }
  const decode = { ms: performance.now() - t, cpuS: cpuSeconds() - c0 };
  await s.dispose();
  const result = { runtime: 'gpt-oss-node', isa: info.isa, threads: info.threads, activations: model.info.activations, loadMs, rssAfterLoad: afterLoad, bytesPerToken, prefill, decode };
  await model.dispose();
  return result;
}

async function childNlc(gguf, nlcDir) {
  const { getLlama } = await import(join(nlcDir, 'node_modules/node-llama-cpp/dist/index.js'));
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const loadMs = performance.now() - t0;
  const afterLoad = rss();
  const ctx = await model.createContext({ contextSize: context + decodeN + 8, threads, batchSize: Math.max(prefillN, 512), sequences: 1 });
  const seq = ctx.getSequence();
  await seq.evaluateWithoutGeneratingNewTokens(tokensFor(16, 2)); // warm-up
  await seq.clearHistory();
  let c0 = cpuSeconds(), t = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(tokensFor(prefillN, 3));
  const prefill = { ms: performance.now() - t, cpuS: cpuSeconds() - c0 };
  await seq.clearHistory();
  const prompt = tokensFor(context, 4);
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  // Each step of the generator is one forward pass of one token (greedy); two warm-up steps.
  let n = 0, decode = null;
  for await (const _ of seq.evaluate(prompt.slice(-1), { temperature: 0 })) {
    n++;
    if (n === 2) {
      c0 = cpuSeconds();
      t = performance.now();
    }
    if (n === 2 + decodeN) {
      decode = { ms: performance.now() - t, cpuS: cpuSeconds() - c0 };
      break;
    }
  }
  const result = {
    runtime: `node-llama-cpp ${NLC_VERSION}`, systemInfo: llama.systemInfo.trim(), threads: ctx.currentThreads ?? threads,
    contextSize: ctx.contextSize, loadMs, rssAfterLoad: afterLoad, prefill, decode,
  };
  await ctx.dispose();
  await model.dispose();
  return result;
}

if (argv[0] === '--child') {
  const [, kind, gguf, extra] = argv;
  const r = kind === 'ours' ? await childOurs(gguf, extra) : await childNlc(gguf, extra);
  process.stdout.write(`\nRESULT ${JSON.stringify(r)}\n`);
  process.exit(0);
}

// ---------------- parent ----------------
const scratch = resolve(opt('--scratch', '/tmp/gptoss-side-by-side'));
const runs = opt('--runs', 'ours-f32,ours-q8,ours-avx2-f32,ours-avx2-q8,nlc,nlc-avx2').split(',');
const outDir = opt('--out', join(root, 'bench/results'));
mkdirSync(scratch, { recursive: true });
const log = (s) => console.log(s);
const sh = (cmd, args, options = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status})`);
};
const gb = (b) => (b / 1e9).toFixed(2);

let gguf = opt('--gguf', join(scratch, 'gpt-oss-20b-shape.gguf'));
const made = !existsSync(gguf);
if (made) {
  const fs = statfsSync(scratch);
  const free = fs.bavail * fs.bsize;
  const need = 13.8e9 + 12.2e9 + 1e9;
  log(`disk: ${gb(free)} GB free in ${scratch}, the checkpoint + GGUF need ${gb(need)} GB; memory: ${gb(memAvailable())} GB available of ${gb(totalmem())}`);
  if (free < need) throw new Error(`not enough disk in ${scratch}: ${gb(free)} GB free, ${gb(need)} GB needed (pass --scratch or --gguf)`);
  const ckpt = join(scratch, 'ckpt-20b');
  sh(process.execPath, [join(root, 'scripts/make-checkpoint.mjs'), ckpt, '--preset', '20b']);
  sh(process.execPath, [join(root, 'scripts/make-gguf.mjs'), ckpt, gguf, '--dense', 'Q8_0', '--vocab', 'placeholder']);
  rmSync(ckpt, { recursive: true, force: true });
}
gguf = resolve(gguf);
const fileBytes = statSync(gguf).size;
const { readGguf, ggufConfig } = await import(join(root, 'dist/loader/gguf.js'));
const fileVocab = ggufConfig(readGguf(gguf)).vocabSize;
log(`gguf: ${gguf} (${gb(fileBytes)} GB); memory available ${gb(memAvailable())} GB of ${gb(totalmem())}`);
if (memAvailable() < fileBytes * 1.05) log(`warning: the file does not fit the available memory: decode will read from disk`);

// node-llama-cpp into the scratch dir (not this package's dependency).
const nlcDir = join(scratch, 'nlc');
const nlcPkg = join(nlcDir, 'node_modules/node-llama-cpp/package.json');
if (runs.some((r) => r.startsWith('nlc')) && (!existsSync(nlcPkg) || JSON.parse(readFileSync(nlcPkg, 'utf8')).version !== NLC_VERSION)) {
  mkdirSync(nlcDir, { recursive: true });
  writeFileSync(join(nlcDir, 'package.json'), '{"name":"side-by-side-scratch","private":true}\n');
  sh('npm', ['i', '--no-save', '--no-audit', '--no-fund', `node-llama-cpp@${NLC_VERSION}`], { cwd: nlcDir });
}
// The AVX2-only copy: ggml picks the best CPU variant it finds; leave it only the AVX2 ("haswell") one.
const nlcAvx2Dir = join(scratch, 'nlc-avx2');
if (runs.includes('nlc-avx2') && !existsSync(join(nlcAvx2Dir, 'node_modules'))) {
  cpSync(nlcDir, nlcAvx2Dir, { recursive: true });
  const bins = join(nlcAvx2Dir, 'node_modules/@node-llama-cpp/linux-x64/bins/linux-x64');
  for (const f of readdirSync(bins)) if (/^libggml-cpu-.*\.so$/.test(f) && f !== 'libggml-cpu-haswell.so') rmSync(join(bins, f));
}

// Warm the page cache: both runtimes map the file; read it once so neither pays the disk.
{
  const t = performance.now();
  const fd = openSync(gguf, 'r');
  const buf = Buffer.alloc(16 << 20);
  for (let pos = 0; pos < fileBytes; pos += buf.length) readSync(fd, buf, 0, buf.length, pos);
  closeSync(fd);
  log(`page cache warmed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

process.env.GPTOSS_THREADS = String(threads);
const { readBandwidth } = await import(join(root, 'dist/ops.js'));
const results = [];
let bytesPerToken = null;
for (const run of runs) {
  const env = { ...process.env, GPTOSS_THREADS: String(threads) };
  delete env.GPTOSS_CPU_ISA;
  delete env.GPTOSS_CPU_ACTIVATIONS;
  let args;
  if (run.startsWith('ours')) {
    const m = run.match(/^ours(?:-(avx2|avxvnni|avx512|avx512vnni))?-(f32|q8|default)$/);
    if (!m) throw new Error(`unknown run ${run}`);
    if (m[1]) env.GPTOSS_CPU_ISA = m[1];
    args = ['ours', gguf, m[2]];
  } else if (run === 'nlc' || run === 'nlc-avx2') {
    args = ['nlc', gguf, run === 'nlc' ? nlcDir : nlcAvx2Dir];
  } else throw new Error(`unknown run ${run}`);
  const bandwidth = readBandwidth(1024, 3);
  const load = loadavg()[0];
  const started = new Date().toISOString();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', ...args, ...argv, '--vocab-size', String(fileVocab)], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) {
    log(`${run}: failed (status ${r.status})\n${(r.stderr || '').slice(-2000)}`);
    results.push({ run, started, failed: true, stderr: (r.stderr || '').slice(-2000) });
    continue;
  }
  const res = { run, started, loadAvg1: load, loadAvgAfter: loadavg()[0], readBandwidthGBs: bandwidth, ...JSON.parse(line.slice(7)) };
  if (res.bytesPerToken) bytesPerToken = res.bytesPerToken;
  results.push(res);
  const pf = (prefillN * 1000) / res.prefill.ms, dc = (decodeN * 1000) / res.decode.ms;
  log(`${run.padEnd(14)} ${started.slice(11, 19)} load ${load.toFixed(1)}: prefill ${prefillN} ${pf.toFixed(1)} tok/s (${(res.prefill.cpuS / prefillN * 1000).toFixed(0)} CPU-ms/token), ` +
    `decode ctx ${context} ${dc.toFixed(2)} tok/s (${(res.decode.cpuS / decodeN * 1000).toFixed(0)} CPU-ms/token), read bw ${bandwidth.toFixed(1)} GB/s` +
    `${res.isa ? `, isa ${res.isa}, ${res.activations}` : `, ${res.systemInfo}`}`);
}
for (const r of results) {
  if (r.failed || !bytesPerToken) continue;
  const dc = (decodeN * 1000) / r.decode.ms;
  r.bytesPerToken = bytesPerToken;
  r.decodeShareOfBandwidth = (dc * bytesPerToken) / (r.readBandwidthGBs * 1e9);
}
if (bytesPerToken) log(`bytes a decode token reads: ${gb(bytesPerToken)} GB (both runtimes, same file); decode at % of the read bandwidth measured before each run:`);
for (const r of results) if (!r.failed && r.decodeShareOfBandwidth) log(`  ${r.run.padEnd(14)} ${(100 * r.decodeShareOfBandwidth).toFixed(0)}%`);

const summary = {
  date: new Date().toISOString(), host: hostname(), gguf, fileBytes, threads, context, prefill: prefillN, decode: decodeN,
  loadAvgEnd: loadavg(), results,
};
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `${summary.date.slice(0, 16).replace(':', '')}-side-by-side${opt('--label') ? '-' + opt('--label') : ''}.json`);
writeFileSync(file, JSON.stringify(summary, null, 2));
log(`wrote ${file}`);
if (made && !argv.includes('--keep')) {
  rmSync(gguf, { force: true });
  log(`deleted ${gguf}`);
}
