// Encoding time of pathological and ordinary 1 MB-class inputs (issue 16, finding 3), wall and CPU
// (the machine is shared: CPU time is the steadier figure). Usage: npx tsc -p tsconfig.json && node bench/tokenizer-long.mjs
import { tokenizer } from '../dist/index.js';
import { loadavg } from 'node:os';

const measure = (f) => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = f();
  const c = process.cpuUsage(c0);
  return { tokens: n, wallMs: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000) };
};
const rows = { 'rank table (first long piece)': measure(() => tokenizer.encode('x'.repeat(600)).length) };
const cases = {
  "' '.repeat(1e5)": ' '.repeat(1e5),
  "'a'.repeat(1e5)": 'a'.repeat(1e5),
  "'😀'.repeat(3e4)": '😀'.repeat(3e4),
  "' '.repeat(1e6)": ' '.repeat(1e6),
  "'a'.repeat(1e6)": 'a'.repeat(1e6),
  "'\\ud800'.repeat(1e6)": '\ud800'.repeat(1e6),
  '1 MB of prose': ('The quick brown fox jumps over the lazy dog. é漢字🙂 1234567 ').repeat(20000).slice(0, 1e6),
};
for (const [k, t] of Object.entries(cases)) rows[k] = measure(() => tokenizer.encode(t).length);
console.log(JSON.stringify({ date: new Date().toISOString(), loadavg: loadavg().map((x) => +x.toFixed(1)), rows }, null, 1));
