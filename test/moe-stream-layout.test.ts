// The streaming MoE kernel's layout (native/cuda/moe_stream_layout.h; issue 11, GPTOSS_CUDA_MOE_BATCH=stream),
// checked on the host: whole CTAs run through the functions moe_stream.cu addresses shared memory and builds
// its fragments with, ldmatrix.x4 and mma.sync m16n8k16 emulated from the PTX ISA's tables, against a dense
// reference (partial stages and row blocks, empty experts, several 16-row tiles an expert), plus the
// shared-memory bank pattern. native/cuda/tests/moe_stream_layout_test.cpp is plain C++ (no GPU): the build
// makes build/gptoss_moe_stream_layout_test (or the test compiles it: test/helpers/host-test.ts).
import { describe, it } from 'vitest';
import { runHostTest } from './helpers/host-test.js';

const LAYOUT = {
  target: 'gptoss_moe_stream_layout_test',
  sources: ['native/cuda/tests/moe_stream_layout_test.cpp'],
  headers: ['native/cuda/moe_stream_layout.h', 'native/cuda/shapes.h', 'native/core/tests/check.h'],
};

describe('streaming MoE layout (host)', () => {
  it('emulated CTAs equal the dense reference; ldmatrix and B loads conflict-free', () => {
    runHostTest(LAYOUT, 'moe stream layout', 11);
  });
});
