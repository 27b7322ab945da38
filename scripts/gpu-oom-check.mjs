#!/usr/bin/env node
// Out of device memory is a catchable error and the process keeps serving (issue 16). On a CUDA host,
// after `npx cmake-js compile && npx tsc -p tsconfig.json`:
//
//   node scripts/gpu-oom-check.mjs [cuda:0]
//
// 1. loads a small model and takes its greedy tokens;
// 2. fills the device with 1 GiB tensors until an allocation fails (that failure must be an Error);
// 3. with the device full: createSession with a large context, and loading a second model, must each
//    throw/reject an Error (not abort the process);
// 4. frees the filler and checks the first model still gives the same tokens, and a new session works.
// Prints PASS/FAIL per check and "N passed, N failed"; exit 1 on a failure. A crash is a failure too.
import { createSyntheticModel, Tensor } from '../dist/index.js';

const device = process.argv[2] ?? 'cuda:0';
let passed = 0;
let failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}  ${detail}`);
};
const tokensOf = async (model) => (await model.generate([1, 2, 3], { maxTokens: 8, temperature: 0, stopTokens: [] }).result).tokens.join(',');

const model = await createSyntheticModel('20b', { device, layers: 2 });
const before = await tokensOf(model);

const filler = [];
let fillError = null;
for (let i = 0; i < 4096; i++) {
  try {
    filler.push(Tensor.empty('u8', [1 << 30], device));
  } catch (e) {
    fillError = e;
    break;
  }
}
check('filling the device ends in a catchable Error', fillError instanceof Error, `${filler.length} GiB taken; ${fillError?.message}`);

let sessionError = null;
try {
  model.createSession({ maxContext: 131072 }).dispose();
} catch (e) {
  sessionError = e;
}
check('createSession on a full device throws an Error', sessionError instanceof Error, String(sessionError?.message));

const second = await createSyntheticModel('20b', { device, layers: 24 }).then(
  (m) => ({ model: m }),
  (e) => ({ error: e }),
);
check('loading a model on a full device rejects with an Error', second.error instanceof Error, String(second.error?.message));
await second.model?.dispose();

for (const t of filler) t.dispose();
filler.length = 0;
const after = await tokensOf(model).catch((e) => `error: ${e.message}`);
check('the loaded model still serves, with the same tokens', after === before, `${before} vs ${after}`);
const s = model.createSession({ maxContext: 4096 });
check('a new session works after the memory is back', (await s.prefill([1, 2, 3])).length === model.config.vocabSize);
await s.dispose();
await model.dispose();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
