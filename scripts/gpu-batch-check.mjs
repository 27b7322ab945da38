#!/usr/bin/env node
// The CUDA batched step (NativeBatchBackend on a CUDA model: paged KV pool, block tables in the
// attention kernels, padded decode buckets replayed as graphs, batched draws) against the one-sequence
// path (a native Session per sequence, the calls generate() makes) on the same device, and against the
// CPU's batched step. The same schedules of joins, prefill chunks, decode steps and leaves, with the
// same sampling options and uniforms, greedy and sampled, run in lockstep: every path is fed the
// CUDA batch's drawn ids, so each draw's LOGITS are compared at the same position with the same
// history, whatever an earlier draw did.
//
// What is asserted (exit 1 otherwise), per schedule:
//   - the batch's logits vs the sessions': relative L2 at the 99th percentile < 1e-3, and < 1e-2 at every draw
//     but at most 0.5% of them (at least one allowed), none NaN. The batched GEMM and the one-token GEMV sum in
//     different orders (~5e-5 apart); where a token's router logits for its 4th and 5th expert are closer than
//     that, the two paths pick different experts for it, and the draws that read it differ by 0.1-0.4 (twentieth
//     session: main's own build shows one such draw of 1,379 in the plan seed 21 below, the same draw with either
//     MoE policy). A real bug moves whole rows in every draw that reads them, far past that budget;
//   - greedy draws: equal ids, except at a tie the logits cannot resolve (the reference's margin
//     between the two ids is within twice the largest logit difference of that row);
//   - no id outside the vocabulary, and the pool full again once every sequence closed.
// Reported, not asserted: argmax agreement, sampled ids equal (temperature / top-p / top-k / min-p:
// on random weights the distribution over 201,088 ids is near flat, so a last-bit difference between
// two summation orders can move the drawn id), and the CPU batch's logits against the CUDA batch's.
//   node scripts/gpu-batch-check.mjs [--quick | --large | --buckets-seeds 13,21] [--device cuda]   (uses dist/; --quick: tiny shape only,
//   for compute-sanitizer; --large: only the large prefill steps (createEngine's maxPrefillTokens: up to 4,096
//   prompt tokens in one step), 20b x 2 layers, ~10-20 s on an H200; --device cpu runs the same comparison on
//   the CPU alone: a dry run of this script, on the tiny shape for --large)
import { createSyntheticModel } from '../dist/synthetic.js';
import { createRng } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const largeOnly = process.argv.includes('--large');
const device = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cuda';
// --buckets-seeds 13,21,..: only the 70-decoding schedule, once for each plan seed (13 is the default run's)
const bucketsSeeds = process.argv.includes('--buckets-seeds') ? process.argv[process.argv.indexOf('--buckets-seeds') + 1].split(',').map(Number) : null;
const kMaxRelL2 = 1e-2, kP99RelL2 = 1e-3, kOutlierShare = 0.005;
const optionsList = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.3, topK: 20 }, { temperature: 0.7, minP: 0.05 }];
const optionName = (o) => (o.temperature === 0 ? 'greedy' : o.topP ? 'top-p' : o.topK ? 'top-k' : o.minP ? 'min-p' : `temperature ${o.temperature}`);

function makePlans(seed, count, vocab, { maxPrompt, maxDecode, maxJoin, chunked }) {
  const rng = createRng(seed);
  const int = (lo, hi) => lo + Math.floor(rng.nextUniform() * (hi - lo + 1));
  return Array.from({ length: count }, (_, i) => {
    const len = int(1, maxPrompt);
    const chunks = [];
    for (let left = len; left > 0; ) {
      const c = chunked ? Math.min(left, int(1, Math.max(1, Math.ceil(len / 2)))) : left;
      chunks.push(c);
      left -= c;
    }
    return {
      join: int(0, maxJoin),
      prompt: Array.from({ length: len }, () => int(0, vocab - 1)),
      chunks,
      decode: int(1, maxDecode),
      options: optionsList[i % optionsList.length],
      seed: 1000 + i,
    };
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
    if (!(Math.abs(d) <= maxAbs)) maxAbs = Math.abs(d); // NaN lands here and stays
  }
  return { relL2: Number.isFinite(num) && den > 0 ? Math.sqrt(num / den) : NaN, maxAbs };
}

// One sequence of the reference: a native Session fed the same tokens (its decode inputs are the
// batch's ids); resolves to the logits of the item's draw, or null when the item does not draw.
async function sessionLogits(session, tokens, sample) {
  if (sample === null) {
    await session.append(tokens);
    return null;
  }
  return tokens.length === 1 && session.length > 0 ? session.step(tokens[0]) : session.prefill(tokens);
}

// Runs the schedule on the CUDA batch, and in lockstep on per-sequence Sessions of the same model and
// (optionally) on the CPU model's batch, all fed the CUDA batch's ids; compares each draw.
async function runLockstep(batch, gpu, cpuBatch, plans, vocab) {
  const r = {
    draws: 0, bad: 0, cpuRel: [], argmaxEqual: 0, cpuArgmaxEqual: 0, greedy: 0, greedyEqual: 0, greedyTies: 0,
    greedyWrong: [], sampled: new Map(), all: [], steps: [],
  };
  const live = new Map();
  const lastJoin = Math.max(...plans.map((p) => p.join));
  for (let step = 0; live.size > 0 || step <= lastJoin; step++) {
    plans.forEach((plan, i) => {
      if (plan.join !== step) return;
      const max = plan.prompt.length + plan.decode + 1;
      const seq = batch.open(max);
      const cseq = cpuBatch ? cpuBatch.open(max) : null;
      if (seq === null || (cpuBatch && cseq === null)) throw new Error('pool too small for the schedule');
      live.set(i, { plan, seq, cseq, session: gpu.createSession({ maxContext: max }), chunk: 0, at: 0, next: -1, drawn: 0, rng: createRng(plan.seed) });
    });
    if (live.size === 0) continue;
    const order = [...live.keys()];
    const items = order.map((i) => {
      const l = live.get(i);
      const sample = () => ({ options: l.plan.options, uniform: l.rng.nextUniform() });
      if (l.chunk < l.plan.chunks.length) {
        const c = l.plan.chunks[l.chunk];
        const tokens = Int32Array.from(l.plan.prompt.slice(l.at, l.at + c));
        l.at += c;
        l.chunk++;
        return { seq: l.seq, tokens, sample: l.chunk === l.plan.chunks.length ? sample() : null };
      }
      return { seq: l.seq, tokens: Int32Array.of(l.next), sample: sample() };
    });
    const { ids, logits } = await batch.stepWithLogits(items);
    const stepTokens = items.reduce((s, it) => s + it.tokens.length, 0);
    r.steps.push(stepTokens);
    const cpu = cpuBatch ? await cpuBatch.stepWithLogits(items.map((it, k) => ({ ...it, seq: live.get(order[k]).cseq }))) : null;
    let row = 0;
    for (let k = 0; k < items.length; k++) {
      const i = order[k];
      const l = live.get(i);
      const item = items[k];
      const ref = await sessionLogits(l.session, item.tokens, item.sample);
      if (item.sample === null) continue;
      const got = logits.subarray(row * vocab, (row + 1) * vocab);
      const refId = await l.session.sample(item.sample.options, item.sample.uniform);
      const id = ids[k];
      r.draws++;
      if (!(Number.isInteger(id) && id >= 0 && id < vocab)) r.bad++;
      const d = diffStats(got, ref);
      r.all.push({ relL2: d.relL2, seq: i, draw: l.drawn, tokens: item.tokens.length, step, stepTokens });
      const am = argmax(ref);
      if (argmax(got) === am) r.argmaxEqual++;
      if (cpu) {
        const c = cpu.logits.subarray(row * vocab, (row + 1) * vocab);
        r.cpuRel.push(diffStats(c, got).relL2);
        if (argmax(c) === argmax(got)) r.cpuArgmaxEqual++;
      }
      const name = optionName(item.sample.options);
      if (name === 'greedy') {
        r.greedy++;
        if (id === refId) r.greedyEqual++;
        else if (ref[refId] - ref[id] <= 2 * d.maxAbs) r.greedyTies++;
        else r.greedyWrong.push(`seq ${i} draw ${l.drawn}: ${id} vs ${refId} (margin ${(ref[refId] - ref[id]).toExponential(2)}, max |diff| ${d.maxAbs.toExponential(2)})`);
      } else {
        const s = r.sampled.get(name) ?? { n: 0, equal: 0 };
        s.n++;
        if (id === refId) s.equal++;
        r.sampled.set(name, s);
      }
      row++;
      l.drawn++;
      l.next = id;
      if (l.drawn >= l.plan.decode) {
        batch.close(l.seq);
        if (cpuBatch) cpuBatch.close(l.cseq);
        await l.session.dispose();
        live.delete(i);
      }
    }
  }
  return r;
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => (Number.isNaN(a) ? 1 : Number.isNaN(b) ? -1 : a - b));
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const maxOf = (xs) => xs.reduce((m, x) => (Number.isNaN(x) || x > m ? x : m), 0);

let failed = false;
async function schedule(label, shape, layers, plansOf, { cpu = true } = {}) {
  const t0 = Date.now();
  const gpu = await createSyntheticModel(shape, { device, ...(layers ? { layers } : {}) });
  const host = cpu && device !== 'cpu' ? await createSyntheticModel(shape, { device: 'cpu', ...(layers ? { layers } : {}) }) : null;
  const vocab = gpu.config.vocabSize;
  const plans = plansOf(vocab);
  const blocks = plans.reduce((s, p) => s + Math.ceil((p.prompt.length + p.decode + 1) / 16), 0) + 4;
  const batch = gpu.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length });
  const cpuBatch = host ? host.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length }) : null;
  const r = await runLockstep(batch, gpu, cpuBatch, plans, vocab);
  const full = batch.freeBlocks() === batch.totalBlocks && (!cpuBatch || cpuBatch.freeBlocks() === cpuBatch.totalBlocks);
  await batch.dispose();
  await cpuBatch?.dispose();
  await gpu.dispose();
  await host?.dispose();
  // every draw's rel L2, and the draws from worst to best (NaN first; a stable sort keeps the earlier of equals)
  const rel = r.all.map((w) => w.relL2);
  const maxRel = maxOf(rel), p99 = pct(rel, 0.99);
  const ranked = [...r.all].sort((a, b) => (Number.isNaN(a.relL2) ? -1 : Number.isNaN(b.relL2) ? 1 : b.relL2 - a.relL2));
  const worstDraw = ranked[0];
  const where = (w) => `seq ${w.seq} draw ${w.draw} step ${w.step} (${w.stepTokens} tokens) ${w.relL2.toExponential(2)}`;
  console.log(`${label}: ${plans.length} sequences, prompts ${Math.min(...plans.map((p) => p.prompt.length))}..${Math.max(...plans.map((p) => p.prompt.length))} tokens, ${r.draws} draws; pool full after: ${full}; ids outside the vocabulary: ${r.bad} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  console.log(`  ${device} batch vs ${device} sessions, logits rel L2: p50 ${pct(rel, 0.5).toExponential(2)}, p99 ${p99.toExponential(2)}, max ${maxRel.toExponential(2)}` +
    ` (seq ${worstDraw?.seq} draw ${worstDraw?.draw}, a ${worstDraw?.tokens}-token item); argmax equal ${r.argmaxEqual}/${r.draws}`);
  console.log(`  greedy ids equal ${r.greedyEqual}/${r.greedy}${r.greedyTies ? `, ${r.greedyTies} unresolvable ties` : ''}${r.greedyWrong.length ? `; WRONG: ${r.greedyWrong.slice(0, 4).join('; ')}` : ''}`);
  console.log(`  sampled ids equal (same logits up to rounding, same uniform; reported): ${[...r.sampled].map(([n, s]) => `${n} ${s.equal}/${s.n}`).join(', ')}`);
  if (cpuBatch) console.log(`  cpu batch vs ${device} batch (reported), logits rel L2: p50 ${pct(r.cpuRel, 0.5).toExponential(2)}, max ${maxOf(r.cpuRel).toExponential(2)}; argmax equal ${r.cpuArgmaxEqual}/${r.draws}`);
  // draws at or past kMaxRelL2 (NaN counts, and is never allowed): routing near-ties, at most kOutlierShare of them
  const outliers = r.all.filter((w) => !(w.relL2 < kMaxRelL2));
  const allowed = Math.max(1, Math.floor(kOutlierShare * r.draws));
  const nanDraws = r.all.filter((w) => Number.isNaN(w.relL2)).length;
  if (outliers.length > 0)
    console.log(`  draws past ${kMaxRelL2}: ${outliers.length} of ${r.draws} (allowed ${allowed}: routing near-ties)${nanDraws ? `, ${nanDraws} NaN` : ''}: ` +
      outliers.slice(0, 6).map(where).join('; '));
  if (!full || r.bad > 0 || !(p99 < kP99RelL2) || outliers.length > allowed || nanDraws > 0 || r.greedyWrong.length > 0) {
    failed = true;
    console.log(`  FAIL ${label}`);
    // where it went wrong: the worst draws with their step and its size, the worst sequence's draws, the steps' token counts
    const worst = ranked.slice(0, 8);
    console.log(`  worst draws: ${worst.map(where).join('; ')}`);
    const ws = r.all.filter((w) => w.seq === worst[0]?.seq);
    console.log(`  seq ${worst[0]?.seq}'s draws (step: rel L2): ${ws.map((w) => `${w.step}: ${w.relL2.toExponential(1)}`).join(', ')}`);
    console.log(`  tokens a step: ${r.steps.join(' ')}`);
  }
}

// Large prefill steps, as an engine with maxPrefillTokens runs them when nothing decodes: one 4,000-token
// prompt in one step (flash attention over its own block table alone), then, beside its decode token, two
// prompts of 2,000 and 1,500 tokens whole (the mixed plan with long runs), then decode steps; 8 draws each.
const largePlans = (v) => {
  const rng = createRng(14);
  const prompt = (n) => Array.from({ length: n }, () => Math.floor(rng.nextUniform() * v));
  return [
    [0, 4000, { temperature: 0 }],
    [1, 2000, { temperature: 1 }],
    [1, 1500, { temperature: 0 }],
  ].map(([join, n, options], i) => ({ join, prompt: prompt(n), chunks: [n], decode: 8, options, seed: 2000 + i }));
};
if (bucketsSeeds) {
  for (const seed of bucketsSeeds)
    await schedule(`20b x 2 layers, 70 decoding (buckets), plan seed ${seed}`, '20b', 2, (v) => makePlans(seed, 70, v, { maxPrompt: 40, maxDecode: 40, maxJoin: 3, chunked: false }), { cpu: false });
} else if (!quick) {
  const [shape, layers] = device === 'cpu' ? ['tiny', undefined] : ['20b', 2];
  await schedule(`${shape}${layers ? ` x ${layers} layers` : ''}, large prefill steps (up to 4,000 tokens a step)`, shape, layers, largePlans, { cpu: false });
}
if (!largeOnly && !bucketsSeeds) await schedule('tiny, mixed chunks', 'tiny', undefined, (v) => makePlans(11, quick ? 8 : 24, v, { maxPrompt: 120, maxDecode: 30, maxJoin: 12, chunked: true }));
if (!quick && !largeOnly && !bucketsSeeds) {
  await schedule('20b x 4 layers, mixed chunks', '20b', 4, (v) => makePlans(12, 10, v, { maxPrompt: 300, maxDecode: 24, maxJoin: 8, chunked: true }));
  await schedule('20b x 2 layers, 70 decoding (buckets)', '20b', 2, (v) => makePlans(13, 70, v, { maxPrompt: 40, maxDecode: 40, maxJoin: 3, chunked: false }), { cpu: false });
}
console.log(failed ? 'gpu-batch-check: FAIL' : 'gpu-batch-check: ok');
process.exit(failed ? 1 : 0);
