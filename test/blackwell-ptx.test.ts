// Blackwell's native MXFP4 MMAs (native/cuda/mma_mxf4.cuh; issue 12 item 5): compile evidence only.
// scripts/ptx-blackwell.sh builds native/cuda/tests/blackwell_probe.cu to PTX for sm_120a (mma.sync
// kind::mxf4 block_scale) and sm_100a (tcgen05.mma kind::mxf4 block_scale) and passes each through
// ptxas. Skipped where no nvcc is installed (a CPU-only machine); CI has nvcc 13.0.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).stdout.trim();
const nvcc = which || (existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : '');

describe.skipIf(!nvcc)('Blackwell MXFP4 MMA compile evidence (nvcc + ptxas)', () => {
  it('ptxas takes the sm_120a block-scale mma.sync and the sm_100a tcgen05.mma, kind::mxf4', () => {
    const out = mkdtempSync(join(tmpdir(), 'gptoss-blackwell-'));
    const r = spawnSync('bash', [join(root, 'scripts/ptx-blackwell.sh')], { cwd: root, env: { ...process.env, OUT: out, NVCC: nvcc }, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sm_120a: ptxas accepted 1 x 'mma\.sync\.aligned\.m16n8k64\.row\.col\.kind::mxf4\.block_scale'/);
    expect(r.stdout).toMatch(/sm_100a: ptxas accepted 1 x 'tcgen05\.mma\.cta_group::1\.kind::mxf4\.block_scale'/);
  }, 60_000);
});
