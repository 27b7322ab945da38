// `gpt-oss bench`: microbenchmarks of every kernel family at gpt-oss-20b shapes, through the typed ops
// (ops.ts) on one device, timed by benchmark.js (its adaptive sampling and relative margin of error), next
// to the ceilings measured in the same run: copy bandwidth (a STREAM-style add, 3 streams) and a dense
// bf16 GEMM. Each row says which ceiling bounds it (bytes or FLOPs) and how close it gets.
//
// On a GPU the ops are queued on the device's stream; one timed call runs a kernel `repeat` times and
// then reads a 4-byte tensor back (a stream sync), so the time per kernel includes its launch but not a
// sync each. On the CPU every op returns when done (repeat 1).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import Benchmark from 'benchmark';
import { ops, cpuInfo } from './ops.js';
import { Tensor, type DeviceName } from './tensor.js';
import { resolveDevice, type DeviceRequest } from './model.js';
import { createSyntheticModel } from './synthetic.js';
import { packageRoot } from './native.js';

export const BENCH_SCHEMA = 'gpt-oss-node/bench/1';

export interface BenchTiming {
  /** Seconds per kernel call (benchmark.js mean over its samples, divided by the repeat count). */
  seconds: number;
  /** The fastest sample, seconds per call (on a shared machine the least disturbed figure). */
  minSeconds: number;
  /** benchmark.js's relative margin of error of the mean, in percent (95% confidence). */
  rmePercent: number;
  samples: number;
}

export interface BenchRow extends BenchTiming {
  family: 'ceiling' | 'mxfp4' | 'gemv' | 'moe' | 'attention' | 'sampling';
  name: string;
  /** Bytes a call must move (weights + activations read, outputs written) and FLOPs it computes. */
  bytes: number;
  flops: number;
  gbPerS: number;
  tflopPerS: number;
  /** Which ceiling applies, and the fraction of it reached (bytes/s of copy bandwidth, or FLOP/s of the GEMM). */
  bound: 'memory' | 'compute';
  ofCeiling: number;
}

export interface BenchReport {
  schema: typeof BENCH_SCHEMA;
  createdAt: string;
  package: { name: string; version: string };
  node: string;
  quick: boolean;
  device: { id: string; name: string; backend: string; arch?: string; driver?: string; isa?: string; threads?: number };
  ceilings: { copyGBs: number; gemmBf16TFLOPs: number };
  results: BenchRow[];
}

export interface BenchOptions {
  device?: DeviceRequest;
  /** Short runs and smaller problem counts (8 experts instead of 32, two contexts): a smoke test. */
  quick?: boolean;
  /** Only the rows whose name matches (the ceilings always run). */
  filter?: RegExp;
  /** Called as each row is measured. */
  onRow?: (row: BenchRow) => void;
}

/** Times `fn` with benchmark.js; `repeat` kernel calls per timed call. */
export function measure(fn: () => void, options: { quick?: boolean; repeat?: number } = {}): BenchTiming {
  const repeat = options.repeat ?? 1;
  const bench = new Benchmark('kernel', fn, {
    maxTime: options.quick ? 0.15 : 1.5,
    minSamples: options.quick ? 5 : 20,
    initCount: 1,
  });
  bench.run();
  if (bench.error) throw bench.error;
  return {
    seconds: bench.stats.mean / repeat,
    minSeconds: Math.min(...bench.stats.sample) / repeat,
    rmePercent: bench.stats.rme,
    samples: bench.stats.sample.length,
  };
}

// Deterministic inputs (xorshift32): the kernels' speed does not depend on the values, only on them
// being finite and varied.
function randomBytes(n: number, seed = 0x9e3779b9): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s;
    b[i + 1] = s >>> 8;
    b[i + 2] = s >>> 16;
    b[i + 3] = s >>> 24;
  }
  return b;
}
const randomF32 = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
function randomBf16(n: number): Uint16Array {
  const w = new Uint16Array(n);
  const b = randomBytes(n * 2, 7);
  for (let i = 0; i < n; i++) w[i] = 0x3c00 | (b[2 * i] & 0x7f) | ((b[2 * i + 1] & 0x80) << 8);
  return w;
}
// E8M0 scales near 2^-6..2^-5: dequantized weights of a realistic magnitude.
const mxfp4 = (rows: number, cols: number, device: DeviceName, lead: number[] = []): Tensor => {
  const n = lead.reduce((a, b) => a * b, 1) * rows * cols;
  return Tensor.fromMxfp4(randomBytes(n / 2), new Uint8Array(n / 32).fill(121), [...lead, rows, cols], device);
};

function deviceInfo(device: string, cpu: { isa: string; threads: number }, backend: string): BenchReport['device'] {
  if (device === 'cpu') {
    let name = 'cpu';
    try {
      name = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? name;
    } catch {
      // not Linux
    }
    return { id: device, name, backend, isa: cpu.isa, threads: cpu.threads };
  }
  let driver: string | undefined;
  try {
    driver = /Kernel Module\s+([\d.]+)/.exec(readFileSync('/proc/driver/nvidia/version', 'utf8'))?.[1];
  } catch {
    // not there in many containers: ask nvidia-smi
    try {
      driver = execFileSync('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000 })
        .split('\n')[0].trim() || undefined;
    } catch {
      // no nvidia-smi
    }
  }
  const arch = /\b(sm_\d+a?|gfx\d+)\b/.exec(backend)?.[1];
  return { id: device, name: backend.split(' (')[0], backend, ...(arch ? { arch } : {}), ...(driver ? { driver } : {}) };
}

/** Runs the kernel table on one device. */
export async function runKernelBench(options: BenchOptions = {}): Promise<BenchReport> {
  const quick = options.quick ?? false;
  const { device } = resolveDevice(options.device ?? 'auto', 'bench');
  const dev = device as DeviceName;
  const gpu = device !== 'cpu';
  const repeat = gpu ? 20 : 1;
  // the backend's own description of the device (name, arch, SMs, memory): from a tiny synthetic model
  const probe = await createSyntheticModel('tiny', { device: dev, layers: 1 });
  const backend = probe.info.backend;
  await probe.dispose();
  const cpu = cpuInfo();
  const syncTensor = Tensor.empty('f32', [1], dev);
  const timed = (op: () => void): BenchTiming =>
    measure(
      gpu
        ? () => {
            for (let r = 0; r < repeat; r++) op();
            syncTensor.read();
          }
        : op,
      { quick, repeat },
    );

  const pkg = JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as { name: string; version: string };
  const report: BenchReport = {
    schema: BENCH_SCHEMA,
    createdAt: new Date().toISOString(),
    package: { name: pkg.name, version: pkg.version },
    node: process.versions.node,
    quick,
    device: deviceInfo(device, cpu, backend),
    ceilings: { copyGBs: 0, gemmBf16TFLOPs: 0 },
    results: [],
  };
  const want = (name: string): boolean => !options.filter || options.filter.test(name);
  const row = (family: BenchRow['family'], name: string, bytes: number, flops: number, t: BenchTiming, bound: BenchRow['bound']): void => {
    const gbPerS = bytes / t.seconds / 1e9;
    const tflopPerS = flops / t.seconds / 1e12;
    const ceiling = bound === 'memory' ? report.ceilings.copyGBs : report.ceilings.gemmBf16TFLOPs;
    const r: BenchRow = { family, name, ...t, bytes, flops, gbPerS, tflopPerS, bound, ofCeiling: ceiling > 0 ? (bound === 'memory' ? gbPerS : tflopPerS) / ceiling : 0 };
    report.results.push(r);
    options.onRow?.(r);
  };

  const H = 2880, I = 2880, Hq = 64, Hkv = 8, D = 64, V = 201088;
  const E = quick ? 8 : 32;

  // ---- ceilings ----
  {
    const n = gpu ? 64 << 20 : (quick ? 4 : 16) << 20; // f32 elements a stream
    const acc = Tensor.fromF32(new Float32Array(n), [n], dev);
    const x = Tensor.fromF32(new Float32Array(n).fill(1e-3), [n], dev);
    const t = timed(() => ops.add(acc, x));
    report.ceilings.copyGBs = (3 * n * 4) / t.seconds / 1e9;
    row('ceiling', `copy bandwidth: add f32 [${n >> 20}M] (2 reads + 1 write)`, 3 * n * 4, n, t, 'memory');
    acc.dispose();
    x.dispose();
  }
  {
    const m = gpu ? 4096 : 64; // enough rows that the weights are reused: compute-bound
    const x = Tensor.fromF32(randomF32(m * H), [m, H], dev);
    const w = Tensor.fromBf16(randomBf16(I * H), [I, H], dev);
    const out = Tensor.empty('f32', [m, I], dev);
    const t = timed(() => ops.linear(x, w, null, out));
    const flops = 2 * m * H * I;
    report.ceilings.gemmBf16TFLOPs = flops / t.seconds / 1e12;
    row('ceiling', `dense bf16 GEMM [${m}, ${H}] x [${I}, ${H}]^T`, m * H * 4 + I * H * 2 + m * I * 4, flops, t, 'compute');
    for (const z of [x, w, out]) z.dispose();
  }

  // ---- MXFP4 dequantization ----
  if (want('mxfp4 dequant')) {
    const packed = mxfp4(2 * I, H, dev);
    const out = Tensor.empty('f32', [2 * I, H], dev);
    const n = 2 * I * H;
    row('mxfp4', `mxfp4 dequant [${2 * I}, ${H}] -> f32`, n / 2 + n / 32 + n * 4, n, timed(() => ops.mxfp4Dequantize(packed, out)), 'memory');
    packed.dispose();
    out.dispose();
  }

  // ---- GEMV (one token): bf16 attention projections, mxfp4 expert rows ----
  {
    const x = Tensor.fromF32(randomF32(H), [1, H], dev);
    const qkvRows = (Hq + 2 * Hkv) * D;
    if (want('gemv bf16')) {
      const w = Tensor.fromBf16(randomBf16(qkvRows * H), [qkvRows, H], dev);
      const out = Tensor.empty('f32', [1, qkvRows], dev);
      row('gemv', `gemv bf16 qkv [${qkvRows}, ${H}]`, qkvRows * H * 2, 2 * qkvRows * H, timed(() => ops.linear(x, w, null, out)), 'memory');
      w.dispose();
      out.dispose();
    }
    if (want('gemv mxfp4')) {
      const w = mxfp4(2 * I, H, dev);
      const out = Tensor.empty('f32', [1, 2 * I], dev);
      const n = 2 * I * H;
      row('gemv', `gemv mxfp4 gate_up [${2 * I}, ${H}]`, n / 2 + n / 32, 2 * n, timed(() => ops.linear(x, w, null, out)), 'memory');
      w.dispose();
      out.dispose();
    }
    x.dispose();
  }

  // ---- MoE: decode (1 token, top-4) and the grouped expert GEMM of a prefill ----
  if (want('moe')) {
    const w = {
      gateUp: mxfp4(2 * I, H, dev, [E]),
      gateUpBias: Tensor.fromBf16(new Uint16Array(E * 2 * I), [E, 2 * I], dev),
      down: mxfp4(H, I, dev, [E]),
      downBias: Tensor.fromBf16(new Uint16Array(E * H), [E, H], dev),
    };
    const expertBytes = ((3 * H * I) / 2) * (1 + 1 / 16); // gate_up + down, blocks + scales
    if (want('moe decode')) {
      const x = Tensor.fromF32(randomF32(H), [1, H], dev);
      const idx = Tensor.fromI32([0, 3, 5, 6].map((e) => e % E), [1, 4], dev);
      const wt = Tensor.fromF32([0.4, 0.3, 0.2, 0.1], [1, 4], dev);
      const out = Tensor.empty('f32', [1, H], dev);
      row('moe', `moe decode: 1 token, top-4 of ${E} experts`, 4 * expertBytes, 4 * 6 * H * I, timed(() => ops.moe(x, idx, wt, w, undefined, out)), 'memory');
      for (const z of [x, idx, wt, out]) z.dispose();
    }
    if (want('moe grouped')) {
      const tokens = quick ? 32 : 256;
      let seed = 12345;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
      const ids = new Int32Array(tokens * 4);
      for (let t = 0; t < tokens; t++) {
        const order = Array.from({ length: E }, (_, e) => e).sort(() => rnd() - 0.5);
        ids.set(order.slice(0, 4), t * 4);
      }
      const x = Tensor.fromF32(randomF32(tokens * H), [tokens, H], dev);
      const idx = Tensor.fromI32(ids, [tokens, 4], dev);
      const wt = Tensor.fromF32(new Float32Array(tokens * 4).fill(0.25), [tokens, 4], dev);
      const out = Tensor.empty('f32', [tokens, H], dev);
      const used = new Set(ids).size;
      row('moe', `moe grouped GEMM: ${tokens} tokens, random top-4 of ${E}`, used * expertBytes, tokens * 4 * 6 * H * I,
        timed(() => ops.moe(x, idx, wt, w, undefined, out)), 'compute');
      for (const z of [x, idx, wt, out]) z.dispose();
    }
    for (const z of Object.values(w)) z.dispose();
  }

  // ---- decode attention (64 query heads, 8 kv heads, head dim 64) at several contexts ----
  for (const ctx of gpu ? (quick ? [1024, 8192] : [1024, 4096, 16384, 65536]) : quick ? [512, 2048] : [1024, 4096, 16384]) {
    const name = `attention decode ctx ${ctx} (${Hq}q/${Hkv}kv x ${D}, f32 cache)`;
    if (!want(name)) continue;
    const k = Tensor.fromF32(randomF32(ctx * Hkv * D), [ctx, Hkv, D], dev);
    const v = Tensor.fromF32(randomF32(ctx * Hkv * D), [ctx, Hkv, D], dev);
    const q = Tensor.fromF32(randomF32(Hq * D), [1, Hq, D], dev);
    const sinks = Tensor.fromBf16(new Uint16Array(Hq), [Hq], dev);
    const pos = Tensor.fromI32([ctx - 1], [1], dev);
    const out = Tensor.empty('f32', [1, Hq, D], dev);
    row('attention', name, 2 * ctx * Hkv * D * 4, 4 * ctx * Hq * D, timed(() => ops.attention(q, k, v, sinks, pos, 0, 0.125, out)), 'memory');
    for (const z of [k, v, q, sinks, pos, out]) z.dispose();
  }

  // ---- sampling over the full vocabulary ----
  if (want('sample')) {
    const logits = Tensor.fromF32(randomF32(V).map((x) => x * 20), [1, V], dev);
    for (const [label, params] of [
      ['greedy', { temperature: 0 }],
      ['top-p 0.9', { temperature: 1, topP: 0.9 }],
    ] as const) {
      // sample() returns the id to the host: a sync each call, so no repeat
      row('sampling', `sample ${label} [1, ${V}]`, V * 4, V, measure(() => ops.sample(logits, params, 0.5), { quick }), 'memory');
    }
    logits.dispose();
  }
  syncTensor.dispose();
  return report;
}

/** The report as a table: one row a kernel, its time, throughput and the share of its ceiling. */
export function formatBenchTable(r: BenchReport): string {
  const d = r.device;
  const head = [
    `gpt-oss-node ${r.package.version} kernel bench on ${d.id}: ${d.backend}` +
      (d.arch ? ` | arch ${d.arch}` : '') + (d.driver ? ` | driver ${d.driver}` : '') + (d.isa ? ` | ${d.name}, isa ${d.isa}, ${d.threads} threads` : ''),
    `ceilings measured in this run: copy ${r.ceilings.copyGBs.toFixed(1)} GB/s, dense bf16 GEMM ${(r.ceilings.gemmBf16TFLOPs * 1e3).toFixed(1)} GFLOP/s` +
      ` | Node ${r.node}${r.quick ? ' | --quick' : ''} | ${r.createdAt}`,
  ];
  const cols = ['kernel', 'us/call', '±%', 'n', 'GB/s', 'GFLOP/s', 'of ceiling'];
  const rows = r.results.map((x) => [
    x.name,
    (x.seconds * 1e6).toFixed(x.seconds < 1e-4 ? 2 : 1),
    x.rmePercent.toFixed(1),
    String(x.samples),
    x.gbPerS.toFixed(1),
    (x.tflopPerS * 1e3).toFixed(1),
    `${(x.ofCeiling * 100).toFixed(0)}% ${x.bound === 'memory' ? 'bw' : 'gemm'}`,
  ]);
  const width = cols.map((c, i) => Math.max(c.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  return [...head, line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
