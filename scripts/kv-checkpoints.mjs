// The deeper random checkpoints the KV-cache fidelity checks run on (issue 12 item 6): options for
// scripts/make-checkpoint.mjs --preset tiny. bench/kv-fidelity.mjs (CPU, rounded caches) and
// scripts/gpu-model-check.mjs (CUDA per kvCache vs the CPU) both use this list, and cpuLogits().
// As a script (`node scripts/kv-checkpoints.mjs --child <dir> <tokens-json>`) it prints one CPU
// forward's logits as base64 f32: the child that cpuLogits() runs.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const KV_CHECKPOINTS = [
  // the shape: 6 layers, 16 experts top-4, window 24
  { name: 'deep-a', args: ['--layers', '6', '--experts', '16', '--experts-per-token', '4', '--sliding-window', '24', '--seed', '61'] },
  // larger attention scores (q, k x2: scores x4) and logits (x4)
  { name: 'deep-b-large-logits', args: ['--layers', '6', '--experts', '16', '--experts-per-token', '4', '--sliding-window', '24', '--qk-scale', '2', '--logit-scale', '4', '--seed', '62'] },
  // wider and deeper: 8 layers, hidden 512, 32 experts
  { name: 'deep-c-wide', args: ['--layers', '8', '--experts', '32', '--experts-per-token', '4', '--sliding-window', '24', '--hidden', '512', '--intermediate', '512', '--qk-scale', '1.5', '--logit-scale', '2', '--seed', '63'] },
];

/** The checkpoint's directory under root, written first if it is not there (~0.1-0.7 s each). */
export function kvCheckpoint(root, spec) {
  const dir = join(root, spec.name);
  if (!existsSync(join(dir, 'config.json'))) {
    const script = new URL('./make-checkpoint.mjs', import.meta.url).pathname;
    execFileSync(process.execPath, [script, dir, '--preset', 'tiny', ...spec.args, '--quiet']);
  }
  return dir;
}

/** The 80-token prompt the checks run (token ids spread over the vocabulary). */
export const kvPrompt = (vocab) => Array.from({ length: 80 }, (_, i) => (i * 7919 + 13) % vocab);

/**
 * The CPU backend's logits for `tokens` on checkpoint `dir`, its f32 KV cache holding each stored value
 * rounded as a cache of kvCache type `round` holds it ('f16' | 'bf16' | 'f32k-f16v'; 'f16-k' K alone; null:
 * exact), as GPTOSS_CPU_KV_ROUND does (read once per
 * process: one child process a call). What a GPU cache of that dtype holds, so a GPU run can be
 * compared with the same cache contents.
 */
export function cpuLogits(dir, tokens, vocab, round = null) {
  const env = { ...process.env };
  if (round) env.GPTOSS_CPU_KV_ROUND = round;
  else delete env.GPTOSS_CPU_KV_ROUND;
  const out = execFileSync(process.execPath, [new URL(import.meta.url).pathname, '--child', dir, JSON.stringify(tokens)], { env, maxBuffer: 1 << 30 });
  const buf = Buffer.from(out.toString(), 'base64');
  const logits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (logits.length !== tokens.length * vocab) throw new Error(`cpuLogits: ${dir} (${round ?? 'f32'}): ${logits.length} logits, expected ${tokens.length * vocab}`);
  return logits;
}

/**
 * How far `got` (logits, rows of `vocab`) lies from `exact` (the CPU's exact f32 cache): rel L2 over all
 * rows, and at how many of the `rows` the argmax agrees. `nan`: got holds a NaN.
 */
export function fidelityToExact(got, exact, vocab) {
  if (got.length !== exact.length || exact.length % vocab !== 0)
    throw new RangeError(`fidelityToExact: ${got.length} and ${exact.length} logits are not the same whole rows of ${vocab}`);
  const rows = exact.length / vocab;
  let n = 0, d = 0, nan = false, agree = 0;
  for (let r = 0; r < rows; r++) {
    let bestG = 0, bestE = 0;
    for (let i = 0; i < vocab; i++) {
      const g = got[r * vocab + i], e = exact[r * vocab + i];
      if (Number.isNaN(g)) nan = true;
      n += (g - e) ** 2;
      d += e * e;
      if (g > got[r * vocab + bestG]) bestG = i;
      if (e > exact[r * vocab + bestE]) bestE = i;
    }
    agree += bestG === bestE;
  }
  return { relL2: Math.sqrt(n / d), nan, rows, agree };
}

/**
 * The gate on a GPU's default KV cache type (scripts/gpu-model-check.mjs): within 1e-2 of the exact cache,
 * no NaN, argmax equal at >= 97% of the rows (78 of the 80-token prompt: room for two near-ties; the H200
 * measured 80/80 on each deep checkpoint with f32k-f16v).
 */
export const passesExactGate = (f) => !f.nan && f.relL2 < 1e-2 && f.agree >= 0.97 * f.rows;

if (process.argv[2] === '--child' && process.argv[1] === new URL(import.meta.url).pathname) {
  const { loadModel } = await import('../dist/model.js');
  const [dir, tokensJson] = process.argv.slice(3);
  const m = await loadModel(dir, { device: 'cpu' });
  const logits = await m.forward(JSON.parse(tokensJson));
  await m.dispose();
  // no process.exit: a pipe's write completes asynchronously, and exiting would cut it short
  process.stdout.write(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString('base64'));
}
