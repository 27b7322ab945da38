// The MXFP4 decode layout (native/cuda/mxfp4_layout.h; issue 12 item 1), checked on the host: the
// re-layout of the expert blocks and scales that GPTOSS_CUDA_MOE_DECODE=mma-relaid applies at upload,
// its inverse, the kernel's word decode and its addressing in a reference dot product against the CPU
// backend's E2M1 decode. native/cuda/tests/mxfp4_layout_test.cpp is plain C++ (no GPU): the build makes
// build/gptoss_mxfp4_layout_test (or the test compiles it: test/helpers/host-test.ts).
import { describe, it } from 'vitest';
import { runHostTest } from './helpers/host-test.js';

const LAYOUT = {
  target: 'gptoss_mxfp4_layout_test',
  sources: ['native/cuda/tests/mxfp4_layout_test.cpp'],
  headers: ['native/cuda/mxfp4_layout.h', 'native/cuda/shapes.h', 'native/core/dtype.h', 'native/core/tests/check.h'],
};

describe('MXFP4 decode layout (host)', () => {
  it('re-layout round trip, word decode and the kernel-order dot product against the CPU decode', () => {
    runHostTest(LAYOUT, 'mxfp4 layout', 20);
  });
});
