#!/usr/bin/env node
// `npm run bench [-- <model-dir>] [--device cpu|cuda] [--quick]`: the CPU kernel benchmarks, then,
// when a model directory is given, the end-to-end benchmark on it. Prints each table and writes
// bench/results/<date>-<device>-*.json. On the GPU host use scripts/gpu-check.sh (kernels, with
// CUDA events) and scripts/gpu-e2e.sh (end to end).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name, fallback) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : fallback);
const modelDir = argv.find((a, i) => !a.startsWith('--') && !['--device'].includes(argv[i - 1]));
const device = value('--device', 'auto');
const date = new Date().toISOString().slice(0, 10);
mkdirSync(`${root}bench/results`, { recursive: true });

function run(script, args) {
  console.log(`\n$ node ${script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [`${root}${script}`, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) {
    process.stdout.write(r.stdout ?? '');
    console.error(`${script} exited with ${r.status}`);
    process.exit(r.status ?? 1);
  }
  return r.stdout;
}

// CPU kernels: the table on stdout, the JSON (last {...} block) to a file.
const kernels = run('bench/cpu-kernels.mjs', [...(flag('--quick') ? ['--quick'] : []), '--json']);
const jsonStart = kernels.lastIndexOf('\n{');
process.stdout.write(jsonStart >= 0 ? kernels.slice(0, jsonStart + 1) : kernels);
if (jsonStart >= 0) {
  const file = `${root}bench/results/${date}-cpu-kernels.json`;
  writeFileSync(file, kernels.slice(jsonStart + 1));
  console.log(`wrote ${file}`);
}

if (modelDir) {
  const quick = flag('--quick');
  process.stdout.write(
    run('bench/e2e.mjs', [modelDir, '--device', device, '--prefill', quick ? '32' : '32,128', '--decode', quick ? '8' : '32', '--context', '128']),
  );
} else {
  console.log('\n(no model directory given: end-to-end skipped; `npm run bench -- <model-dir>`)');
}
