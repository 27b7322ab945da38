// loadModel reads config.json, index.json and the safetensors/GGUF headers with asynchronous file
// calls (issue 16, finding 2: "never do blocking reads on the main thread"), keeping every named
// error. Here node:fs's synchronous calls throw while loadModel runs: a load that used one fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';

// every synchronous file call of node:fs, counted, and refused while `refuse` is set
const refused = { on: false, calls: [] as string[] };
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const guard = <F extends (...a: never[]) => unknown>(name: string, f: F): F =>
    ((...a: Parameters<F>) => {
      if (refused.on) {
        refused.calls.push(`${name}(${String(a[0])})`);
        throw new Error(`node:fs ${name} called on the event loop during loadModel`);
      }
      return f(...a);
    }) as F;
  const names = ['openSync', 'readSync', 'fstatSync', 'statSync', 'readdirSync', 'readFileSync', 'closeSync', 'lstatSync'] as const;
  const patched: Record<string, unknown> = { ...fs };
  for (const n of names) patched[n] = guard(n, fs[n] as never);
  return { ...patched, default: patched };
});

const { loadModel, CheckpointError, ConfigError } = await import('../../lib/index.js');
const { copyTiny } = await import('../helpers/damage.js');
const { fixtureDir } = await import('../helpers/fixtures.js');

const root = mkdtempSync(join(tmpdir(), 'gpt-oss-loader-async-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function loadRefusingSync(dir: string): Promise<unknown> {
  refused.on = true;
  refused.calls = [];
  try {
    return await loadModel(dir, { device: 'cpu' });
  } finally {
    refused.on = false;
  }
}

describe('loadModel makes no synchronous file call', () => {
  it('tiny-a (config.json + model.safetensors) loads and runs', async () => {
    const m = (await loadRefusingSync(fixtureDir('tiny-a'))) as Awaited<ReturnType<typeof loadModel>>;
    expect(refused.calls).toEqual([]);
    expect((await m.forward([1, 2])).length).toBe(2 * m.config.vocabSize);
    await m.dispose();
  });

  it('named errors stay: missing, FIFO, damaged header, bad index.json, bad config', async () => {
    const cases: [string, (d: string) => void, unknown, RegExp][] = [
      ['no model.safetensors', (d) => rmSync(join(d, 'model.safetensors')), CheckpointError, /has no model\.safetensors/],
      ['config.json as a FIFO', (d) => { rmSync(join(d, 'config.json')); execFileSync('mkfifo', [join(d, 'config.json')]); }, ConfigError, /config\.json: is a FIFO \(named pipe\), not a regular file/],
      ['model.safetensors as a FIFO', (d) => { rmSync(join(d, 'model.safetensors')); execFileSync('mkfifo', [join(d, 'model.safetensors')]); }, CheckpointError, /model\.safetensors: is a FIFO/],
      ['model.safetensors as a directory', (d) => { rmSync(join(d, 'model.safetensors')); mkdirSync(join(d, 'model.safetensors')); }, CheckpointError, /model\.safetensors: is a directory, not a regular file/],
      ['index.json of null', (d) => execFileSync('sh', ['-c', `echo null > '${join(d, 'model.safetensors.index.json')}'`]), CheckpointError, /must be a JSON object with a 'weight_map', got null/],
      ['config.json over 1 MB', (d) => execFileSync('truncate', ['-s', '2M', join(d, 'config.json')]), ConfigError, /config\.json: is 2097152 bytes, more than the/],
    ];
    for (const [name, damage, cls, message] of cases) {
      const dir = copyTiny(join(root, name.replace(/\W+/g, '-')));
      damage(dir);
      const e = await loadRefusingSync(dir).then(() => null, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(cls as never);
      expect((e as Error).message, name).toMatch(message);
      expect(refused.calls, name).toEqual([]);
    }
  });
});

describe('a special file given as the model path', () => {
  // Before: the GGUF sniffing of a path that is not a directory opened it without O_NONBLOCK, so a
  // FIFO held the event loop forever. A child process, so that a hang is seen as one.
  const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
  const tryLoad = (path: string) => {
    const script = `
      import { loadModel } from ${JSON.stringify(dist)};
      try { await loadModel(${JSON.stringify(path)}, { device: 'cpu' }); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ name: e.constructor.name, file: e.file, message: e.message })); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    return { signal: r.signal, out: r.stdout.trim() };
  };
  it('a FIFO path, and a directory whose only .gguf is a FIFO: CheckpointError naming it, at once', () => {
    const fifo = join(root, 'model.gguf');
    execFileSync('mkfifo', [fifo]);
    const r1 = tryLoad(fifo);
    expect(r1.signal).toBeNull();
    expect(JSON.parse(r1.out)).toEqual({ name: 'CheckpointError', file: fifo, message: `${fifo}: is a FIFO (named pipe), not a regular file` });
    const dir = join(root, 'gguf-dir');
    mkdirSync(dir);
    execFileSync('mkfifo', [join(dir, 'x.gguf')]);
    const r2 = tryLoad(dir);
    expect(r2.signal).toBeNull();
    expect(JSON.parse(r2.out)).toMatchObject({ name: 'CheckpointError', file: join(dir, 'x.gguf') });
  });
});
