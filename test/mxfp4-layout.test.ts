// The MXFP4 decode layout (native/cuda/mxfp4_layout.h; issue 12 item 1), checked on the host: the
// re-layout of the expert blocks and scales that GPTOSS_CUDA_MOE_DECODE=mma-relaid applies at upload,
// its inverse, the kernel's word decode and its addressing in a reference dot product against the CPU
// backend's E2M1 decode. native/cuda/tests/mxfp4_layout_test.cpp is plain C++ (no GPU): the build makes
// build/gptoss_mxfp4_layout_test; where that is missing or older than its sources, the test compiles it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'native/cuda/tests/mxfp4_layout_test.cpp');
const headers = ['native/cuda/mxfp4_layout.h', 'native/cuda/shapes.h', 'native/core/dtype.h'].map((h) => join(root, h));

function layoutTest(): string {
  const built = join(root, 'build', 'gptoss_mxfp4_layout_test');
  const newest = Math.max(...[source, ...headers].map((f) => statSync(f).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return built;
  const exe = join(mkdtempSync(join(tmpdir(), 'gptoss-mxlayout-')), 'mxfp4_layout_test');
  const cxx = process.env.CXX || 'c++';
  const r = spawnSync(cxx, ['-std=c++17', '-O1', '-Wall', '-I', join(root, 'native'), source, '-o', exe], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling the mxfp4 layout test with ${cxx} failed: ${r.error?.message ?? ''}${r.stderr}`);
  return exe;
}

describe('MXFP4 decode layout (host)', () => {
  it('re-layout round trip, word decode and the kernel-order dot product against the CPU decode', () => {
    const r = spawnSync(layoutTest(), { encoding: 'utf8' });
    expect(r.stdout, r.stdout + r.stderr).not.toContain('FAIL');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /(\d+) of (\d+) mxfp4 layout checks passed/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![2])).toBeGreaterThanOrEqual(20);
  });
});
