// The HIP build of the native kernel check (gptoss_gpu_check_hip: native/cuda/tests/gpu_check.cpp with
// GPTOSS_GPU_CHECK_HIP, built by native/hip/hip.cmake beside the plugin) and scripts/hip-check.sh, which
// a host with an AMD GPU runs. No AMD GPU is here: these tests check that the program is built where the
// plugin is, that it loads the ROCm runtime and the plugin the way the addon does (no ROCm link
// dependency), and that without an AMD GPU or without ROCm it says why and exits 2 instead of crashing.
// CI (GPTOSS_EXPECT_HIP=1) never skips them.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native, packageRoot } from '../lib/native.js';

const info = native.hipBuildInfo();
const reason = native.hipUnavailableReason();
const expectHip = process.env.GPTOSS_EXPECT_HIP === '1';
const run = info.built || expectHip;
// Beside the plugin the addon loads (build/Release), as the loader looks for it beside the program.
const exe = [info.pluginPath ? join(dirname(info.pluginPath), 'gptoss_gpu_check_hip') : '', join(packageRoot, 'build', 'Release', 'gptoss_gpu_check_hip')]
  .filter((p) => p !== '')
  .find((p) => existsSync(p));

function check(args: string[], env: Record<string, string> = {}) {
  return spawnSync(exe!, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

describe.skipIf(!run)('gptoss_gpu_check_hip (the kernel check for an AMD GPU)', () => {
  it('is built beside the HIP plugin and names no ROCm library', () => {
    expect(info.built, `the HIP plugin was not built (${info.error})`).toBe(true);
    expect(exe, `gptoss_gpu_check_hip not found beside ${info.pluginPath}`).toBeDefined();
    expect(existsSync(join(dirname(exe!), 'gpt_oss_hip.so'))).toBe(true);
    const dyn = execFileSync('readelf', ['-d', exe!], { encoding: 'utf8' });
    const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed.length).toBeGreaterThan(0);
    expect(needed.filter((n) => /amdhip|hsa|rocm|amd_comgr/.test(n))).toEqual([]);
  });

  it('--build-info: loads the runtime and the plugin beside it, as the addon does', () => {
    const r = check(['--build-info']);
    expect(r.signal, r.stderr).toBeNull();
    if (info.runtime === '') {
      // no ROCm runtime installed: the plugin cannot load, and the reason names the library
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/^error .*libamdhip64/m);
      return;
    }
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toContain(`runtime ${info.runtime} (version ${info.runtimeVersion})`);
    expect(r.stdout).toMatch(new RegExp(`^plugin .*${dirname(exe!).split('/').pop()}/gpt_oss_hip\\.so \\(loaded\\)$`, 'm'));
    expect(r.stdout).toContain(`archs ${info.archs.join(',')}`);
    expect(info.archs).toContain('gfx942');
  });

  it.skipIf(reason === '')('without an AMD GPU: the reason on one line and exit 2, not a crash', () => {
    const r = check([]);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stdout + r.stderr).toBe(2);
    // the same reason the addon gives for device: 'hip' (one loader, the same machine)
    expect(r.stdout).toBe(`gpu_check: HIP unavailable: ${reason}\n`);
  });

  it('without the ROCm runtime: says which library is missing, exit 2', () => {
    const missing = join(tmpdir(), 'no-such-dir', 'libamdhip64.so.6');
    const r = check(['--quick'], { GPTOSS_HIP_RUNTIME: missing });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stdout).toMatch(/^gpu_check: HIP unavailable: the ROCm runtime \(libamdhip64\) is not installed/);
    expect(r.stdout).toContain(missing);
  });

  it('refuses an unknown argument (a typo must not start a full run)', () => {
    const r = check(['--quik']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("unknown argument '--quik'");
  });

  it.skipIf(reason === '')('scripts/hip-check.sh on a machine without an AMD GPU: reports why, exit 2', () => {
    const out = mkdtempSync(join(tmpdir(), 'hip-check-'));
    try {
      const r = spawnSync('bash', [join(packageRoot, 'scripts', 'hip-check.sh')], {
        encoding: 'utf8',
        cwd: packageRoot,
        env: { ...process.env, BUILD_DIR: join(packageRoot, 'build'), OUT: out, SKIP_ASAN: '1' },
        timeout: 60_000,
      });
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).toContain('build       kept (');
      expect(r.stdout).toContain(`gpu_check: HIP unavailable: ${reason}`);
      expect(r.stdout).toContain('no usable AMD GPU here');
      expect(existsSync(join(out, 'check.log'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
