// Evidence for the HIP kernels, which no AMD GPU here can run: (1) the MFMA index math they are built
// on, checked on the host against AMD's documented layouts (native/hip/tests/mfma_layout_test.cpp);
// (2) the gfx942 code objects of the HIP plugin: every kernel listed with its instruction counts
// (scripts/hip-kernels.sh), MFMA instructions in the GEMM, MoE and attention kernels, and no kernel
// that compiled to nothing. (2) runs where the plugin was built and llvm-19 is installed; in CI
// (GPTOSS_EXPECT_HIP=1) both are required.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../lib/native.js';

const build = join(packageRoot, 'build');
const expectHip = process.env.GPTOSS_EXPECT_HIP === '1';

describe('MFMA index math (host)', () => {
  const exe = [join(build, 'Release', 'gptoss_mfma_layout_test'), join(build, 'gptoss_mfma_layout_test')].find((p) => existsSync(p));
  it('lane/item maps of v_mfma_f32_32x32x8bf16_1k and 16x16x16bf16_1k, and the GEMM tile simulated on them', () => {
    expect(exe, `gptoss_mfma_layout_test not built under ${build}`).toBeDefined();
    const r = spawnSync(exe!, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^0 failure\(s\)$/m);
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout.match(/^ok /gm)?.length).toBe(4);
  });
});

interface KernelRow {
  object: string;
  kernel: string;
  instructions: number;
  mfma: number;
  trap: boolean;
}

function listKernels(arch: string): KernelRow[] {
  const out = execFileSync('bash', [join(packageRoot, 'scripts', 'hip-kernels.sh'), build, arch], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [object, kernel, instructions, mfma, trap] = line.split('\t');
      return { object, kernel, instructions: Number(instructions), mfma: Number(mfma), trap: trap === '1' };
    });
}

const built = native.hipBuildInfo().built;
const haveLlvm = existsSync('/usr/lib/llvm-19/bin/llvm-objdump');

describe.skipIf(!(built && haveLlvm) && !expectHip)('HIP plugin code objects (gfx942)', () => {
  let rows: KernelRow[] = [];
  let ours: KernelRow[] = [];
  beforeAll(() => {
    rows = built && haveLlvm ? listKernels('gfx942') : [];
    ours = rows.filter((r) => !r.kernel.includes('rocprim::'));
  }, 180_000);

  it('lists the kernels of every HIP object', () => {
    expect(built, 'the HIP plugin was not built').toBe(true);
    expect(haveLlvm, 'llvm-19 (llvm-objdump) is not installed').toBe(true);
    const objects = new Set(rows.map((r) => r.object));
    for (const o of ['attention.cu', 'gemm_tile.cu', 'matmul.cu', 'moe.cu', 'mxfp4.cu', 'norm_rope.cu', 'sample.cu', 'attention_mfma.hip', 'gemm_tile_mfma.hip'])
      expect(objects.has(o), `${o} has kernels in the gfx942 code object`).toBe(true);
  });

  it('no kernel compiled to nothing: each has code or traps', () => {
    const empty = ours.filter((r) => r.instructions < 4 && !r.trap && !r.kernel.includes('gptoss_hip_code_probe'));
    expect(empty.map((r) => `${r.object}: ${r.kernel}`)).toEqual([]);
  });

  it('the GEMM tile (linear prefill: bf16 weights) runs on MFMA', () => {
    const gemm = ours.filter((r) => /gemm_tile_mfma_kernel<\(gptoss::cuda::WeightFormat\)0,/.test(r.kernel));
    expect(gemm.length).toBe(3); // Store x (MT = 1, 2, 4)
    // One k-step of 32: 4 MFMA k-steps x 2 halves of A (hi, lo) x MT accumulators.
    expect(gemm.map((r) => r.mfma).sort((a, b) => a - b)).toEqual([8, 16, 32]);
  });

  it('the MoE grouped GEMMs (MXFP4 experts: gate_up + SwiGLU, down) run on MFMA', () => {
    const moe = ours.filter((r) => /gemm_tile_mfma_kernel<\(gptoss::cuda::WeightFormat\)1,/.test(r.kernel));
    expect(moe.length).toBe(2 * 3); // (Store, SwiGLU) x (MT = 1, 2, 4)
    for (const r of moe) {
      expect(r.mfma, r.kernel).toBeGreaterThan(0);
      expect(r.trap, r.kernel).toBe(false);
    }
  });

  it('flash attention (prefill) runs on MFMA', () => {
    const flash = ours.filter((r) => r.kernel.includes('flash_attention_mfma_kernel'));
    expect(flash.length).toBe(3); // f32, bf16 and f16 cache (kv.cuh's KvType)
    // 64 keys x 64 dims a tile: S^T 2 x 8 k-steps, O^T 8 x 2, each hi + lo (f32 and f16 caches: + K_lo, V_lo)
    expect(flash.map((r) => r.mfma).sort((a, b) => a - b)).toEqual([64, 96, 96]);
    for (const r of flash) expect(r.trap, r.kernel).toBe(false);
  });

  it('the CUDA mma.sync kernels are in the HIP build only as traps (the choosers never pick them on AMD)', () => {
    const cudaOnly = ours.filter((r) => /flash_attention_kernel|moe_mma_|moe_fp8_|gemm_tile_kernel</.test(r.kernel));
    // flash (2), the GEMM tile (3 pairs x 3 MT), the decode MoE's bf16 and e4m3 kernels
    expect(cudaOnly.length).toBeGreaterThanOrEqual(2 + 9 + 4);
    for (const r of cudaOnly) {
      expect(r.trap, r.kernel).toBe(true);
      expect(r.mfma, r.kernel).toBe(0);
    }
  });

  it('the SIMT kernels shared with CUDA are all there (decode attention, router, decode MoE, GEMV, norms, sampling)', () => {
    for (const k of ['attention_decode_kernel<', 'router_split_kernel', 'moe_decode_gate_up_kernel', 'moe_decode_down_kernel',
      'gemv_kernel<1, true>', 'rmsnorm_vec_kernel', 'rope_kv_store_kernel', 'argmax_split_kernel', 'draw_kernel', 'split_bf16_kernel'])
      expect(ours.some((r) => r.kernel.includes(k) && r.instructions > 20), k).toBe(true);
  });
});
