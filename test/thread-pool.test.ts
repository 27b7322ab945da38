// The CPU kernels' fork-join pool (native/core/thread_pool.cpp), checked on the host with its test
// hooks compiled in: native/core/tests/thread_pool_test.cpp forces a worker to arrive late from one
// job while the next is being set up (the interleaving behind a protection fault a full test run
// once hit in a pool thread: the late worker took a chunk of the new job under the old one's
// generation, so a chunk ran twice and the caller returned while one still ran over its stack), then
// drives one pool from two callers and a resizer and checks every job ran each item exactly once.
// The build makes build/gptoss_pool_test (or the test compiles it: test/helpers/host-test.ts).
import { describe, it } from 'vitest';
import { runHostTest } from './helpers/host-test.js';

const POOL = {
  target: 'gptoss_pool_test',
  sources: ['native/core/tests/thread_pool_test.cpp', 'native/core/thread_pool.cpp'],
  headers: ['native/core/thread_pool.h', 'native/core/tests/check.h'],
  flags: ['-DGPTOSS_POOL_TEST_HOOKS', '-pthread'],
};

describe('thread pool (host)', () => {
  it('a late worker never takes a chunk of the next job; every job runs each item exactly once', () => {
    runHostTest(POOL, 'thread pool', 5);
  });
});
