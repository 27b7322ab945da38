// The GPU path choosers and the capability table's derivations (native/cuda/policy.cpp), checked on
// the host: native/cuda/tests/policy_test.cpp is plain C++ and needs no GPU, so CI runs the dispatch
// decisions for sm_80..sm_120 images (and an MI300's) here. The build makes build/gptoss_policy_test
// (or the test compiles it: test/helpers/host-test.ts).
import { describe, it } from 'vitest';
import { runHostTest } from './helpers/host-test.js';

const POLICY = {
  target: 'gptoss_policy_test',
  sources: ['native/cuda/tests/policy_test.cpp', 'native/cuda/policy.cpp'],
  headers: [...['policy.h', 'caps.h', 'shapes.h', 'arch.h'].map((h) => `native/cuda/${h}`), 'native/core/tests/check.h'],
};

describe('GPU path choosers (host)', () => {
  it('policy_test passes every check', () => {
    runHostTest(POLICY, 'policy', 60);
  });
});
