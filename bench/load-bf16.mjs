#!/usr/bin/env node
// Load time of a fine-tuned (bf16 experts) checkpoint with loadModel's default experts: 'mxfp4' (the experts
// quantized to MXFP4 at load), split into what the loader reports: reading the file pages, quantizing, and the
// rest (headers, binding, the page-in of the tensors the model runs from), beside the process's CPU time (all
// threads: user and system) and the files' read speed on their own, cold. Issue 15's target: the 20b shape
// (scripts/bf16-checkpoint.mjs of make-checkpoint --preset 20b) in <= 15 s on the H200 host (16 cores).
//   node bench/load-bf16.mjs <dir> [--cold] [--reps N] [--threads N] [--device cpu|cuda] [--read-speed] [--label L] [--out DIR]
// --cold: drop the checkpoint's pages from the page cache before each load (`dd iflag=nocache count=0` per
// file, after `sync` of each: only these files, nothing else's cache); without it the first load reads
// whatever is not cached. --device cuda: the same quantization on the host, then the upload (the split
// has no page-in there).
// --read-speed: first time a plain sequential read of the files, cold (the disk's ceiling for the load).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../dist/index.js';
import { cpuInfo, setThreads } from '../dist/ops.js';

const argv = process.argv.slice(2);
const flag = (n) => { const i = argv.indexOf(n); if (i < 0) return false; argv.splice(i, 1); return true; };
const opt = (n, d) => { const i = argv.indexOf(n); if (i < 0) return d; const v = argv[i + 1]; argv.splice(i, 2); return v; };
const cold = flag('--cold');
const readSpeed = flag('--read-speed');
const reps = Number(opt('--reps', 1));
const threads = opt('--threads', undefined);
const label = opt('--label', 'load-bf16');
const device = opt('--device', 'cpu');
const outDir = opt('--out', undefined);
if (argv.length !== 1) {
  console.error('usage: node bench/load-bf16.mjs <dir> [--cold] [--reps N] [--threads N] [--device cpu|cuda] [--read-speed] [--label L] [--out DIR]');
  process.exit(2);
}
const dir = argv[0];
if (threads) setThreads(Number(threads));

function checkpointFiles(d) {
  try {
    const idx = JSON.parse(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8'));
    return [...new Set(Object.values(idx.weight_map))].sort().map((f) => join(d, f));
  } catch {
    return [join(d, 'model.safetensors')];
  }
}
const files = checkpointFiles(dir);
const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
const drop = () => {
  for (const f of files) {
    execFileSync('sync', [f], { stdio: 'ignore' }); // dirty pages cannot be dropped
    execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  }
};
const cachedBytes = () => {
  try {
    // fincore (util-linux): resident bytes of each file
    const out = execFileSync('fincore', ['-b', '-n', '-o', 'RES', ...files], { encoding: 'utf8' });
    return out.trim().split('\n').reduce((a, l) => a + Number(l.trim() || 0), 0);
  } catch {
    return null;
  }
};
const status = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number((new RegExp(`${k}:\\s+(\\d+)`).exec(s) ?? [0, 0])[1]) * 1024;
  return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
};
const gb = (b) => b / 1e9;

const result = {
  label, dir, files: files.length, bytes, date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length,
  ramBytes: totalmem(), threads: cpuInfo().threads, isa: cpuInfo().isa, device, cold, runs: [],
};
console.log(`${label}: ${dir}, ${files.length} files, ${gb(bytes).toFixed(2)} GB; ${result.cores} cores, ${cpuInfo().threads} threads, ${result.isa}; load avg ${loadavg()[0].toFixed(1)}`);

if (readSpeed) {
  drop();
  const buf = Buffer.allocUnsafe(16 << 20);
  const t0 = performance.now();
  for (const f of files) {
    const fd = openSync(f, 'r');
    for (let pos = 0; ; ) { const n = readSync(fd, buf, 0, buf.length, pos); if (!n) break; pos += n; }
    closeSync(fd);
  }
  const s = (performance.now() - t0) / 1000;
  result.readSpeed = { seconds: s, gbPerSecond: gb(bytes) / s, loadAvg: loadavg()[0] };
  console.log(`  read the files cold (16 MB reads, one thread): ${s.toFixed(2)} s, ${(gb(bytes) / s).toFixed(2)} GB/s`);
}

for (let r = 0; r < reps; r++) {
  if (cold) drop();
  const cached0 = cachedBytes();
  const la0 = loadavg()[0];
  const c0 = process.cpuUsage();
  const f0 = process.resourceUsage();
  const t0 = performance.now();
  const model = await loadModel(dir, { device });
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const f1 = process.resourceUsage();
  // page faults (minor: mapped from memory, major: read from disk) and context switches during the load
  const faults = { minor: f1.minorPageFault - f0.minorPageFault, major: f1.majorPageFault - f0.majorPageFault,
    voluntarySwitches: f1.voluntaryContextSwitches - f0.voluntaryContextSwitches, involuntarySwitches: f1.involuntaryContextSwitches - f0.involuntaryContextSwitches };
  const info = model.info;
  const t = { readWaitSeconds: info.readWaitSeconds, quantizeSeconds: info.convertSeconds, pageInSeconds: info.pageInSeconds };
  const run = {
    wallSeconds: wall, cpuUserSeconds: c.user / 1e6, cpuSystemSeconds: c.system / 1e6, loadAvg: [la0, loadavg()[0]],
    cachedBefore: cached0, convertSeconds: info.convertSeconds, loadTimes: t, conversions: info.conversions,
    weightBytes: info.weightBytes, faults, ...status(),
  };
  result.runs.push(run);
  const split = t.readWaitSeconds !== undefined
    ? `read-wait ${t.readWaitSeconds.toFixed(2)} s, quantize ${t.quantizeSeconds.toFixed(2)} s, page-in ${t.pageInSeconds.toFixed(2)} s, other ${(wall - t.readWaitSeconds - t.quantizeSeconds - t.pageInSeconds).toFixed(2)} s`
    : `convert ${info.convertSeconds.toFixed(2)} s, other ${(wall - info.convertSeconds).toFixed(2)} s`;
  console.log(`  load ${r + 1}: ${wall.toFixed(2)} s (${split}); CPU ${(run.cpuUserSeconds + run.cpuSystemSeconds).toFixed(2)} s ` +
    `(user ${run.cpuUserSeconds.toFixed(2)}, sys ${run.cpuSystemSeconds.toFixed(2)}); cached before ${cached0 == null ? '?' : gb(cached0).toFixed(2)} GB; ` +
    `RssAnon ${gb(run.rssAnon).toFixed(2)} GB, RssFile ${gb(run.rssFile).toFixed(2)} GB; load avg ${la0.toFixed(1)}-${loadavg()[0].toFixed(1)}; ` +
    `faults ${faults.minor} minor, ${faults.major} major; switches ${faults.voluntarySwitches} vol, ${faults.involuntarySwitches} invol`);
  await model.dispose();
}
if (outDir) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${label}.json`), JSON.stringify(result, null, 2) + '\n');
}
