// loadModel's activations 'bf16' (CUDA: the grouped MXFP4 expert GEMMs on Hopper's wgmma tile multiply bf16-rounded
// activations) through a whole model, on the GPU host: a 20b-shaped synthetic model cut to LAYERS layers (default 4),
// a PROMPT-token prompt (default 2,048: 256 routed rows an expert, so the grouped MoE takes the wgmma tile) prefilled
// in one call, then STEPS greedy steps (the CPU's argmax fed to every model). The logits of the prefill's last row
// and of each step, on CUDA with activations 'f32' and 'bf16' (f32 KV cache both), against the CPU backend's exact
// f32 forward. Asserted: 'f32' within 1e-2 and 'bf16' within 1e-2 of the CPU at every row (the GPU's bound), no NaN,
// and 'bf16' away from 'f32' by more than 1e-5 at the prefill row (the bf16 GEMMs ran). Reported: each row's
// relative L2 and argmax agreement.
//   node scripts/gpu-act-check.mjs   (uses dist/; env LAYERS, PROMPT, STEPS; DEVICE=cpu: a dry run of the script on the
//   CPU alone, 'f32' only, which asserts nothing about bf16)
import { createSyntheticModel } from '../dist/synthetic.js';
import { argmax, hasNaN, relL2 } from './logits.mjs';

const layers = Number(process.env.LAYERS ?? 4);
const promptLen = Number(process.env.PROMPT ?? 2048);
const steps = Number(process.env.STEPS ?? 8);
const device = process.env.DEVICE ?? 'cuda';
const modes = device === 'cpu' ? ['f32'] : ['f32', 'bf16'];

let seed = 12345;
const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
const prompt = Array.from({ length: promptLen }, () => next() % 200000);

// rows(model, feed): the prefill's last row, then one row a step; feed[i] is step i's token (null: the previous row's argmax)
async function rows(model, feed) {
  const s = model.createSession({ maxContext: promptLen + steps + 8 });
  const out = [Float32Array.from(await s.prefill(prompt))];
  for (let i = 0; i < steps; i++) out.push(Float32Array.from(await s.step(feed ? feed[i] : argmax(out[out.length - 1]))));
  await s.dispose();
  return out;
}

const t0 = Date.now();
const cpu = await createSyntheticModel('20b', { device: 'cpu', layers });
const want = await rows(cpu, null);
const ids = want.slice(0, steps).map((r) => argmax(r));
await cpu.dispose();
console.log(`cpu: ${layers} layers, ${promptLen}-token prompt + ${steps} steps in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
const got = {};
for (const activations of modes) {
  const m = await createSyntheticModel('20b', { device, layers, activations, kvCache: 'f32' });
  if (m.info.activations !== activations) throw new Error(`model.info.activations is ${m.info.activations}, asked ${activations}`);
  got[activations] = await rows(m, ids);
  await m.dispose();
}
let failed = 0;
for (const activations of modes) {
  const errs = got[activations].map((r, i) => relL2(r, want[i]));
  const same = got[activations].filter((r, i) => argmax(r) === argmax(want[i])).length;
  const nan = got[activations].some(hasNaN);
  const ok = !nan && errs.every((e) => e < 1e-2);
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}  activations '${activations}' vs the CPU: rel L2 prefill row ${errs[0].toExponential(3)}, steps max ${Math.max(...errs.slice(1)).toExponential(3)}, argmax ${same}/${errs.length}${nan ? ', NaN' : ''}`);
  // every row: whether one step's error stands out (a routing flip) or all grow together
  console.log(`  rows '${activations}': ${got[activations].map((r, i) => `${errs[i].toExponential(2)}${argmax(r) === argmax(want[i]) ? '' : '*'}`).join(' ')}  (* argmax differs)`);
}
if (got.bf16) {
  const apart = relL2(got.bf16[0], got.f32[0]);
  const ran = apart > 1e-5;
  if (!ran) failed++;
  console.log(`${ran ? 'PASS' : 'FAIL'}  'bf16' moved the prefill row off 'f32' by ${apart.toExponential(3)} (the bf16 GEMMs ran)`);
}
console.log(`gpu-act-check: ${failed ? `${failed} failed` : 'ok'}`);
process.exit(failed ? 1 : 0);
