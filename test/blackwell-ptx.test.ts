// Blackwell's native block-scaled MMAs (native/cuda/mma_mxf4.cuh; issue 12 item 5): compile evidence (no Blackwell GPU
// has been available). scripts/ptx-blackwell.sh builds native/cuda/tests/blackwell_probe.cu to PTX for sm_120a
// (mma.sync kind::mxf4 block_scale) and sm_100a (tcgen05.mma kind::mxf4 block_scale), and the decode MoE's MmaMxf8
// kernels (moe_decode_mma.cu, mma.sync kind::mxf8f6f4 block_scale) for sm_120a, and passes each through ptxas.
// Skipped where no nvcc is installed (a CPU-only machine); CI has nvcc 13.0.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).stdout.trim();
const nvcc = which || (existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : '');

// One run of the script for both tests.
let script: ReturnType<typeof spawnSync> | undefined;
const ptxBlackwell = () => {
  script ??= spawnSync('bash', [join(root, 'scripts/ptx-blackwell.sh')], {
    cwd: root, env: { ...process.env, OUT: mkdtempSync(join(tmpdir(), 'gptoss-blackwell-')), NVCC: nvcc }, encoding: 'utf8' });
  return script as { status: number | null; stdout: string; stderr: string };
};

describe.skipIf(!nvcc)('Blackwell block-scaled MMA compile evidence (nvcc + ptxas)', () => {
  it('ptxas takes the sm_120a block-scale mma.sync and the sm_100a tcgen05.mma, kind::mxf4', () => {
    const r = ptxBlackwell();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sm_120a: ptxas accepted 1 x 'mma\.sync\.aligned\.m16n8k64\.row\.col\.kind::mxf4\.block_scale'/);
    expect(r.stdout).toMatch(/sm_100a: ptxas accepted 1 x 'tcgen05\.mma\.cta_group::1\.kind::mxf4\.block_scale'/);
  }, 120_000);
  it('the sm_120a decode MoE kernels (mma-mxf8) issue the block-scaled kind::mxf8f6f4 mma.sync, and ptxas takes them', () => {
    const r = ptxBlackwell();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /sm_120a decode MoE \(mma-mxf8\): ptxas accepted (\d+) x 'mma\.sync\.aligned\.m16n8k32\.row\.col\.kind::mxf8f6f4\.block_scale\.scale_vec::1X\.f32\.e2m1\.e4m3\.f32\.ue8m0' in its kernels/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(5);  // four kernels (gate_up / down, 2 / 3 stages) and the self-test
  }, 120_000);
});
