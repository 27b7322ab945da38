// gpt-oss bench --quick on the CPU, as a user runs it: the table's shape and the JSON report's schema
// (not timings: those belong to bench/RESULTS.md).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_SCHEMA, type BenchReport } from '../lib/bench.js';

const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'gpt-oss-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gpt-oss bench', () => {
  it('--quick --device cpu prints a row per kernel against the ceilings and writes the JSON report', async () => {
    const file = join(dir, 'bench.json');
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [cli, 'bench', '--device', 'cpu', '--quick', '--json', file], (e, out, err) => (e ? reject(new Error(err)) : resolve(out))),
    );
    const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
    expect(report.schema).toBe(BENCH_SCHEMA);
    expect(report.quick).toBe(true);
    expect(report.device).toMatchObject({ id: 'cpu', isa: expect.stringMatching(/^(scalar|avx2|avxvnni|avx512|avx512vnni|neon)$/), threads: expect.any(Number) });
    expect(report.ceilings.copyGBs).toBeGreaterThan(0);
    expect(report.ceilings.gemmBf16TFLOPs).toBeGreaterThan(0);
    // every family, and attention at more than one context
    const families = new Set(report.results.map((r) => r.family));
    expect([...families].sort()).toEqual(['attention', 'ceiling', 'gemv', 'moe', 'mxfp4', 'sampling']);
    for (const k of [/^copy bandwidth/, /^dense bf16 GEMM/, /^mxfp4 dequant/, /^gemv bf16/, /^gemv mxfp4/, /^moe decode/, /^moe grouped GEMM/, /^sample greedy/])
      expect(report.results.some((r) => k.test(r.name)), String(k)).toBe(true);
    expect(report.results.filter((r) => r.family === 'attention').length).toBeGreaterThanOrEqual(2);
    for (const r of report.results) {
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.samples).toBeGreaterThanOrEqual(5);
      for (const v of [r.rmePercent, r.bytes, r.flops, r.gbPerS, r.tflopPerS, r.ofCeiling]) expect(Number.isFinite(v)).toBe(true);
      expect(['memory', 'compute']).toContain(r.bound);
      // the row's throughput is its work over its time
      expect(r.gbPerS).toBeCloseTo(r.bytes / r.seconds / 1e9, 6);
    }
    // the table: two header lines (device, ceilings), column names, a rule, one line per result
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/kernel bench on cpu: .*isa (scalar|avx2|avx512|neon)/);
    expect(lines[1]).toMatch(/^ceilings measured in this run: copy [\d.]+ GB\/s, dense bf16 GEMM [\d.]+ GFLOP\/s/);
    expect(lines[2].split(/\s{2,}/)).toEqual(['kernel', 'us/call', '±%', 'n', 'GB/s', 'GFLOP/s', 'of ceiling']);
    expect(lines).toHaveLength(4 + report.results.length);
    for (const [i, r] of report.results.entries()) expect(lines[4 + i].startsWith(r.name)).toBe(true);
  });
});
