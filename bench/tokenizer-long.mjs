// Encoding time of pathological and ordinary 1 MB-class inputs (issue 16, finding 3), wall and CPU
// (the machine is shared: CPU time is the steadier figure), and the longest event-loop stall while
// encodeAsync encodes all of them (perf_hooks monitorEventLoopDelay).
// Usage: npx tsc -p tsconfig.json && node bench/tokenizer-long.mjs
import { tokenizer } from '../dist/index.js';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';

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
  "'😀'.repeat(5e5)": '😀'.repeat(5e5),
  "'!'.repeat(1e6)": '!'.repeat(1e6),
  "'\\n'.repeat(1e6)": '\n'.repeat(1e6),
  '1 MB of one random lowercase word': Array.from({ length: 1e6 }, (_, i) => 'abcdefghijklmnopqrstuvwxyz'[(i * 7919 + i * i) % 26]).join(''),
  '1 MB of code points 32..9031': Array.from({ length: 1e6 }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 9000))).join(''),
  '1 MB of prose': ('The quick brown fox jumps over the lazy dog. é漢字🙂 1234567 ').repeat(20000).slice(0, 1e6),
  '1 MB of mixed scripts': 'Hello мир 世界 مرحبا 123 😀\n'.repeat(40000),
};
for (const [k, t] of Object.entries(cases)) rows[k] = measure(() => tokenizer.encode(t).length);

// encodeAsync: every case again, one after the other, on the worker; the longest event-loop delay
const h = monitorEventLoopDelay({ resolution: 2 });
h.enable();
await new Promise((resolve) => setTimeout(resolve, 20));
const t0 = performance.now();
for (const t of Object.values(cases)) await tokenizer.encodeAsync(t);
const asyncWallMs = Math.round(performance.now() - t0);
await new Promise((resolve) => setTimeout(resolve, 20));
h.disable();
const encodeAsync = { asyncWallMs, maxStallMs: +(h.max / 1e6).toFixed(1), p99StallMs: +(h.percentile(99) / 1e6).toFixed(1) };
console.log(JSON.stringify({ date: new Date().toISOString(), loadavg: loadavg().map((x) => +x.toFixed(1)), rows, encodeAsync }, null, 1));
