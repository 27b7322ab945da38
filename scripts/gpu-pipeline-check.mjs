#!/usr/bin/env node
// Pipelined decode on the GPU (createBatchBackend({ pipelineDecode: true }): a decode step queues the
// next one, fed its draws on the device, before its ids are read back) against the plain padded step
// on the same device: the same schedules of joins, prefill chunks, decode steps, and sequences that
// stop one step after asking for the next (so queued rows are dropped), run in lockstep with both
// batches fed the pipelined batch's ids, so each draw's LOGITS are compared at the same position.
// Then the engine: the same requests through createEngine({ pipelineDecode: true }) and the plain
// engine, concurrently, greedy and sampled.
//
// Asserted (exit 1 otherwise): logits rel L2 < 1e-2 at every draw (a claimed step replays the bucket
// of the step before it, the plain step may run a smaller one: a different GEMM tile can change the
// last bits, as gpu-batch-check.mjs measures against Sessions; a wrong token, position or slot moves
// whole rows); greedy ids equal (ties the logits cannot resolve excepted); ids in the vocabulary; the
// pools full at the end; steps queued ahead and claimed (the path ran). Reported: bit-identical draws,
// sampled ids equal, the pipeline's queued / claimed / dropped counts, the engine's tokens.
//   node scripts/gpu-pipeline-check.mjs [--quick] [--device cuda]   (uses dist/; --quick: tiny only, for
//   compute-sanitizer; --device cpu: the same on the CPU, a dry run of this script)
import { createSyntheticModel } from '../dist/synthetic.js';
import { createRng } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const device = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cuda';
const kMaxRelL2 = 1e-2;
const optionsList = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.3, topK: 20 }, { temperature: 0.7, minP: 0.05 }];
const isGreedy = (o) => o.temperature === 0;

function makePlans(seed, count, vocab, { maxPrompt, maxDecode, maxJoin }) {
  const rng = createRng(seed);
  const int = (lo, hi) => lo + Math.floor(rng.nextUniform() * (hi - lo + 1));
  return Array.from({ length: count }, (_, i) => {
    const len = int(1, maxPrompt);
    const chunks = [];
    for (let left = len; left > 0; ) {
      const c = Math.min(left, int(1, Math.max(1, Math.ceil(len / 2))));
      chunks.push(c);
      left -= c;
    }
    const decode = int(1, maxDecode);
    return { join: int(0, maxJoin), prompt: Array.from({ length: len }, () => int(0, vocab - 1)), chunks, decode, stopAt: i % 3 === 1 ? int(1, decode) : decode, options: optionsList[i % optionsList.length], seed: 2000 + i };
  });
}

function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
function diffStats(got, ref) {
  let num = 0, den = 0, maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    if (!(Math.abs(d) <= maxAbs)) maxAbs = Math.abs(d);
  }
  return { relL2: Number.isFinite(num) && den > 0 ? Math.sqrt(num / den) : NaN, maxAbs };
}

async function lockstep(pipe, plain, plans, vocab) {
  const r = { draws: 0, identical: 0, bad: 0, maxRel: 0, greedy: 0, greedyEqual: 0, ties: 0, wrong: [], sampled: 0, sampledEqual: 0 };
  const live = new Map();
  const lastJoin = Math.max(...plans.map((p) => p.join));
  for (let step = 0; live.size > 0 || step <= lastJoin; step++) {
    plans.forEach((plan, i) => {
      if (plan.join !== step) return;
      const max = plan.prompt.length + plan.decode;
      const a = pipe.open(max);
      const b = plain.open(max);
      if (a === null || b === null) throw new Error('pool too small for the schedule');
      live.set(i, { plan, a, b, chunk: 0, at: 0, last: -1, nextU: null, drawn: 0, rng: createRng(plan.seed) });
    });
    if (live.size === 0) continue;
    const order = [...live.keys()];
    const items = order.map((i) => {
      const l = live.get(i);
      const draw = () => {
        const uniform = l.nextU ?? l.rng.nextUniform();
        l.nextU = null;
        return { options: l.plan.options, uniform };
      };
      let item;
      if (l.chunk < l.plan.chunks.length) {
        const c = l.plan.chunks[l.chunk];
        const tokens = Int32Array.from(l.plan.prompt.slice(l.at, l.at + c));
        l.at += c;
        l.chunk++;
        item = { seq: l.a, tokens, sample: l.chunk === l.plan.chunks.length ? draw() : null };
      } else item = { seq: l.a, tokens: Int32Array.of(l.last), sample: draw() };
      if (item.sample !== null && l.drawn + 1 < l.plan.decode) {
        l.nextU = l.rng.nextUniform();
        item.next = l.nextU;
      }
      return item;
    });
    const got = await pipe.stepWithLogits(items);
    const ref = await plain.stepWithLogits(items.map((it, k) => ({ seq: live.get(order[k]).b, tokens: it.tokens, sample: it.sample })));
    let row = 0;
    for (let k = 0; k < items.length; k++) {
      const i = order[k];
      const l = live.get(i);
      if (items[k].sample === null) continue;
      const g = got.logits.subarray(row * vocab, (row + 1) * vocab);
      const f = ref.logits.subarray(row * vocab, (row + 1) * vocab);
      row++;
      const d = diffStats(g, f);
      r.draws++;
      if (d.maxAbs === 0) r.identical++;
      if (!(d.relL2 <= r.maxRel)) r.maxRel = d.relL2;
      const id = got.ids[k];
      const refId = ref.ids[k];
      if (!(Number.isInteger(id) && id >= 0 && id < vocab)) r.bad++;
      if (isGreedy(items[k].sample.options)) {
        r.greedy++;
        if (id === refId) r.greedyEqual++;
        else if (Math.abs(f[refId] - f[id]) <= 2 * d.maxAbs || argmax(f) !== refId) r.ties++;
        else r.wrong.push(`seq ${i} draw ${l.drawn}: ${id} vs ${refId}`);
      } else {
        r.sampled++;
        if (id === refId) r.sampledEqual++;
      }
      l.drawn++;
      l.last = id;
      if (l.drawn === l.plan.stopAt) {
        pipe.close(l.a);
        plain.close(l.b);
        live.delete(i);
      }
    }
  }
  return r;
}

let failed = false;
async function schedule(label, shape, layers, plansOf) {
  const t0 = Date.now();
  const model = await createSyntheticModel(shape, { device, ...(layers ? { layers } : {}) });
  const vocab = model.config.vocabSize;
  const plans = plansOf(vocab);
  const blocks = plans.reduce((s, p) => s + Math.ceil((p.prompt.length + p.decode) / 16), 0) + 4;
  const pipe = model.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length, pipelineDecode: true });
  const plain = model.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length, padDecodeSteps: true });
  const r = await lockstep(pipe, plain, plans, vocab);
  const stats = pipe.pipelineStats;
  const full = pipe.freeBlocks() === pipe.totalBlocks && plain.freeBlocks() === plain.totalBlocks && pipe.openSequences === 0;
  await pipe.dispose();
  await plain.dispose();
  await model.dispose();
  console.log(`${label}: ${plans.length} sequences, ${r.draws} draws; pipeline queued ${stats.queued}, claimed ${stats.claimed}, dropped ${stats.dropped}; pools full after: ${full} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  console.log(`  pipelined vs plain logits: max rel L2 ${r.maxRel.toExponential(2)}, bit-identical ${r.identical}/${r.draws}; greedy equal ${r.greedyEqual}/${r.greedy}${r.ties ? ` (${r.ties} ties)` : ''}${r.wrong.length ? `; WRONG: ${r.wrong.slice(0, 4).join('; ')}` : ''}; sampled equal ${r.sampledEqual}/${r.sampled} (reported); ids outside the vocabulary ${r.bad}`);
  if (!full || r.bad > 0 || !(r.maxRel < kMaxRelL2) || r.wrong.length > 0 || stats.claimed < 1) {
    failed = true;
    console.log(`  FAIL ${label}`);
  }
}

// The engine, pipelined and plain, the same concurrent requests (greedy ids asserted equal).
async function engines(label, shape, layers, count, maxTokens) {
  const t0 = Date.now();
  const model = await createSyntheticModel(shape, { device, ...(layers ? { layers } : {}) });
  const vocab = model.config.vocabSize;
  const rng = createRng(77);
  const jobs = Array.from({ length: count }, (_, i) => ({
    prompt: Array.from({ length: 5 + Math.floor(rng.nextUniform() * 60) }, () => Math.floor(rng.nextUniform() * vocab)),
    options: { temperature: i % 2 ? 1 : 0, seed: 300 + i, maxTokens: 4 + Math.floor(rng.nextUniform() * maxTokens), stopTokens: [] },
  }));
  const run = async (pipelineDecode) => {
    const engine = model.createEngine({ pipelineDecode, maxSequences: count, maxBatchTokens: 256, maxContext: 256 });
    const results = await Promise.all(jobs.map(async (j, i) => {
      await new Promise((r) => setTimeout(r, (i % 4) * 5)); // joins while steps are queued
      return engine.generate(j.prompt, j.options).result;
    }));
    const stats = engine.backend.pipelineStats;
    const free = engine.stats().freeBlocks === engine.stats().totalBlocks;
    await engine.close();
    return { results, stats, free };
  };
  const plain = await run(false);
  const pipe = await run(true);
  await model.dispose();
  let greedy = 0, greedyEqual = 0, sampled = 0, sampledEqual = 0;
  jobs.forEach((j, i) => {
    const same = JSON.stringify(pipe.results[i].tokens) === JSON.stringify(plain.results[i].tokens);
    if (j.options.temperature === 0) { greedy++; if (same) greedyEqual++; }
    else { sampled++; if (same) sampledEqual++; }
  });
  console.log(`${label}: ${count} concurrent requests, engine pipelined vs plain: greedy requests equal ${greedyEqual}/${greedy}, sampled equal ${sampledEqual}/${sampled} (reported); pipeline queued ${pipe.stats.queued}, claimed ${pipe.stats.claimed}, dropped ${pipe.stats.dropped}; pools empty after: ${pipe.free && plain.free} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (greedyEqual !== greedy || !pipe.free || !plain.free || pipe.stats.claimed < 1) {
    failed = true;
    console.log(`  FAIL ${label}`);
  }
}

await schedule('tiny, joins, chunks, late stops', 'tiny', undefined, (v) => makePlans(21, quick ? 8 : 24, v, { maxPrompt: 60, maxDecode: 30, maxJoin: 12 }));
await engines('tiny engine', 'tiny', undefined, quick ? 4 : 12, 30);
if (!quick) {
  await schedule('20b x 4 layers, joins, chunks, late stops', '20b', 4, (v) => makePlans(22, 12, v, { maxPrompt: 200, maxDecode: 24, maxJoin: 8 }));
  await schedule('20b x 2 layers, 70 decoding (buckets)', '20b', 2, (v) => makePlans(23, 70, v, { maxPrompt: 30, maxDecode: 40, maxJoin: 3 }));
  await engines('20b x 2 layers engine', '20b', 2, 16, 40);
}
console.log(failed ? 'gpu-pipeline-check: FAIL' : 'gpu-pipeline-check: ok');
process.exit(failed ? 1 : 0);
