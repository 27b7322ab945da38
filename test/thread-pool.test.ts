// The CPU kernels' fork-join pool (native/core/thread_pool.cpp), checked on the host with its test
// hooks compiled in: native/core/tests/thread_pool_test.cpp forces a worker to arrive late from one
// job while the next is being set up (the interleaving behind a protection fault a full test run
// once hit in a pool thread: the late worker took a chunk of the new job under the old one's
// generation, so a chunk ran twice and the caller returned while one still ran over its stack), then
// drives one pool from two callers and a resizer and checks every job ran each item exactly once.
// The build makes build/gptoss_pool_test; where that is missing or older than its sources (an
// install that loaded a prebuild), the test compiles it with the C++ compiler itself.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = ['native/core/tests/thread_pool_test.cpp', 'native/core/thread_pool.cpp'].map((s) => join(root, s));
const headers = [join(root, 'native/core/thread_pool.h')];

function poolTest(): string {
  const built = join(root, 'build', 'gptoss_pool_test');
  const newest = Math.max(...[...sources, ...headers].map((f) => statSync(f).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return built;
  const exe = join(mkdtempSync(join(tmpdir(), 'gptoss-pool-')), 'pool_test');
  const cxx = process.env.CXX || 'c++';
  const args = ['-std=c++17', '-O1', '-Wall', '-DGPTOSS_POOL_TEST_HOOKS', '-I', join(root, 'native'), ...sources, '-pthread', '-o', exe];
  const r = spawnSync(cxx, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling the thread pool test with ${cxx} failed: ${r.error?.message ?? ''}${r.stderr}`);
  return exe;
}

describe('thread pool (host)', () => {
  it('a late worker never takes a chunk of the next job; every job runs each item exactly once', () => {
    const r = spawnSync(poolTest(), { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout, r.stdout + r.stderr).not.toContain('FAIL');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /(\d+) of (\d+) thread pool checks passed/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![2])).toBe(5);
  });
});
