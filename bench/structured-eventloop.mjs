// Structured outputs and the event loop: the longest event-loop stall, and the longest gap between a plain stream's
// tokens, while generations held to a JSON schema the process has not seen before run (every matcher state's token
// mask is new: a walk of the 201,088-token vocabulary each). A random full-vocabulary model (2 layers, width 64) on the
// CPU keeps the forward cheap, so the masks are what the figures measure.
//   npx tsc -p tsconfig.json && node bench/structured-eventloop.mjs [--dist DIR] [--runs N]
// --dist: the compiled runtime to measure (default dist/; an older commit's, built in a worktree, for the before).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const dist = resolve(arg('--dist', 'dist'));
const runs = Number(arg('--runs', '3'));
const { createSyntheticModel, generate, SYNTHETIC_PRESETS, tokenizer } = await import(pathToFileURL(`${dist}/index.js`).href);
const shape = { ...SYNTHETIC_PRESETS.tiny, vocabSize: 201088, hiddenSize: 64, intermediateSize: 64, numLayers: 2, numExperts: 4, expertsPerToken: 2, numHeads: 2, numKvHeads: 1, headDim: 32, slidingWindow: 16 };
const model = await createSyntheticModel(shape, { device: 'cpu', seed: 7 });
const prompt = tokenizer.encode('JSON:');
// a schema per run (a property name no earlier run used), so that every mask is new to the process
const schemaOf = (i) => ({
  type: 'object',
  properties: { [`city${i}`]: { enum: ['Oslo', 'Lima', 'Nairobi'] }, n: { type: 'integer' }, note: { type: 'string' }, sea: { type: 'boolean' } },
  required: [`city${i}`, 'note', 'n', 'sea'],
  additionalProperties: false,
});
const fmt = (i) => ({ type: 'json_schema', schema: schemaOf(i) });

const rows = [];
for (let r = 0; r < runs; r++) {
  // alone: one structured generate()
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  const res = await generate(model, prompt, { maxTokens: 120, temperature: 0.8, seed: 11 + r, responseFormat: fmt(2 * r + 1) }).result;
  const wall = performance.now() - t0;
  h.disable();
  // beside a plain stream: the plain stream's longest gap between tokens while a structured one runs (engine)
  const engine = model.createEngine({ maxSequences: 2, maxContext: 512 });
  let last = 0;
  let gap = 0;
  const plain = engine.generate(prompt, { maxTokens: 400, temperature: 1, seed: 5 });
  const watch = (async () => {
    for await (const e of plain) {
      if (e.type !== 'token') continue;
      const t = performance.now();
      if (last > 0) gap = Math.max(gap, t - last);
      last = t;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const h2 = monitorEventLoopDelay({ resolution: 1 });
  h2.enable();
  gap = 0;
  const side = await engine.generate(prompt, { maxTokens: 120, temperature: 0.8, seed: 21 + r, responseFormat: fmt(2 * r + 2) }).result;
  h2.disable();
  const gapDuring = gap;
  plain.abort();
  await watch;
  await engine.close();
  rows.push({
    run: r + 1,
    tokens: res.tokens.length,
    finish: res.finishReason,
    wallMs: Math.round(wall),
    maxStallMs: +(h.max / 1e6).toFixed(1),
    p99StallMs: +(h.percentile(99) / 1e6).toFixed(1),
    engineTokens: side.tokens.length,
    engineMaxStallMs: +(h2.max / 1e6).toFixed(1),
    plainMaxGapMs: +gapDuring.toFixed(1),
  });
}
await model.dispose();
console.log(`dist ${dist}`);
console.table(rows);
