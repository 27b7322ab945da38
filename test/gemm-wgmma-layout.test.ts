// The Hopper wgmma GEMM tile (native/cuda/gemm_wgmma.cu; issue 12 item 4; GPTOSS_CUDA_GEMM=wgmma,
// which `auto` picks on sm_90a), checked on the host: its shared-memory plan, the producers'
// 128-byte swizzled placement, every descriptor read decoded as the PTX ISA defines it, the
// accumulator fragment map, the ring's slot reuse, and whole blocks emulated against a double GEMM.
// native/cuda/tests/gemm_wgmma_layout_test.cpp is plain C++ (no GPU): the build makes
// build/gptoss_gemm_wgmma_layout_test (or the test compiles it: test/helpers/host-test.ts).
import { describe, it } from 'vitest';
import { runHostTest } from './helpers/host-test.js';

const LAYOUT = {
  target: 'gptoss_gemm_wgmma_layout_test',
  sources: ['native/cuda/tests/gemm_wgmma_layout_test.cpp'],
  headers: ['native/cuda/gemm_wgmma_layout.h', 'native/cuda/shapes.h', 'native/core/tests/check.h'],
};

describe('wgmma GEMM tile layout (host)', () => {
  it('smem plan, swizzled producers, descriptor reads, accumulator map, ring reuse, emulated blocks', () => {
    runHostTest(LAYOUT, 'wgmma layout', 50);
  });
});
