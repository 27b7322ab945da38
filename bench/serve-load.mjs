#!/usr/bin/env node
// Load generator for the serving engine (model.createEngine): N concurrent streams, each a prompt of
// --prompt random token ids and --tokens generated tokens (stop tokens off, so every stream produces
// exactly that many). Reports aggregate output tok/s (all output tokens / wall time from the first
// request to the last token), time to first token and inter-token latency p50/p99 (per token, over
// every stream), and peak resident memory (VmHWM; on CUDA also the device's used memory at the end).
// For comparison it first runs generate() alone on the same model (one stream, same shape).
//   node bench/serve-load.mjs --synthetic 20b [--layers 4] [--streams 1,8] [--prompt 64] [--tokens 32]
//                             [--max-batch-tokens 512] [--max-prefill-tokens N] [--device cpu] [--backend native|session] [--label NAME] [--out bench/results]
//   node bench/serve-load.mjs <model-dir> [same options]
// Uses the built package (dist/). Token ids, not text: the synthetic models carry no meaning.
// More measurements (each optional):
//   --ttft-prompt N        time to first token of one N-token prompt with no other load (median of 3, after a warm-up),
//                          with the engine's maxPrefillTokens (--max-prefill-tokens, else its default) and, when that
//                          differs, again in --max-batch-tokens chunks (the schedule without it) for comparison;
//                          and generate()'s TTFT on the same prompts
//   --max-prefill-tokens N the engines' maxPrefillTokens (tokens in a step when nothing decodes); default the engine's
//   --delay-prompt N       while --delay-streams S (default 32) streams decode, a new N-token prompt arrives: how much
//                          longer the decoding streams' token gaps get while it is prefilled in chunks (max gap
//                          overlapping its prefill minus the p50 gap before it), and its own TTFT
//   --prefix-prompt N      two requests in turn whose prompts share an N-token prefix (then 32 tokens of their
//                          own): TTFT of the first (cold) and the second (its whole blocks found in the prefix cache)
//   --pipeline on|off|both the engine's pipelined decode (createEngine({ pipelineDecode })); both: each --streams count
//                          runs plain, then pipelined, in the same process (an A/B on the same warm device). Default off
//   --http                 the same loads through real HTTP: a child process serves the model with the package's
//                          OpenAI server (lib/server, as `gpt-oss serve` does) on 127.0.0.1, and this process
//                          streams /v1/chat/completions (SSE, include_usage); tokens counted from usage, wall time
//                          from the first request to the last response's end (compare with generate()'s prefill +
//                          decode time); TTFT and gaps from content/reasoning chunks where the model's ids make
//                          text (a random model's do not: its TTFT is a max_tokens 1 request's whole time)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execSync } from 'node:child_process';
import { loadModel } from '../dist/model.js';
import { createSyntheticModel } from '../dist/synthetic.js';
import { generate } from '../dist/generate.js';

function parseArgs(argv) {
  const a = { device: 'cpu', streams: [1, 8], prompt: 64, tokens: 32, maxBatchTokens: 512, maxPrefillTokens: undefined, backend: undefined, label: '', out: 'bench/results', synthetic: null, layers: undefined, model: null, ttftPrompt: 0, prefixPrompt: 0, delayPrompt: 0, delayStreams: 32, http: false, serveChild: false, pipeline: 'off' };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--device') a.device = argv[++i];
    else if (x === '--streams') a.streams = argv[++i].split(',').map(Number);
    else if (x === '--prompt') a.prompt = Number(argv[++i]);
    else if (x === '--tokens') a.tokens = Number(argv[++i]);
    else if (x === '--max-batch-tokens') a.maxBatchTokens = Number(argv[++i]);
    else if (x === '--max-prefill-tokens') a.maxPrefillTokens = Number(argv[++i]);
    else if (x === '--label') a.label = argv[++i];
    else if (x === '--backend') a.backend = argv[++i];
    else if (x === '--out') a.out = argv[++i];
    else if (x === '--synthetic') a.synthetic = argv[++i];
    else if (x === '--layers') a.layers = Number(argv[++i]);
    else if (x === '--ttft-prompt') a.ttftPrompt = Number(argv[++i]);
    else if (x === '--delay-prompt') a.delayPrompt = Number(argv[++i]);
    else if (x === '--prefix-prompt') a.prefixPrompt = Number(argv[++i]);
    else if (x === '--delay-streams') a.delayStreams = Number(argv[++i]);
    else if (x === '--http') a.http = true;
    else if (x === '--pipeline') a.pipeline = argv[++i];
    else if (x === '--serve-child') a.serveChild = true;
    else if (a.model === null && !x.startsWith('--')) a.model = x;
    else throw new Error(`serve-load: unknown argument ${x}`);
  }
  if ((a.model === null) === (a.synthetic === null)) throw new Error('serve-load: give a model folder or --synthetic PRESET');
  if (!['on', 'off', 'both'].includes(a.pipeline)) throw new Error(`serve-load: --pipeline takes on, off or both, got ${a.pipeline}`);
  return a;
}

const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
function peakRss() {
  const s = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(s)[1]) * 1024;
}
function gpuUsed() {
  try {
    return Number(execSync('nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]) * 2 ** 20;
  } catch {
    return null;
  }
}

function prompts(n, len, vocab, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab);
  return Array.from({ length: n }, () => Array.from({ length: len }, next));
}

async function runEngine(model, streams, args, pipelineDecode = args.pipeline === 'on') {
  const engine = model.createEngine({ ...engineCommon(args), ...(pipelineDecode ? { pipelineDecode: true } : {}), maxSequences: streams, maxBatchTokens: Math.max(args.maxBatchTokens, streams), maxContext: args.prompt + args.tokens + 1 });
  const ps = prompts(streams, args.prompt, Math.min(model.config.vocabSize, 199998), 1000 + streams);
  const ttft = [];
  const itl = [];
  let total = 0;
  const t0 = performance.now();
  let tEnd = t0;
  await Promise.all(
    ps.map(async (p, i) => {
      const start = performance.now();
      let last = 0;
      const stream = engine.generate(p, { maxTokens: args.tokens, temperature: 1, seed: i, stopTokens: [] });
      for await (const e of stream) {
        if (e.type !== 'token') continue;
        const t = performance.now();
        if (last === 0) ttft.push(t - start);
        else itl.push(t - last);
        last = t;
        total++;
        tEnd = Math.max(tEnd, t);
      }
      const r = await stream.result;
      if (r.finishReason === 'error') throw r.error;
    }),
  );
  const steps = engine.stats().steps;
  const pipeline = pipelineDecode ? { ...engine.backend.pipelineStats } : null;
  await engine.close();
  const wall = (tEnd - t0) / 1000;
  return {
    streams,
    outputTokens: total,
    wallS: round(wall, 3),
    aggregateTokS: round(total / wall),
    ttftMs: { p50: round(pct(ttft, 50)), p99: round(pct(ttft, 99)) },
    itlMs: { p50: round(pct(itl, 50)), p99: round(pct(itl, 99)) },
    steps,
    backend: engine.backend.constructor.name,
    // decode-only rate of one stream (1000 / ITL p50), to set beside generate()'s decode rate
    decodeTokSFromItl: round(1000 / pct(itl, 50)),
    pipelineDecode,
    pipeline,
  };
}

const median = (xs) => pct(xs, 50);
// What every engine here takes from the command line: the backend and, when given, maxPrefillTokens
// (else the engine's default, max(4096, maxBatchTokens)).
function engineCommon(args) {
  return { ...(args.backend ? { backend: args.backend } : {}), ...(args.maxPrefillTokens !== undefined ? { maxPrefillTokens: args.maxPrefillTokens } : {}) };
}
function commitId() {
  try {
    return readFileSync('COMMIT', 'utf8').trim().slice(0, 12);
  } catch {
    try {
      return execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  }
}

// One N-token prompt, nothing else running: time to its first token (engine). With nothing decoding
// the engine prefills it in steps of up to maxPrefillTokens; `chunked` measures the same prompt in
// maxBatchTokens chunks (maxPrefillTokens = maxBatchTokens: the schedule before maxPrefillTokens), in
// the same process on the same warm device, when the two differ.
async function runTtft(model, args) {
  const vocab = Math.min(model.config.vocabSize, 199998);
  // Time to the first token of the same four prompts through `start` (engine.generate or generate):
  // the median of the last three (the first run warms up: graphs, workspaces).
  const firstTokenTimes = async (start) => {
    const times = [];
    for (let k = 0; k < 4; k++) {
      const [p] = prompts(1, args.ttftPrompt, vocab, 50 + k);
      const t0 = performance.now();
      let first = 0;
      const stream = start(p, { maxTokens: 1, temperature: 1, seed: k, stopTokens: [] });
      for await (const e of stream) if (e.type === 'token' && !first) first = performance.now();
      await stream.result;
      if (k > 0) times.push(first - t0);
    }
    return { ttftMs: round(median(times)), runsMs: times.map((t) => round(t)) };
  };
  const measure = async (maxPrefillTokens) => {
    const engine = model.createEngine({
      ...engineCommon(args),
      ...(maxPrefillTokens !== undefined ? { maxPrefillTokens } : {}),
      ...(args.pipeline === 'on' ? { pipelineDecode: true } : {}),
      maxSequences: 1,
      maxBatchTokens: args.maxBatchTokens,
      maxContext: args.ttftPrompt + 8,
    });
    const ttft = await firstTokenTimes((p, opts) => engine.generate(p, opts));
    await engine.close();
    // maxTokens 1: every step of a request is one of its prefill steps
    return { maxPrefillTokens: engine.maxPrefillTokens, stepsPerRequest: engine.stats().steps / 4, ...ttft };
  };
  const chosen = await measure(args.maxPrefillTokens);
  const chunked = chosen.maxPrefillTokens !== args.maxBatchTokens ? await measure(args.maxBatchTokens) : null;
  // generate() on the same prompts (one Session; its prefill passes take maxPrefillTokensDefault(device) tokens)
  const generateTtft = await firstTokenTimes((p, opts) => generate(model, p, opts));
  return { promptTokens: args.ttftPrompt, maxBatchTokens: args.maxBatchTokens, ...chosen, chunked, generate: generateTtft };
}

// Two requests in turn sharing an N-token prefix: the second's prefill skips the cached whole blocks.
async function runPrefix(model, args) {
  const engine = model.createEngine({ ...engineCommon(args), ...(args.pipeline === 'on' ? { pipelineDecode: true } : {}), maxSequences: 2, maxBatchTokens: args.maxBatchTokens, maxContext: args.prefixPrompt + 64 });
  const vocab = Math.min(model.config.vocabSize, 199998);
  const [shared] = prompts(1, args.prefixPrompt, vocab, 31);
  const own = prompts(2, 32, vocab, 32);
  const out = [];
  for (const k of [0, 1]) {
    const t0 = performance.now();
    let first = 0;
    const stream = engine.generate([...shared, ...own[k]], { maxTokens: 1, temperature: 1, seed: k, stopTokens: [] });
    for await (const e of stream) if (e.type === 'token' && !first) first = performance.now();
    const r = await stream.result;
    out.push({ ttftMs: round(first - t0), promptTokens: r.usage.promptTokens, cachedPromptTokens: r.usage.cachedPromptTokens });
  }
  await engine.close();
  return { prefixTokens: args.prefixPrompt, cold: out[0], warm: out[1], speedup: round(out[0].ttftMs / out[1].ttftMs) };
}

// S streams decode; a new N-token prompt arrives: the gap it adds to their tokens (engine).
async function runDelay(model, args) {
  const S = args.delayStreams;
  const engine = model.createEngine({ ...engineCommon(args), ...(args.pipeline === 'on' ? { pipelineDecode: true } : {}), maxSequences: S + 1, maxBatchTokens: Math.max(args.maxBatchTokens, S + 1), maxContext: Math.max(args.delayPrompt + 8, 64 + 600) });
  const vocab = Math.min(model.config.vocabSize, 199998);
  const ps = prompts(S, 64, vocab, 77);
  const stamps = ps.map(() => []);
  let release;
  const warm = new Promise((r) => (release = r));
  const streams = ps.map((p, i) => engine.generate(p, { maxTokens: 500, temperature: 1, seed: i, stopTokens: [] }));
  const readers = streams.map(async (st, i) => {
    for await (const e of st) {
      if (e.type !== 'token') continue;
      stamps[i].push(performance.now());
      if (stamps.every((x) => x.length >= 24)) release();
    }
  });
  await warm;
  const [big] = prompts(1, args.delayPrompt, vocab, 99);
  const tSubmit = performance.now();
  let tFirst = 0;
  const newcomer = engine.generate(big, { maxTokens: 1, temperature: 1, seed: 5, stopTokens: [] });
  for await (const e of newcomer) if (e.type === 'token' && !tFirst) tFirst = performance.now();
  await newcomer.result;
  await new Promise((r) => setTimeout(r, 200)); // a few more decode steps after it
  for (const st of streams) st.abort();
  await Promise.all(readers);
  await Promise.all(streams.map((st) => st.result));
  await engine.close();
  const before = [], during = [];
  for (const xs of stamps)
    for (let j = 1; j < xs.length; j++) {
      const gap = xs[j] - xs[j - 1];
      if (xs[j] <= tSubmit) before.push(gap);
      else if (xs[j - 1] <= tFirst) during.push(gap); // a gap that overlaps the newcomer's prefill
    }
  const base = median(before);
  return {
    streams: S,
    promptTokens: args.delayPrompt,
    maxBatchTokens: Math.max(args.maxBatchTokens, S + 1),
    maxPrefillTokens: engine.maxPrefillTokens,
    gapBeforeP50Ms: round(base),
    gapDuringMaxMs: round(Math.max(...during)),
    gapDuringP50Ms: round(median(during)),
    addedDelayMs: round(Math.max(...during) - base),
    newcomerTtftMs: round(tFirst - tSubmit),
  };
}

// ---- HTTP: a child process serves the model; this one is the client ----
function wordsPrompt(n, seed) {
  const words = ['alpha', 'river', 'stone', 'cloud', 'maple', 'north', 'ember', 'quiet', 'orbit', 'field', 'lemon', 'tiger'];
  let s = seed >>> 0;
  const out = [];
  for (let i = 0; i < n; i++) out.push(words[(s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % words.length]);
  return out.join(' ');
}

async function chatStream(url, text, maxTokens, seed, signal) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: text }], max_tokens: maxTokens, temperature: 1, seed, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const stamps = [];
  let usage = null;
  let buf = '';
  const dec = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, k);
        buf = buf.slice(k + 2);
        const line = frame.split('\n').find((l) => l.startsWith('data: '));
        if (!line || line === 'data: [DONE]') continue;
        const obj = JSON.parse(line.slice(6));
        if (obj.usage) usage = obj.usage;
        const d = obj.choices?.[0]?.delta;
        if (d && (d.content || d.reasoning_content || d.reasoning)) stamps.push(performance.now());
      }
    }
  } catch (e) {
    if (!signal?.aborted) throw e;
  }
  return { t0, stamps, usage, tEnd: performance.now() };
}

async function runHttp(url, streams, args) {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: streams }, (_, i) => chatStream(url, wordsPrompt(args.prompt, 1000 + i), args.tokens, i)));
  const ttft = [], itl = [];
  let total = 0, tEnd = t0;
  for (const r of rs) {
    if (r.stamps.length) ttft.push(r.stamps[0] - r.t0);
    for (let j = 1; j < r.stamps.length; j++) itl.push(r.stamps[j] - r.stamps[j - 1]);
    total += r.usage?.completion_tokens ?? 0;
    tEnd = Math.max(tEnd, r.tEnd);
  }
  const wall = (tEnd - t0) / 1000;
  // Per stream, the response's whole time over its tokens: what a client sees a token cost when no text
  // delta stamps them (a random model's ids never open a Harmony message, so the server, which sends a
  // chunk per text delta, sends none: then TTFT and ITL are null and this is the per-token figure).
  const perToken = rs.filter((r) => (r.usage?.completion_tokens ?? 0) > 0).map((r) => (r.tEnd - r.t0) / r.usage.completion_tokens);
  return {
    streams, outputTokens: total, promptTokens: rs[0]?.usage?.prompt_tokens, wallS: round(wall, 3), aggregateTokS: round(total / wall),
    textChunks: ttft.length + itl.length,
    ttftMs: { p50: ttft.length ? round(pct(ttft, 50)) : null, p99: ttft.length ? round(pct(ttft, 99)) : null },
    itlMs: { p50: itl.length ? round(pct(itl, 50)) : null, p99: itl.length ? round(pct(itl, 99)) : null },
    responseMsPerToken: { p50: round(pct(perToken, 50)), p99: round(pct(perToken, 99)) },
  };
}

async function runHttpTtft(url, args) {
  // The chat template adds its own tokens around the user's text (the system message, the headers): a
  // first request measures how many, so that the timed prompts render to --ttft-prompt tokens, as the
  // engine's TTFT prompt has (each bench word is one token; the figure reports the count the server gave).
  const probe = await chatStream(url, wordsPrompt(args.ttftPrompt, 49), 1, 0);
  const templateTokens = Math.max(0, (probe.usage?.prompt_tokens ?? args.ttftPrompt) - args.ttftPrompt);
  const words = Math.max(1, args.ttftPrompt - templateTokens);
  const times = [];
  let promptTokens = 0;
  for (let k = 0; k < 4; k++) {
    // max_tokens 1: the response ends with the first token (a random model's ids carry no text to stamp)
    const r = await chatStream(url, wordsPrompt(words, 50 + k), 1, k);
    promptTokens = r.usage?.prompt_tokens ?? 0;
    if (k > 0) times.push(r.tEnd - r.t0);
  }
  return { promptTokens, templateTokens, ttftMs: round(median(times)), runsMs: times.map((t) => round(t)) };
}

async function serveChild(args) {
  const model = args.synthetic
    ? await createSyntheticModel(args.synthetic, { device: args.device, ...(args.layers ? { layers: args.layers } : {}) })
    : await loadModel(args.model, { device: args.device });
  const [p] = prompts(1, args.prompt, Math.min(model.config.vocabSize, 199998), 7);
  await generate(model, p, { maxTokens: 4, temperature: 1, seed: 1, stopTokens: [] }).result;
  const g = await generate(model, p, { maxTokens: args.tokens, temperature: 1, seed: 1, stopTokens: [] }).result;
  const { createServer } = await import('../dist/server/app.js');
  const maxSequences = Math.max(...args.streams, 1);
  const engine = model.createEngine({ ...engineCommon(args), ...(args.pipeline === 'on' ? { pipelineDecode: true } : {}), maxSequences, maxBatchTokens: Math.max(args.maxBatchTokens, maxSequences), maxContext: Math.max(args.prompt * 2 + args.tokens + 64, args.ttftPrompt * 2 + 64) });
  const server = createServer(engine, { modelName: 'bench' });
  const { url } = await server.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ url, device: model.device, backend: engine.backend.constructor.name, generate: { decodeTokS: round(g.timings.tokensPerSecond), prefillMs: round(g.timings.prefillMs) } })}\n`);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await server.close(1000);
    await engine.close();
    process.stdout.write(`${JSON.stringify({ gpuUsedBytes: gpuUsed(), peakRssBytes: peakRss() })}\n`);
    process.exit(0);
  });
}

async function mainHttp(args) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [process.argv[1], ...process.argv.slice(2).filter((x) => x !== '--http'), '--serve-child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting = null;
  let pending = '';
  child.stdout.on('data', (d) => {
    pending += d;
    let k;
    while ((k = pending.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(pending.slice(0, k)));
      pending = pending.slice(k + 1);
      waiting?.();
    }
  });
  const nextLine = async () => {
    while (!lines.length) await new Promise((r) => (waiting = r));
    return lines.shift();
  };
  const info = await nextLine();
  const g = info.generate;
  g.endToEndTokS = round(args.tokens / ((g.prefillMs + (args.tokens / g.decodeTokS) * 1000) / 1000));
  console.error(`serve-load --http: ${info.url} (${info.device}, ${info.backend}); generate(): decode ${g.decodeTokS} tok/s, ${g.endToEndTokS} tok/s with its prefill`);
  await runHttp(info.url, 1, { ...args, tokens: 4 }); // warm-up
  const runs = [];
  for (const n of args.streams) {
    const r = await runHttp(info.url, n, args);
    const lat = r.textChunks
      ? `TTFT p50 ${r.ttftMs.p50} p99 ${r.ttftMs.p99} ms; ITL p50 ${r.itlMs.p50} p99 ${r.itlMs.p99} ms`
      : 'TTFT/ITL n/a (no text deltas to stamp: random weights never open a Harmony message; see the max_tokens-1 TTFT below)';
    console.error(`http ${n} streams: ${r.aggregateTokS} tok/s aggregate (${r.outputTokens} tokens); ${lat}; response time a token p50 ${r.responseMsPerToken.p50} p99 ${r.responseMsPerToken.p99} ms`);
    runs.push(r);
  }
  const ttft = args.ttftPrompt ? await runHttpTtft(info.url, args) : null;
  if (ttft) console.error(`http TTFT, ${ttft.promptTokens}-token prompt: ${ttft.ttftMs} ms (${ttft.runsMs.join(', ')})`);
  child.stdin.end();
  const end = await nextLine();
  return { info, runs, ttft, end };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.serveChild) return serveChild(args);
  if (args.http) {
    const load0 = loadavg()[0];
    const r = await mainHttp(args);
    const result = {
      date: new Date().toISOString(),
      host: hostname(),
      commit: commitId(),
      command: `node bench/serve-load.mjs ${process.argv.slice(2).join(' ')}`,
      mode: 'http',
      shape: `${args.synthetic ?? args.model}${args.layers ? `, ${args.layers} layers` : ''}`,
      device: r.info.device,
      backend: r.info.backend,
      loadavg: { start: round(load0), end: round(loadavg()[0]) },
      generate: r.info.generate,
      runs: r.runs,
      ttft: r.ttft,
      serverPeakRssBytes: r.end.peakRssBytes,
      gpuUsedBytes: r.end.gpuUsedBytes,
    };
    mkdirSync(args.out, { recursive: true });
    const file = join(args.out, `serve-load-http-${args.label || args.synthetic || 'model'}-${result.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    console.error(`serve-load: wrote ${file}`);
    return;
  }
  const load0 = loadavg()[0];
  const model = args.synthetic
    ? await createSyntheticModel(args.synthetic, { device: args.device, ...(args.layers ? { layers: args.layers } : {}) })
    : await loadModel(args.model, { device: args.device });
  const shape = `${args.synthetic ?? args.model}${args.layers ? `, ${args.layers} layers` : ''}`;
  console.error(`serve-load: ${shape} on ${model.device} (${model.info.backend}); prompt ${args.prompt}, ${args.tokens} tokens a stream; load ${load0.toFixed(2)}`);

  // generate() alone: the one-stream reference
  const [p] = prompts(1, args.prompt, Math.min(model.config.vocabSize, 199998), 7);
  await generate(model, p, { maxTokens: 4, temperature: 1, seed: 1, stopTokens: [] }).result; // warm-up
  const g = await generate(model, p, { maxTokens: args.tokens, temperature: 1, seed: 1, stopTokens: [] }).result;
  const reference = { decodeTokS: round(g.timings.tokensPerSecond), prefillMs: round(g.timings.prefillMs) };
  console.error(`generate(): decode ${reference.decodeTokS} tok/s, prefill ${reference.prefillMs} ms`);

  const runs = [];
  for (const n of args.streams)
    for (const pipelined of args.pipeline === 'both' ? [false, true] : [args.pipeline === 'on']) {
      const r = await runEngine(model, n, args, pipelined);
      const vsGenerate = n === 1 ? `; decode ${r.decodeTokSFromItl} tok/s = ${round((100 * r.decodeTokSFromItl) / reference.decodeTokS, 1)}% of generate()'s` : '';
      const pipe = r.pipeline ? `; pipelined: queued ${r.pipeline.queued}, claimed ${r.pipeline.claimed}, dropped ${r.pipeline.dropped}` : '';
      console.error(`${n} streams${args.pipeline === 'both' ? (pipelined ? ' (pipelined)' : ' (plain)') : ''}: ${r.aggregateTokS} tok/s aggregate; TTFT p50 ${r.ttftMs.p50} p99 ${r.ttftMs.p99} ms; ITL p50 ${r.itlMs.p50} p99 ${r.itlMs.p99} ms; ${r.steps} steps${vsGenerate}${pipe}`);
      runs.push(r);
    }
  const ttft = args.ttftPrompt ? await runTtft(model, args) : null;
  if (ttft) {
    const chunked = ttft.chunked ? `; in ${ttft.maxBatchTokens}-token chunks (${ttft.chunked.stepsPerRequest} steps): ${ttft.chunked.ttftMs} ms (${ttft.chunked.runsMs.join(', ')})` : '';
    console.error(`TTFT, ${ttft.promptTokens}-token prompt alone, maxPrefillTokens ${ttft.maxPrefillTokens} (${ttft.stepsPerRequest} steps): ${ttft.ttftMs} ms (${ttft.runsMs.join(', ')})${chunked}; generate(): ${ttft.generate.ttftMs} ms (${ttft.generate.runsMs.join(', ')})`);
  }
  const prefix = args.prefixPrompt ? await runPrefix(model, args) : null;
  if (prefix)
    console.error(
      `prefix cache: ${prefix.prefixTokens}-token shared prefix: TTFT cold ${prefix.cold.ttftMs} ms, warm ${prefix.warm.ttftMs} ms (${prefix.warm.cachedPromptTokens} of ${prefix.warm.promptTokens} prompt tokens cached; ${prefix.speedup}x)`,
    );
  const delay = args.delayPrompt ? await runDelay(model, args) : null;
  if (delay)
    console.error(
      `delay: ${delay.streams} decoding streams, a ${delay.promptTokens}-token prompt arrives: their gap p50 ${delay.gapBeforeP50Ms} ms before, max ${delay.gapDuringMaxMs} ms during its prefill (+${delay.addedDelayMs} ms); its TTFT ${delay.newcomerTtftMs} ms`,
    );
  const result = {
    date: new Date().toISOString(),
    host: hostname(),
    cpu: cpus()[0]?.model,
    commit: commitId(),
    command: `node bench/serve-load.mjs ${process.argv.slice(2).join(' ')}`,
    shape,
    device: model.device,
    backend: runs[0]?.backend,
    loadavg: { start: round(load0), end: round(loadavg()[0]) },
    generate: reference,
    runs,
    ttft,
    prefix,
    delay,
    peakRssBytes: peakRss(),
    gpuUsedBytes: gpuUsed(),
  };
  await model.dispose();
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `serve-load-${args.label || args.synthetic || 'model'}-${result.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  console.error(`serve-load: wrote ${file}`);
}

main().catch((e) => {
  console.error(`serve-load: ${e instanceof Error ? e.stack : e}`);
  process.exit(1);
});
