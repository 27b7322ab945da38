#!/usr/bin/env node
// Token log-probabilities on the GPU (options.logprobs: each drawn token's logits row copied back and its
// log-softmax taken on the host; model/logprobs.h): checked against the same device's logits, then priced.
//
// Asserted (exit 1 otherwise), on a synthetic model (20b width, 2 layers; the full vocabulary):
//   - generate() with logprobs 5, greedy and sampled: the tokens equal those without logprobs (the loop runs one
//     step a call instead of 16), and every token's logprob and top 5 equal the log-softmax of the row a Session
//     prefill of the same tokens gives (|diff| < 2e-3: a prefill GEMM and the decode GEMV sum in different orders),
//     the top ids those of that row up to swaps closer than that; no NaN;
//   - the engine (NativeBatchBackend, pipelined decode as createEngine sets it on CUDA) with four concurrent requests,
//     logprobs 0 / 3 / none / 20: the same tokens as generate() for the greedy ones, and logprobs within 2e-3 of
//     generate()'s wherever the tokens agree.
// Reported: the decode rate of generate() on the full 20b synthetic with and without logprobs (256 tokens after a
// 512-token prompt), the cost of a token's logprobs in ms.
//   node scripts/gpu-logprobs-check.mjs [--device cuda] [--no-bench]   (uses dist/; --device cpu: a dry run)
import { createSyntheticModel } from '../dist/synthetic.js';
import { generate } from '../dist/index.js';

const device = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cuda';
const bench = !process.argv.includes('--no-bench');
const kTol = 2e-3;
let failed = 0;
const fail = (msg) => {
  failed++;
  console.log(`FAIL ${msg}`);
};

function logSoftmax(logits, r, vocab) {
  const row = logits.subarray(r * vocab, (r + 1) * vocab);
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - m);
  const lse = m + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}
function topIds(lp, k) {
  const best = [];
  for (let i = 0; i < lp.length; i++) {
    if (best.length === k && !(lp[i] > lp[best[k - 1]])) continue;
    best.push(i);
    best.sort((a, b) => lp[b] - lp[a] || a - b);
    if (best.length > k) best.pop();
  }
  return best;
}
function compare(what, got, id, ref, k) {
  let worst = Math.abs(got.logprob - ref[id]);
  if (!Number.isFinite(got.logprob)) fail(`${what}: logprob ${got.logprob}`);
  if (got.top.length !== k) fail(`${what}: ${got.top.length} alternatives, asked ${k}`);
  const want = topIds(ref, k);
  got.top.forEach((t, j) => {
    worst = Math.max(worst, Math.abs(t.logprob - ref[t.id]));
    if (t.id !== want[j] && Math.abs(ref[t.id] - ref[want[j]]) >= kTol) fail(`${what}: alternative ${j} is ${t.id}, the row's is ${want[j]}`);
  });
  if (!(worst < kTol)) fail(`${what}: |logprob - reference| up to ${worst}`);
  return worst;
}

const model = await createSyntheticModel('20b', { device, layers: 2 });
const vocab = model.config.vocabSize;
const prompt = Array.from({ length: 40 }, (_, i) => (i * 7919 + 13) % 200000);
let worst = 0;
for (const options of [{ temperature: 0 }, { temperature: 1, seed: 3 }, { temperature: 0.8, topP: 0.9, seed: 4 }]) {
  const base = { maxTokens: 24, stopTokens: [], ...options };
  const plain = await generate(model, prompt, base).result;
  const r = await generate(model, prompt, { ...base, logprobs: 5 }).result;
  const name = JSON.stringify(options);
  if (r.finishReason !== 'length' || plain.finishReason !== 'length') fail(`${name}: finish ${r.finishReason} / ${plain.finishReason} ${r.error?.message ?? ''}`);
  if (r.tokens.join() !== plain.tokens.join()) fail(`${name}: tokens differ with logprobs`);
  const session = model.createSession({ maxContext: prompt.length + r.tokens.length });
  const all = await session.prefillAll([...prompt, ...r.tokens.slice(0, -1)]);
  await session.dispose();
  r.tokens.forEach((id, j) => (worst = Math.max(worst, compare(`${name} token ${j}`, r.logprobs[j], id, logSoftmax(all, prompt.length - 1 + j, vocab), 5))));
}
console.log(`generate() logprobs vs the session prefill's log-softmax: max |diff| ${worst.toExponential(2)} (${device})`);

const requests = [
  { prompt: prompt.slice(0, 9), options: { temperature: 0, logprobs: 3 } },
  { prompt: prompt.slice(0, 30), options: { temperature: 1, seed: 5, logprobs: 0 } },
  { prompt: prompt.slice(5, 40), options: { temperature: 0.9, topP: 0.9, seed: 6 } },
  { prompt, options: { temperature: 0, logprobs: 20 } },
];
const want = [];
for (const q of requests) want.push(await generate(model, q.prompt, { maxTokens: 16, stopTokens: [], ...q.options }).result);
const engine = model.createEngine({ maxSequences: 4, maxContext: 256 });
const got = await Promise.all(requests.map((q) => engine.generate(q.prompt, { maxTokens: 16, stopTokens: [], ...q.options }).result));
const stats = engine.backend.pipelineStats;
await engine.close();
let engineWorst = 0;
got.forEach((r, i) => {
  const q = requests[i];
  if (r.finishReason !== 'length') fail(`engine request ${i}: finish ${r.finishReason} ${r.error?.message ?? ''}`);
  if (q.options.temperature === 0 && r.tokens.join() !== want[i].tokens.join()) fail(`engine request ${i} (greedy): tokens differ from generate()`);
  if (q.options.logprobs === undefined) {
    if (r.logprobs !== undefined) fail(`engine request ${i}: logprobs without asking`);
    return;
  }
  for (let j = 0; j < r.tokens.length && r.tokens[j] === want[i].tokens[j]; j++) {
    const a = r.logprobs[j], b = want[i].logprobs[j];
    engineWorst = Math.max(engineWorst, Math.abs(a.logprob - b.logprob), ...a.top.map((t, k) => Math.abs(t.logprob - b.top[k].logprob)));
    if (a.top.length !== q.options.logprobs) fail(`engine request ${i} token ${j}: ${a.top.length} alternatives`);
  }
});
if (!(engineWorst < kTol)) fail(`engine logprobs vs generate(): max |diff| ${engineWorst}`);
console.log(`engine (pipelined ${engine.backend.pipelinesDecode}; queued ${stats?.queued ?? 0}, claimed ${stats?.claimed ?? 0}) logprobs vs generate(): max |diff| ${engineWorst.toExponential(2)}`);
await model.dispose();

if (bench && device !== 'cpu') {
  const big = await createSyntheticModel('20b', { device });
  const p = Array.from({ length: 512 }, (_, i) => (i * 104729 + 7) % 200000);
  const rate = async (logprobs) => {
    const r = await generate(big, p, { maxTokens: 256, temperature: 0, stopTokens: [], ...(logprobs !== undefined ? { logprobs } : {}) }).result;
    return r.timings.tokensPerSecond;
  };
  await rate(undefined); // warm-up: graphs, buffers
  const rows = [];
  for (const lp of [undefined, 0, 5, undefined, 20]) rows.push([lp, await rate(lp)]);
  const base = (rows[0][1] + rows[3][1]) / 2;
  for (const [lp, tps] of rows) console.log(`20b decode, context 512, logprobs ${lp ?? 'off'}: ${tps.toFixed(1)} tok/s${lp !== undefined ? ` (+${(1000 / tps - 1000 / base).toFixed(3)} ms a token)` : ''}`);
  await big.dispose();
}
console.log(failed ? `gpu-logprobs-check: ${failed} failure(s)` : 'gpu-logprobs-check: ok');
process.exit(failed ? 1 : 0);
