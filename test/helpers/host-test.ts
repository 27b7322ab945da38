// The native host tests (plain C++ programs, no GPU, no Node): the build makes build/<target>; where
// that is missing or older than its sources (an install that loaded a prebuild), the test compiles
// it with the C++ compiler itself. Each prints "N of M <what> checks passed" last and a FAIL line per
// failed check.
import { expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface HostTest {
  /** the CMake target (build/<target>) */
  target: string;
  /** sources compiled into it, relative to the repository root */
  sources: string[];
  /** headers it depends on (their times count), relative to the repository root */
  headers: string[];
  /** extra compiler flags (defines, -pthread) */
  flags?: string[];
}

export function hostTestBinary(t: HostTest): string {
  const built = join(root, 'build', t.target);
  const files = [...t.sources, ...t.headers].map((f) => join(root, f));
  const newest = Math.max(...files.map((f) => statSync(f).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return built;
  const exe = join(mkdtempSync(join(tmpdir(), `${t.target}-`)), t.target);
  const cxx = process.env.CXX || 'c++';
  const args = ['-std=c++17', '-O1', '-Wall', '-I', join(root, 'native'), ...t.sources.map((s) => join(root, s)), ...(t.flags ?? []), '-o', exe];
  const r = spawnSync(cxx, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling ${t.target} with ${cxx} failed: ${r.error?.message ?? ''}${r.stderr}`);
  return exe;
}

/** Runs the test; expects every check passed and at least `minChecks` of them; returns the count. */
export function runHostTest(t: HostTest, what: string, minChecks: number): number {
  const r = spawnSync(hostTestBinary(t), { encoding: 'utf8', timeout: 120_000 });
  expect(r.stdout, r.stdout + r.stderr).not.toContain('FAIL');
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const m = new RegExp(`(\\d+) of (\\d+) ${what} checks passed`).exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  expect(Number(m![1])).toBe(Number(m![2]));
  expect(Number(m![2])).toBeGreaterThanOrEqual(minChecks);
  return Number(m![2]);
}
