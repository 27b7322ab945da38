// Evidence for the HIP kernels, which no AMD GPU here can run: (1) the MFMA index math they are built
// on, checked on the host against AMD's documented layouts (native/hip/tests/mfma_layout_test.cpp);
// (2) the gfx942 code objects of the HIP plugin: every kernel listed with its instruction counts
// (scripts/hip-kernels.sh), MFMA instructions in the GEMM, MoE and attention kernels, and no kernel
// that compiled to nothing; (3) the gfx950 (MI350) code objects where the plugin was built for it
// (clang 20+): the same kernels, the MFMA ones with MFMA. (2) and (3) run where the plugin was built
// and the LLVM tools of its clang are installed; in CI (GPTOSS_EXPECT_HIP=1) both are required, and
// with GPTOSS_EXPECT_HIP_GFX950=1 (.ci/run, when it installed clang-22) so is the gfx950 build.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../lib/native.js';

const build = join(packageRoot, 'build');
const expectHip = process.env.GPTOSS_EXPECT_HIP === '1';

describe('MFMA index math (host)', () => {
  const exe = [join(build, 'Release', 'gptoss_mfma_layout_test'), join(build, 'gptoss_mfma_layout_test')].find((p) => existsSync(p));
  it('lane/item maps of v_mfma_f32_32x32x8bf16_1k and 16x16x16bf16_1k, the GEMM tile and the decode MoE tile simulated on them', () => {
    expect(exe, `gptoss_mfma_layout_test not built under ${build}`).toBeDefined();
    const r = spawnSync(exe!, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^0 failure\(s\)$/m);
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout.match(/^ok /gm)?.length).toBe(8);
  });
});

interface KernelRow {
  object: string;
  kernel: string;
  instructions: number;
  mfma: number;
  trap: boolean;
  wave: number; // .wavefront_size
  maxThreads: number; // .max_flat_workgroup_size (__launch_bounds__, else 1024)
  lds: number; // static LDS bytes
  scratch: number; // private bytes a lane (spills included)
}

const listed = new Map<string, KernelRow[]>();
function listKernels(arch: string): KernelRow[] {
  const cached = listed.get(arch);
  if (cached) return cached;
  const rows = listKernelsOnce(arch);
  listed.set(arch, rows);
  return rows;
}

function listKernelsOnce(arch: string): KernelRow[] {
  const out = execFileSync('bash', [join(packageRoot, 'scripts', 'hip-kernels.sh'), build, arch], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [object, kernel, instructions, mfma, trap, wave, maxThreads, lds, scratch] = line.split('\t');
      return {
        object,
        kernel,
        instructions: Number(instructions),
        mfma: Number(mfma),
        trap: trap === '1',
        wave: Number(wave),
        maxThreads: Number(maxThreads),
        lds: Number(lds),
        scratch: Number(scratch),
      };
    });
}

const buildInfo = native.hipBuildInfo();
// The major version of the clang that built the plugin (build/CMakeCache.txt), 0 when unknown.
const clangMajor = (() => {
  try {
    const cache = readFileSync(join(build, 'CMakeCache.txt'), 'utf8');
    const clang = /^GPTOSS_HIP_CLANG:FILEPATH=.*clang\+\+-(\d+)$/m.exec(cache);
    return clang ? Number(clang[1]) : 0;
  } catch {
    return 0;
  }
})();
const built = buildInfo.built;
const expectGfx950 = process.env.GPTOSS_EXPECT_HIP_GFX950 === '1';
// scripts/hip-kernels.sh uses the LLVM of the plugin's clang (else the newest installed)
const haveLlvm = [22, 21, 20, 19].some((v) => existsSync(`/usr/lib/llvm-${v}/bin/llvm-objdump`));

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
    for (const o of ['attention.cu', 'gemm_tile.cu', 'matmul.cu', 'moe.cu', 'mxfp4.cu', 'norm_rope.cu', 'q8.cu', 'sample.cu', 'attention_mfma.hip',
      'gemm_tile_mfma.hip', 'moe_decode_mfma.hip'])
      expect(objects.has(o), `${o} has kernels in the gfx942 code object`).toBe(true);
  });

  it('every kernel is built for 64-lane wavefronts (the host launch shapes assume WARP_SIZE 64)', () => {
    expect(rows.length).toBeGreaterThan(100);
    expect(rows.filter((r) => r.wave !== 64).map((r) => `${r.object}: ${r.kernel} (${r.wave})`)).toEqual([]);
  });

  it('no kernel compiled to nothing: each has code or traps', () => {
    const empty = ours.filter((r) => r.instructions < 4 && !r.trap && !r.kernel.includes('gptoss_hip_code_probe'));
    expect(empty.map((r) => `${r.object}: ${r.kernel}`)).toEqual([]);
  });

  it('the GEMM tile on bf16 weights (linear prefill: Store; bf16 experts\' grouped gate_up: SwiGLU) runs on MFMA', () => {
    for (const epi of [0, 1]) {
      const gemm = ours.filter((r) => r.kernel.includes(`gemm_tile_mfma_kernel<(gptoss::cuda::WeightFormat)0, (gptoss::cuda::Epilogue)${epi},`));
      expect(gemm.length, `epilogue ${epi}`).toBe(3); // MT = 1, 2, 4
      // One k-step of 32: 4 MFMA k-steps x 2 halves of A (hi, lo) x MT accumulators.
      expect(gemm.map((r) => r.mfma).sort((a, b) => a - b)).toEqual([8, 16, 32]);
      for (const r of gemm) expect(r.trap, r.kernel).toBe(false);
    }
  });

  it('the MoE grouped GEMMs (MXFP4 experts: gate_up + SwiGLU, down) run on MFMA', () => {
    const moe = ours.filter((r) => /gemm_tile_mfma_kernel<\(gptoss::cuda::WeightFormat\)1,/.test(r.kernel));
    expect(moe.length).toBe(2 * 3); // (Store, SwiGLU) x (MT = 1, 2, 4)
    for (const r of moe) {
      expect(r.mfma, r.kernel).toBeGreaterThan(0);
      expect(r.trap, r.kernel).toBe(false);
    }
  });

  it('the decode MoE (MXFP4 experts: gate_up + SwiGLU, down) runs on MFMA', () => {
    const moe = ours.filter((r) => r.object === 'moe_decode_mfma.hip');
    expect(moe.map((r) => r.kernel.match(/moe_mfma_(gate_up|down)_kernel/)?.[1]).sort()).toEqual(['down', 'gate_up']);
    for (const r of moe) {
      // the loop body: 4 MX blocks in flight x 2 k-steps of v_mfma_f32_16x16x16bf16_1k
      expect(r.mfma, r.kernel).toBe(8);
      expect(r.trap, r.kernel).toBe(false);
      expect(r.maxThreads, r.kernel).toBe(256); // launch_moe_decode_mfma: kMoeMfmaWaves (4) wavefronts
      expect(r.scratch, `${r.kernel} spills`).toBe(0);
    }
  });

  it('flash attention (prefill) runs on MFMA', () => {
    const flash = ours.filter((r) => r.kernel.includes('flash_attention_mfma_kernel'));
    expect(flash.length).toBe(4); // f32, bf16, f16 and f32k-f16v caches (kv.cuh's KvType)
    // 64 keys x 64 dims a tile: S^T 2 x 8 k-steps, O^T 8 x 2, each hi + lo (f32, f16 and f32k-f16v caches: + K_lo, V_lo)
    expect(flash.map((r) => r.mfma).sort((a, b) => a - b)).toEqual([64, 96, 96, 96]);
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

  it("GGUF's Q8_0 kernels (q8.cu) are there: the GEMV for 1, 2, 4 and 8 tokens within its 256-thread launch, the prefill split and sum, the embedding", () => {
    const q8 = ours.filter((r) => r.object === 'q8.cu');
    const gemv = q8.filter((r) => r.kernel.includes('q8_gemv_kernel<'));
    expect(gemv.map((r) => r.kernel.match(/q8_gemv_kernel<(\d+)>/)?.[1]).sort()).toEqual(['1', '2', '4', '8']);
    // launch_linear_q8_gemv: kGemvWarps (256 / 64 = 4) wavefronts a block, within __launch_bounds__(256)
    for (const r of gemv) expect(r.maxThreads, r.kernel).toBe(256);
    for (const k of ['q8_gemv_kernel<', 'q8_split_rows_kernel', 'q8_sum_halves_kernel', 'q8_embedding_kernel'])
      expect(q8.some((r) => r.kernel.includes(k) && r.instructions > 50 && !r.trap), k).toBe(true);
    for (const r of q8) expect(r.scratch, `${r.kernel} spills`).toBe(0);
  });

  it('the batched step\'s paged kernels are there (plan, slot stores, gather, row sampling, decode and MFMA flash over block tables)', () => {
    for (const k of ['attention_paged_plan_kernel', 'rope_kv_store_kernel<', 'kv_store_kernel<', 'gather_rows_kernel',
      'argmax_pick_kernel', 'draw_max_kernel', 'draw_sum_kernel', 'draw_pick_kernel', 'attention_decode_kernel<', 'flash_attention_mfma_kernel<'])
      expect(ours.some((r) => r.kernel.includes(k) && r.instructions > 20 && !r.trap), k).toBe(true);
    // launch_attention_paged launches the plan with 1024 threads
    expect(ours.find((r) => r.kernel.includes('attention_paged_plan_kernel'))?.maxThreads).toBe(1024);
  });

  it('the routers use no scratch; with clang 20+ no kernel of ours does but argmax_split_kernel (rocPRIM\'s block reduce)', () => {
    // The routers' top-k kept its selections in per-lane arrays indexed by the runtime j: clang-19 put
    // them in 272 bytes of scratch a lane (clang-22 in registers); on AMD they are in LDS now (moe.cu).
    const routers = ours.filter((r) => /router\w*_kernel/.test(r.kernel));
    expect(routers.length).toBeGreaterThanOrEqual(6);
    for (const r of routers) expect(r.scratch, r.kernel).toBe(0);
    // clang-19 (CI's fallback) still gives the decode attention kernels 32 bytes (an accumulator pair
    // indexed by a key's parity in the unrolled loop's remainder); clang-22 none.
    if (clangMajor >= 20) {
      const scratch = ours.filter((r) => !r.trap && r.scratch > 0).map((r) => `${r.object}: ${r.kernel} (${r.scratch})`);
      expect(scratch.filter((k) => !k.includes('argmax_split_kernel'))).toEqual([]);
    }
  });

  it('the decode attention kernel fits two blocks a CU (64 KB of LDS) with f16, bf16 and f32k-f16v caches', () => {
    // KvType 0 f32, 1 bf16, 2 f16, 3 f32k-f16v: the merge weights share the scores' LDS on AMD (f32's
    // K and V tiles alone take 33 KB: one block a CU on gfx942, and its launch bound says so)
    const decode = ours.filter((r) => r.kernel.includes('attention_decode_kernel<'));
    expect(decode.length).toBe(4);
    for (const r of decode) {
      expect(r.maxThreads, r.kernel).toBe(256);
      if (!r.kernel.includes('KvType)0')) expect(r.lds, r.kernel).toBeLessThanOrEqual(32768);
    }
  });

  it('the SIMT kernels shared with CUDA are all there (decode attention, router, decode MoE, GEMV, norms, sampling)', () => {
    for (const k of ['attention_decode_kernel<', 'router_split_kernel', 'moe_decode_gate_up_kernel', 'moe_decode_down_kernel',
      'gemv_kernel<1, true>', 'rmsnorm_vec_kernel', 'rope_kv_store_kernel', 'argmax_split_kernel', 'draw_kernel', 'split_bf16_kernel'])
      expect(ours.some((r) => r.kernel.includes(k) && r.instructions > 20), k).toBe(true);
  });
});

describe.skipIf(!((built && haveLlvm && buildInfo.archs.includes('gfx950')) || expectGfx950))('HIP plugin code objects (gfx950, clang 20+)', () => {
  let gfx950: KernelRow[] = [];
  let gfx942: KernelRow[] = [];
  beforeAll(() => {
    if (!(built && haveLlvm && buildInfo.archs.includes('gfx950'))) return;
    gfx950 = listKernels('gfx950');
    gfx942 = listKernels('gfx942');
  }, 180_000);

  it('the plugin carries a gfx950 code object for every HIP object, with the same kernels as gfx942', () => {
    expect(buildInfo.archs, 'the HIP plugin was not built for gfx950 (clang 20+ needed)').toContain('gfx950');
    const names = (rows: KernelRow[]) => rows.map((r) => `${r.object}: ${r.kernel}`).sort();
    expect(gfx950.length).toBeGreaterThan(100);
    expect(names(gfx950)).toEqual(names(gfx942));
    expect(gfx950.filter((r) => r.wave !== 64).map((r) => r.kernel)).toEqual([]);
  });

  it('the MFMA kernels use MFMA on gfx950 too, and the same kernels trap as on gfx942', () => {
    const mfma = (rows: KernelRow[]) => rows.filter((r) => r.mfma > 0).map((r) => `${r.object}: ${r.kernel}`).sort();
    expect(mfma(gfx950)).toEqual(mfma(gfx942));
    for (const k of ['gemm_tile_mfma_kernel<', 'flash_attention_mfma_kernel<', 'moe_mfma_gate_up_kernel', 'moe_mfma_down_kernel'])
      expect(gfx950.some((r) => r.kernel.includes(k) && r.mfma > 0 && !r.trap), k).toBe(true);
    const traps = (rows: KernelRow[]) => rows.filter((r) => r.trap).map((r) => r.kernel).sort();
    expect(traps(gfx950)).toEqual(traps(gfx942));
  });
});
