#!/usr/bin/env node
// One table and one JSON for a benchmark run on a machine: reads a directory of bench/e2e.mjs results
// (as scripts/gpu-e2e.sh leaves them, with its per-run `mem-<label>.log` nvidia-smi samples) and any
// kernel bench log (`bench*.log|txt`: the markdown table gptoss_gpu_bench prints), prints the end-to-end
// table and issue 5's targets against it, and writes <date>-<gpu>.json.
//   node bench/summary.mjs <dir> [--out <dir>] [--gpu NAME] [--commit SHA]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Issue 5's targets on the H200, batch 1. Memory in MiB (nvidia-smi's unit): 16 GiB and 80 GiB cards. */
export const TARGETS = Object.freeze([
  { what: '20b decode, context 512', model: '20b', context: 512, metric: 'decode', min: 600, unit: 'tok/s' },
  { what: '20b decode, context 4096', model: '20b', context: 4096, metric: 'decode', min: 500, unit: 'tok/s' },
  { what: '20b prefill, 2048 tokens', model: '20b', metric: 'prefill2048', min: 20000, unit: 'tok/s' },
  { what: '120b decode, context 512', model: '120b', context: 512, metric: 'decode', min: 450, unit: 'tok/s' },
  { what: '20b peak device memory, 8k context', model: '20b', context: 8192, metric: 'peakMiB', max: 16384, unit: 'MiB' },
  { what: '120b peak device memory', model: '120b', metric: 'peakMiB', max: 81920, unit: 'MiB' },
  { what: 'decode MoE kernel, % of copy', kernel: /^moe decode mma graph$/, metric: 'pct', min: 75, unit: '%' },
  { what: 'dense GEMV (LM head), % of copy', kernel: /^bf16 gemv lm_head graph$/, shape: /^n1 /, metric: 'pct', min: 85, unit: '%' },
]);

/** The model a result is of: '20b' or '120b' by its shape (a cut to fewer layers: '20b, 4 layers'). */
function modelOf(r) {
  const c = r.config ?? {};
  const name = c.experts === 128 ? '120b' : c.experts === 32 ? '20b' : (r.synthetic?.preset ?? r.model ?? '?');
  const full = { '20b': 24, '120b': 36 }[name];
  return full !== undefined && c.layers !== full ? `${name}, ${c.layers} layers` : name;
}

/** Largest sample of an nvidia-smi memory.used log (one number a line), or null. */
function peakMiB(file) {
  if (!existsSync(file)) return null;
  const vals = readFileSync(file, 'utf8').split('\n').map(Number).filter((v) => Number.isFinite(v) && v > 0);
  return vals.length ? Math.max(...vals) : null;
}

/** Rows of the markdown table gptoss_gpu_bench prints: | kernel | shape | median ms | achieved | ceiling | % |. */
export function parseKernelTable(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 8 || cells[1] === 'kernel' || cells[1].startsWith('---')) continue;
    const [value, unit] = cells[4].split(/\s+/);
    rows.push({ kernel: cells[1], shape: cells[2], ms: Number(cells[3]), value: Number(value), unit, ceiling: Number(cells[5]), pct: Number(cells[6].replace('%', '')) });
  }
  return rows;
}

export function summarize(dir) {
  const files = readdirSync(dir).sort();
  const runs = [];
  for (const f of files.filter((n) => n.endsWith('.json'))) {
    let r;
    try {
      r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch {
      continue;
    }
    if (!r || typeof r !== 'object' || !r.decode) continue;
    const prefill = Object.fromEntries((r.prefill ?? []).map((p) => [p.tokens, p.tokensPerSecond]));
    runs.push({
      file: f,
      label: r.label,
      model: modelOf(r),
      source: r.source ?? 'checkpoint',
      backend: r.backend,
      context: r.decode.context,
      decode: r.decode.tokensPerSecond,
      prefill512: prefill[512] ?? null,
      prefill2048: prefill[2048] ?? null,
      peakMiB: peakMiB(join(dir, `mem-${r.label}.log`)),
      loadMs: r.loadMs ?? null,
      generateMs: r.generateMs ?? null,
    });
  }
  const kernels = files.filter((n) => /^bench.*\.(log|txt)$/.test(n)).flatMap((n) => parseKernelTable(readFileSync(join(dir, n), 'utf8')));
  const targets = TARGETS.map((t) => {
    let value = null;
    if (t.kernel) {
      const k = kernels.filter((row) => t.kernel.test(row.kernel) && (!t.shape || t.shape.test(row.shape)));
      if (k.length) value = Math.max(...k.map((row) => row[t.metric]));
    } else {
      const rs = runs.filter((r) => r.model === t.model && (t.context === undefined || r.context === t.context) && r[t.metric] != null);
      // speeds: the best run; memory: the largest peak (either way the largest value)
      if (rs.length) value = Math.max(...rs.map((r) => r[t.metric]));
    }
    const met = value == null ? null : t.min !== undefined ? value >= t.min : value <= t.max;
    return { what: t.what, value, target: t.min !== undefined ? `>= ${t.min}` : `<= ${t.max}`, unit: t.unit, met };
  });
  return { runs, kernels, targets };
}

const fmt = (v, d = 0) => (v == null ? '-' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

export function renderTables(s) {
  const out = [];
  out.push('| model | weights | context | decode tok/s | prefill 512 | prefill 2048 | peak MiB | load / generate s |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of s.runs)
    out.push(`| ${r.model} | ${r.source} | ${r.context} | ${fmt(r.decode)} | ${fmt(r.prefill512)} | ${fmt(r.prefill2048)} | ${fmt(r.peakMiB)} | ${r.loadMs != null ? fmt(r.loadMs / 1000, 1) : r.generateMs != null ? `${fmt(r.generateMs / 1000, 1)} (generated)` : '-'} |`);
  out.push('');
  out.push('| issue 5 target | measured | target | met |');
  out.push('|---|---|---|---|');
  for (const t of s.targets) out.push(`| ${t.what} | ${t.value == null ? 'not measured' : `${fmt(t.value, t.unit === '%' ? 1 : 0)} ${t.unit}`} | ${t.target} ${t.unit} | ${t.met == null ? '-' : t.met ? 'yes' : 'no'} |`);
  return out.join('\n');
}

function main(argv) {
  const dir = argv.find((a, i) => !a.startsWith('--') && !['--out', '--gpu', '--commit'].includes(argv[i - 1]));
  if (!dir) {
    console.error('usage: node bench/summary.mjs <dir> [--out <dir>] [--gpu NAME] [--commit SHA]');
    process.exit(2);
  }
  const opt = (name) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const s = summarize(dir);
  const gpu = opt('--gpu') ?? (s.runs[0]?.backend?.match(/cuda:\d+ (.*?) \(/)?.[1] ?? 'cpu');
  const commitFile = join(dir, 'COMMIT');
  const commit = opt('--commit') ?? (existsSync(commitFile) ? readFileSync(commitFile, 'utf8').trim() : null);
  const date = new Date().toISOString().slice(0, 10);
  console.log(renderTables(s));
  const file = join(opt('--out') ?? dir, `${date}-${gpu.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date, gpu, commit, ...s }, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
