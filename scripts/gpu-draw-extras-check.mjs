#!/usr/bin/env node
// What a draw can carry beside its id, on the GPU: token log-probabilities (options.logprobs: each drawn token's logits row copied back and its
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
//   - the draw-time extras that go through the same host round trip of the row: logitBias +100 forces a token every
//     draw; greedy draws with frequency / presence penalties equal a host reference (the device's logits, the OpenAI
//     formula, argmax); a responseFormat json_schema answer parses and fits, on generate() and the engine.
// Reported: the decode rate of generate() on the full 20b synthetic with and without logprobs, a logit bias, and a
// response format or strict tool that is present but not held yet (256 tokens after a 512-token prompt), and their
// cost a token in ms.
//   node scripts/gpu-draw-extras-check.mjs [--device cuda] [--no-bench]   (uses dist/; --device cpu: a dry run)
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

// logit bias and penalties
const forced = await generate(model, prompt, { maxTokens: 8, temperature: 0, stopTokens: [], logitBias: { 4242: 100 } }).result;
if (forced.tokens.some((t) => t !== 4242)) fail(`logitBias +100: drew ${forced.tokens.join(',')}`);
{
  const opts = { temperature: 0, frequencyPenalty: 1.5, presencePenalty: 0.5, logitBias: { 17: 2 } };
  const r = await generate(model, prompt, { maxTokens: 16, stopTokens: [], ...opts }).result;
  const session = model.createSession({ maxContext: prompt.length + 17 });
  let logits = await session.prefill(prompt);
  const want = [];
  for (let j = 0; j < 16; j++) {
    const row = Float32Array.from(logits);
    const counts = new Map();
    for (const t of want) counts.set(t, (counts.get(t) ?? 0) + 1);
    row[17] += 2;
    for (const [t, c] of counts) row[t] -= c * opts.frequencyPenalty + opts.presencePenalty;
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    want.push(best);
    if (j < 15) logits = await session.step(best);
  }
  await session.dispose();
  if (r.tokens.join() !== want.join()) fail(`penalties: ${r.tokens.join(',')} vs the host reference ${want.join(',')}`);
  else console.log('logit bias +100 forces its token; greedy with penalties equals the host reference (16 draws)');
}

// structured output: the final channel held to a schema
const { renderConversation } = await import('../dist/harmony/index.js');
const { tokenizer } = await import('../dist/tokenizer.js');
const schema = { type: 'object', properties: { name: { enum: ['Ada', 'Grace'] }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 } }, required: ['name', 'age'], additionalProperties: false };
const header = [...renderConversation({ messages: [{ role: 'user', content: 'x' }] }), ...tokenizer.encode('<|channel|>final<|message|>', { allowSpecial: 'all' })];
const structured = [];
for (const seed of [1, 2]) {
  const r = await generate(model, header, { parse: true, maxTokens: 120, temperature: 1, seed, responseFormat: { type: 'json_schema', schema } }).result;
  structured.push(r);
  let v = null;
  try {
    v = JSON.parse(r.channels.final);
  } catch {}
  if (r.finishReason !== 'stop' || !v || !['Ada', 'Grace'].includes(v.name) || !Number.isInteger(v.age)) fail(`json_schema seed ${seed}: ${r.finishReason} ${JSON.stringify(r.channels.final)}`);
}
const sEngine = model.createEngine({ maxSequences: 2, maxContext: 256 });
const sGot = await Promise.all([1, 2].map((seed) => sEngine.generate(header, { parse: true, maxTokens: 120, temperature: 1, seed, responseFormat: { type: 'json_schema', schema } }).result));
await sEngine.close();
sGot.forEach((r, i) => {
  if (r.tokens.join() !== structured[i].tokens.join()) console.log(`note: json_schema seed ${i + 1}: the engine drew other tokens than generate() (sampled draws; ${r.channels.final})`);
  try {
    JSON.parse(r.channels.final);
  } catch {
    fail(`engine json_schema ${i}: not JSON: ${JSON.stringify(r.channels.final)}`);
  }
});
console.log(`json_schema answers: ${structured.map((r) => r.channels.final).join(' | ')}`);
await model.dispose();

if (bench && device !== 'cpu') {
  const big = await createSyntheticModel('20b', { device });
  const p = Array.from({ length: 512 }, (_, i) => (i * 104729 + 7) % 200000);
  const rate = async (extra) => {
    const r = await generate(big, p, { maxTokens: 256, temperature: 0, stopTokens: [], ...extra }).result;
    return r.timings.tokensPerSecond;
  };
  await rate({}); // warm-up: graphs, buffers
  const variants = [
    ['plain', {}],
    ['logprobs 0', { logprobs: 0 }],
    ['logprobs 5', { logprobs: 5 }],
    ['plain', {}],
    ['logprobs 20', { logprobs: 20 }],
    ['logitBias (1 id)', { logitBias: { 17: 1 } }],
    ['frequencyPenalty 0.5', { frequencyPenalty: 0.5 }],
    // a format / strict tool present but not held (random ids reach no final channel, no call): the 32nd session's
    // change keeps these on the 16-step chunks (before, one step a call: predicted ~455 vs ~400 tok/s on an H100)
    ['responseFormat, not held yet', { parse: true, responseFormat: { type: 'json_object' } }],
    ['strictTools, not held yet', { parse: true, strictTools: { f: null } }],
  ];
  const rows = [];
  for (const [name, extra] of variants) rows.push([name, await rate(extra)]);
  const base = (rows[0][1] + rows[3][1]) / 2;
  for (const [name, tps] of rows) console.log(`20b decode, context 512, ${name}: ${tps.toFixed(1)} tok/s${name !== 'plain' ? ` (+${(1000 / tps - 1000 / base).toFixed(3)} ms a token)` : ''}`);
  await big.dispose();
}
console.log(failed ? `gpu-draw-extras-check: ${failed} failure(s)` : 'gpu-draw-extras-check: ok');
process.exit(failed ? 1 : 0);
