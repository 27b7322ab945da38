// A checkpoint file that changes under a loaded CPU model (issue 16, finding 1): truncated, it used
// to kill the process with SIGBUS (exit 135) at the next forward; written in place, it silently
// changed every logit. Now each forward first checks the files and fails with a CheckpointError
// naming the file. Runs in a child process, so that a signal is seen as one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { copyTiny } from '../helpers/damage.js';

const root = mkdtempSync(join(tmpdir(), 'gpt-oss-changes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

function run(dir: string, change: string): { status: number | null; signal: string | null; out: string; err: string } {
  const script = `
    import { loadModel } from ${JSON.stringify(dist)};
    import * as fs from 'node:fs';
    const file = ${JSON.stringify(join(dir, 'model.safetensors'))};
    const m = await loadModel(${JSON.stringify(dir)}, { device: 'cpu' });
    const before = await m.forward([1, 2]);
    ${change}
    await new Promise((r) => setTimeout(r, 200)); // the page-in thread, if still running, meets the change too
    try {
      await m.forward([1, 2]);
      console.log(JSON.stringify({ ok: true }));
    } catch (e) {
      console.log(JSON.stringify({ name: e.constructor.name, file: e.file, message: e.message }));
    }
    await m.dispose();
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

describe('a checkpoint file that changes under a loaded model', () => {
  it('truncated: a CheckpointError naming the file, not SIGBUS', () => {
    const dir = copyTiny(join(root, 'truncated'));
    const r = run(dir, 'fs.truncateSync(file, 4096);');
    expect(r.signal, r.err).toBeNull();
    expect(r.status, r.err).toBe(0);
    const e = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(e.name).toBe('CheckpointError');
    expect(e.file).toBe(join(dir, 'model.safetensors'));
    expect(e.message).toMatch(/was truncated after it was loaded \(7099272 -> 4096 bytes\); .* load it again/);
  });

  it('truncated during a forward pass: the process ends with a message naming the file (exit 74), not a bare SIGBUS', () => {
    // the first forward measures how long one takes; the second has the file truncated a third of
    // the way in (a shorter forward than the truncation delay would finish first: then twice the tokens)
    for (let tokens = 512; ; tokens *= 2) {
      const dir = copyTiny(join(root, `during-${tokens}`));
      const script = `
        import { loadModel } from ${JSON.stringify(dist)};
        import * as fs from 'node:fs';
        const m = await loadModel(${JSON.stringify(dir)}, { device: 'cpu' });
        const tokens = Array.from({ length: ${tokens} }, (_, i) => (i * 7) % 1024);
        const t = performance.now();
        await m.forward(tokens);
        const ms = performance.now() - t;
        const pending = m.forward(tokens);
        setTimeout(() => fs.truncateSync(${JSON.stringify(join(dir, 'model.safetensors'))}, 4096), ms / 3);
        await pending.catch(() => undefined);
        console.log('finished before the truncation');`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
      if (r.stdout.includes('finished before the truncation') && tokens < 4096) continue;
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(74);
      expect(r.stderr).toMatch(
        new RegExp(`^gpt-oss-node: checkpoint file ${join(dir, 'model.safetensors').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} was truncated while the model was reading it \\(7099272 -> 4096 bytes\\): bus error reading the mapping at byte \\d+\\. The process cannot continue \\(exit code 74\\)`, 'm'),
      );
      return;
    }
  });

  it('a SIGBUS that is not ours still ends the process by the signal (the previous handler or the default)', () => {
    const dir = copyTiny(join(root, 'other-sigbus'));
    const script = `
      import { loadModel } from ${JSON.stringify(dist)};
      const m = await loadModel(${JSON.stringify(dir)}, { device: 'cpu' });
      process.kill(process.pid, 'SIGBUS');
      setTimeout(() => console.log('still alive'), 2000);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).not.toMatch(/still alive/);
    expect(r.stderr).not.toMatch(/gpt-oss-node: checkpoint file/);
    // the default action; under scripts/sanitize.sh ASan's handler was there first and reports it (SIGABRT)
    if (/libasan/.test(process.env.LD_PRELOAD ?? '')) expect(r.stderr).toMatch(/AddressSanitizer: BUS/);
    else expect(r.signal).toBe('SIGBUS');
  });

  it('written in place: an error, not silently different logits', () => {
    const dir = copyTiny(join(root, 'rewritten'));
    // same size, different bytes near the end (weights, not the header)
    const r = run(dir, "const fd = fs.openSync(file, 'r+'); fs.writeSync(fd, Buffer.alloc(4096, 0x55), 0, 4096, fs.fstatSync(fd).size - 8192); fs.closeSync(fd);");
    expect(r.signal, r.err).toBeNull();
    const e = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/model\.safetensors: was written after it was loaded/);
  });

  it('replaced by a new file (rename): the loaded model keeps the old one and keeps working', () => {
    const dir = copyTiny(join(root, 'renamed'));
    const r = run(dir, "fs.copyFileSync(file, file + '.new'); fs.truncateSync(file + '.new', 4096); fs.renameSync(file + '.new', file);");
    expect(r.signal, r.err).toBeNull();
    expect(JSON.parse(r.out.trim().split('\n').pop()!)).toEqual({ ok: true });
  });
});
