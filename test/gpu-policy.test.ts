// The GPU path choosers and the capability table's derivations (native/cuda/policy.cpp), checked on
// the host: native/cuda/tests/policy_test.cpp is plain C++ and needs no GPU, so CI runs the dispatch
// decisions for sm_80..sm_120 images (and an MI300's) here. The build makes build/gptoss_policy_test;
// where that is missing or older than its sources (an install that loaded a prebuild), the test
// compiles it with the C++ compiler itself.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = ['native/cuda/tests/policy_test.cpp', 'native/cuda/policy.cpp'].map((s) => join(root, s));
const headers = ['policy.h', 'caps.h', 'shapes.h', 'arch.h'].map((h) => join(root, 'native/cuda', h));

function policyTest(): string {
  const built = join(root, 'build', 'gptoss_policy_test');
  const newest = Math.max(...[...sources, ...headers].map((f) => statSync(f).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return built;
  const exe = join(mkdtempSync(join(tmpdir(), 'gptoss-policy-')), 'policy_test');
  const cxx = process.env.CXX || 'c++';
  const r = spawnSync(cxx, ['-std=c++17', '-O1', '-Wall', '-I', join(root, 'native'), ...sources, '-o', exe], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling the policy test with ${cxx} failed: ${r.error?.message ?? ''}${r.stderr}`);
  return exe;
}

describe('GPU path choosers (host)', () => {
  it('policy_test passes every check', () => {
    const r = spawnSync(policyTest(), { encoding: 'utf8' });
    expect(r.stdout, r.stdout + r.stderr).not.toContain('FAIL');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /(\d+) of (\d+) policy checks passed/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![2])).toBeGreaterThanOrEqual(60);
  });
});
