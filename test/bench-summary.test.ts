// bench/summary.mjs: the GPU host's one table and JSON over a directory of e2e results.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM script without declarations
import { parseKernelTable, renderTables, summarize } from '../bench/summary.mjs';

function e2e(label: string, layers: number, experts: number, context: number, decode: number, prefill: [number, number][] = []) {
  return {
    label,
    source: 'synthetic',
    backend: 'cuda:0 NVIDIA H200 (sm_90, ...)',
    config: { layers, experts, hidden: 2880, vocab: 201088 },
    loadMs: null,
    generateMs: 1000,
    prefill: prefill.map(([tokens, tps]) => ({ tokens, ms: (tokens / tps) * 1000, tokensPerSecond: tps })),
    decode: { context, tokens: 128, tokensPerSecond: decode },
  };
}

describe('bench/summary.mjs', () => {
  it('classifies full and cut models, reads peaks and kernel rows, and checks the targets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpt-oss-summary-'));
    const runs = [
      e2e('a-20b-512', 24, 32, 512, 610, [[512, 9000], [2048, 19000]]),
      e2e('b-20b-4096', 24, 32, 4096, 480),
      e2e('c-20b-8192', 24, 32, 8192, 470),
      e2e('d-cut', 4, 32, 512, 1200),
      e2e('e-120b-512', 36, 128, 512, 455),
    ];
    for (const r of runs) writeFileSync(join(dir, `${r.label}.json`), JSON.stringify(r));
    writeFileSync(join(dir, 'mem-c-20b-8192.log'), '100\n16000\n16400\n900\n');
    writeFileSync(join(dir, 'not-a-result.json'), '{"foo": 1}');
    writeFileSync(join(dir, 'bench.log'), [
      '| kernel | shape | median ms | achieved | ceiling | % |',
      '|---|---|---|---|---|---|',
      '| moe decode mma graph | n1 k4 E32 H2880 I2880 | 0.020 | 3300.0 GB/s | 4273 | 77% |',
      '| bf16 gemv lm_head graph | n1 [201088, 2880] | 0.262 | 4418.3 GB/s | 4275 | 80% |',
      '| bf16 gemv lm_head graph | n4 [201088, 2880] | 0.714 | 1622.5 GB/s | 4275 | 38% |',
    ].join('\n'));
    const s = summarize(dir);
    expect(s.runs.map((r: { model: string }) => r.model).sort()).toEqual(['120b', '20b', '20b', '20b', '20b, 4 layers']);
    expect(s.runs.find((r: { label: string }) => r.label === 'c-20b-8192').peakMiB).toBe(16400);
    expect(s.kernels).toHaveLength(3);
    expect(s.kernels[0]).toMatchObject({ kernel: 'moe decode mma graph', ms: 0.02, value: 3300, unit: 'GB/s', pct: 77 });
    const met = Object.fromEntries(s.targets.map((t: { what: string; met: boolean | null }) => [t.what, t.met]));
    expect(met).toEqual({
      '20b decode, context 512': true, // 610 >= 600 (the 4-layer cut's 1200 does not count)
      '20b decode, context 4096': false, // 480 < 500
      '20b prefill, 2048 tokens': false, // 19000 < 20000
      '120b decode, context 512': true,
      '20b peak device memory, 8k context': false, // 16400 MiB > 16 GiB
      '120b peak device memory': null, // no samples
      'decode MoE kernel, % of copy': true,
      'dense GEMV (LM head), % of copy': false, // the n1 row (80%), not the n4 one
    });
    expect(renderTables(s)).toContain('| 20b, 4 layers | synthetic | 512 | 1,200 |');
    expect(parseKernelTable('no table here')).toEqual([]);
  });
});
