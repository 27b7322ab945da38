#!/usr/bin/env node
// Converts a Hugging Face gpt-oss checkpoint directory to a GGUF file in llama.cpp's gpt-oss layout
// (scripts/gguf-writer.mjs): the same weights in both forms, for tests and benchmarks.
//   node scripts/make-gguf.mjs <checkpoint-dir> <out.gguf> [--dense BF16|F32|F16|Q8_0] [--embedding TYPE]
//        [--vocab none|placeholder]
// --dense: attention projections and LM head (default Q8_0, as the published gpt-oss-20b-mxfp4.gguf);
// vectors and the router are F32 and the experts MXFP4, as there.
import { writeGgufFromCheckpoint } from './gguf-writer.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const dense = opt('--dense', 'Q8_0');
const embedding = opt('--embedding', undefined);
// placeholder: a token list llama.cpp-based runtimes accept (bench/side-by-side.mjs), see gguf-writer.mjs.
const vocab = opt('--vocab', 'none');
if (args.length !== 2) {
  console.error('usage: node scripts/make-gguf.mjs <checkpoint-dir> <out.gguf> [--dense BF16|F32|F16|Q8_0] [--embedding TYPE] [--vocab none|placeholder]');
  process.exit(2);
}
const t0 = performance.now();
const r = await writeGgufFromCheckpoint(args[0], args[1], { dense, embedding, vocab });
console.log(`${args[1]}: ${r.tensors.length} tensors, ${(r.fileBytes / 1e9).toFixed(3)} GB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
