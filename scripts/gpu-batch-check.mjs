#!/usr/bin/env node
// The CUDA batched step (NativeBatchBackend on a CUDA model: paged KV pool, block tables in the
// attention kernels, padded decode buckets replayed as graphs, batched draws) against the one-sequence
// path (SessionBackend: a native Session per sequence, the calls generate() makes) on the same device,
// and against the CPU's batched step. The same schedules of joins, prefill chunks, decode steps and
// leaves, with the same sampling options and uniforms, greedy and sampled. Reports per schedule the
// ids that differ and the first step where a sequence diverges; fails (exit 1) when the CUDA batch
// and the CUDA sessions disagree on more than 5% of the sequences, an id is outside the vocabulary,
// or the pool is not full again after every sequence closed.
//   node scripts/gpu-batch-check.mjs [--quick]     (uses dist/; --quick: tiny shape only, for compute-sanitizer)
import { createSyntheticModel } from '../dist/synthetic.js';
import { SessionBackend } from '../dist/engine/session-backend.js';
import { createRng } from '../dist/index.js';

const quick = process.argv.includes('--quick');

function makePlans(seed, count, vocab, { maxPrompt, maxDecode, maxJoin, chunked }) {
  const rng = createRng(seed);
  const int = (lo, hi) => lo + Math.floor(rng.nextUniform() * (hi - lo + 1));
  const optionsList = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.3, topK: 20 }, { temperature: 0.7, minP: 0.05 }];
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

// Runs the schedule on a StepBackend; returns the ids each sequence drew, in order.
async function runPlans(b, plans) {
  const out = plans.map(() => []);
  const live = new Map();
  const lastJoin = Math.max(...plans.map((p) => p.join));
  for (let step = 0; live.size > 0 || step <= lastJoin; step++) {
    plans.forEach((plan, i) => {
      if (plan.join !== step) return;
      const seq = b.open(plan.prompt.length + plan.decode + 1);
      if (seq === null) throw new Error('pool too small for the schedule');
      live.set(i, { plan, seq, chunk: 0, at: 0, next: -1, rng: createRng(plan.seed) });
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
    const ids = await b.step(items);
    order.forEach((i, k) => {
      const l = live.get(i);
      if (items[k].sample === null) return;
      out[i].push(ids[k]);
      l.next = ids[k];
      if (out[i].length >= l.plan.decode) {
        b.close(l.seq);
        live.delete(i);
      }
    });
  }
  return out;
}

function compare(name, a, b) {
  let ids = 0, differ = 0, seqsDiffer = 0;
  const first = [];
  a.forEach((xs, i) => {
    const ys = b[i];
    let d = -1;
    for (let j = 0; j < Math.max(xs.length, ys.length); j++) {
      ids++;
      if (xs[j] !== ys[j]) {
        differ++;
        if (d < 0) d = j;
      }
    }
    if (d >= 0) {
      seqsDiffer++;
      first.push(`seq ${i} at id ${d}/${xs.length}`);
    }
  });
  console.log(`  ${name}: ${ids - differ}/${ids} ids equal, ${a.length - seqsDiffer}/${a.length} sequences identical${first.length ? ` (first differences: ${first.slice(0, 6).join(', ')})` : ''}`);
  return { ids, differ, seqsDiffer, seqs: a.length };
}

let failed = false;
async function schedule(label, shape, layers, plansOf, { cpu = true } = {}) {
  const t0 = Date.now();
  const gpu = await createSyntheticModel(shape, { device: 'cuda', ...(layers ? { layers } : {}) });
  const vocab = gpu.config.vocabSize;
  const plans = plansOf(vocab);
  const blocks = plans.reduce((s, p) => s + Math.ceil((p.prompt.length + p.decode + 1) / 16), 0) + 4;
  const batch = gpu.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length });
  const got = await runPlans(batch, plans);
  const full = batch.freeBlocks() === batch.totalBlocks;
  await batch.dispose();
  const ref = await runPlans(new SessionBackend(gpu, { kvBlocks: blocks, blockSize: 16 }), plans);
  await gpu.dispose();
  let cpuIds = null;
  if (cpu) {
    const host = await createSyntheticModel(shape, { device: 'cpu', ...(layers ? { layers } : {}) });
    const cb = host.createBatchBackend({ kvBlocks: blocks, blockSize: 16, maxSequences: plans.length });
    cpuIds = await runPlans(cb, plans);
    await cb.dispose();
    await host.dispose();
  }
  const bad = got.flat().filter((t) => !(Number.isInteger(t) && t >= 0 && t < vocab)).length;
  console.log(`${label}: ${plans.length} sequences, prompts ${Math.min(...plans.map((p) => p.prompt.length))}..${Math.max(...plans.map((p) => p.prompt.length))} tokens, ${got.flat().length} draws; pool full after: ${full}; ids outside the vocabulary: ${bad} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const s = compare('cuda batch vs cuda sessions', got, ref);
  if (cpuIds) compare('cuda batch vs cpu batch', got, cpuIds);
  if (!full || bad > 0 || s.seqsDiffer > 0.05 * s.seqs) {
    failed = true;
    console.log(`  FAIL ${label}`);
  }
}

await schedule('tiny, mixed chunks', 'tiny', undefined, (v) => makePlans(11, quick ? 8 : 24, v, { maxPrompt: 120, maxDecode: 30, maxJoin: 12, chunked: true }));
if (!quick) {
  await schedule('20b x 4 layers, mixed chunks', '20b', 4, (v) => makePlans(12, 10, v, { maxPrompt: 300, maxDecode: 24, maxJoin: 8, chunked: true }));
  await schedule('20b x 2 layers, 70 decoding (buckets)', '20b', 2, (v) => makePlans(13, 70, v, { maxPrompt: 40, maxDecode: 40, maxJoin: 3, chunked: false }), { cpu: false });
}
console.log(failed ? 'gpu-batch-check: FAIL' : 'gpu-batch-check: ok');
process.exit(failed ? 1 : 0);
