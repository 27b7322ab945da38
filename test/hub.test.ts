// `gpt-oss pull` / loadModel('hf:...') against a Hugging Face hub served on 127.0.0.1 (test/helpers/
// hub-server.ts) with tiny-a's real files: the hub cache layout, reuse, resume, integrity, auth, offline.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError, hubCacheDir, loadModel, pull } from '../lib/index.js';
import { fixtureDir, readF32, readJson, relL2 } from './helpers/fixtures.js';
import { HubServer } from './helpers/hub-server.js';

const REPO = 'test-org/tiny-a';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const tiny = fixtureDir('tiny-a');
const weights = readFileSync(join(tiny, 'model.safetensors'));
const sha = HubServer.sha256(weights);

let server: HubServer;
let cache: string;
const storage = (): string => join(cache, 'models--test-org--tiny-a');
const opts = () => ({ endpoint: server.endpoint, cacheDir: cache, offline: false, token: undefined as string | undefined });
const gets = (prefix: string) => server.log.filter((r) => r.method === 'GET' && r.path.startsWith(prefix));

beforeAll(async () => {
  server = HubServer.fromFiles(REPO, COMMIT, [
    { name: 'config.json', path: join(tiny, 'config.json'), lfs: false },
    { name: 'model.safetensors', path: join(tiny, 'model.safetensors'), lfs: true },
    { name: 'README.md', path: join(tiny, 'README.md'), lfs: false },
    { name: 'original/model.safetensors', path: join(tiny, 'model.safetensors'), lfs: true },
  ]);
  await server.start();
});
afterAll(() => server.stop());
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'gpt-oss-hub-'));
  server.log.length = 0;
  server.cutAfter = null;
  server.corrupt = false;
  server.requireToken = null;
});
afterEach(() => rmSync(cache, { recursive: true, force: true }));

describe('pull', () => {
  it("fills the hub cache in huggingface_hub's layout; loadModel('hf:') runs it; a second pull downloads nothing", async () => {
    const progress: [number, number][] = [];
    const r = await pull(REPO, { ...opts(), onProgress: (d, t) => progress.push([d, t]) });
    expect(r.commit).toBe(COMMIT);
    expect(r.dir).toBe(join(storage(), 'snapshots', COMMIT));
    expect(r.files.map((f) => f.name).sort()).toEqual(['config.json', 'model.safetensors']); // not README, not original/
    expect(r.bytesDownloaded).toBe(weights.length + readFileSync(join(tiny, 'config.json')).length);
    // blobs named by etag (sha256 for LFS, git blob sha1 otherwise), snapshots as relative links, refs/main
    expect(readdirSync(join(storage(), 'blobs')).sort()).toEqual(
      [sha, HubServer.gitBlobSha1(readFileSync(join(tiny, 'config.json')))].sort(),
    );
    expect(readlinkSync(join(r.dir, 'model.safetensors'))).toBe(`../../blobs/${sha}`);
    expect(readFileSync(join(storage(), 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(progress.at(-1)).toEqual([r.bytesDownloaded, r.bytesDownloaded]);
    // the bytes came from the CDN's origin, without the token-bearing header
    expect(gets('/cdn/')).toHaveLength(1);
    expect(gets('/cdn/')[0].host).toMatch(/^localhost:/);

    server.log.length = 0;
    const again = await pull(REPO, opts());
    expect(again.bytesDownloaded).toBe(0);
    expect(again.files.every((f) => f.cached)).toBe(true);
    expect(gets('/cdn/')).toHaveLength(0);

    const env = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE };
    process.env.HF_ENDPOINT = server.endpoint;
    process.env.HF_HUB_CACHE = cache;
    try {
      expect(hubCacheDir()).toBe(cache);
      const model = await loadModel(`hf:${REPO}`, { device: 'cpu' });
      expect(relL2(await model.forward(readJson<number[]>('tiny-a', 'tokens.json')), readF32('tiny-a', 'logits.f32'))).toBeLessThan(1e-3);
      await model.dispose();
    } finally {
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });

  it('resumes a transfer cut short with a Range request, and the file checks out', async () => {
    server.cutAfter = 3 << 20;
    const r = await pull(REPO, opts());
    const cdn = gets('/cdn/');
    expect(cdn).toHaveLength(2);
    expect(cdn[0].range).toBeUndefined();
    // resumed from what reached the disk: up to the 3 MiB the server sent before it dropped the
    // connection (bytes still in flight when the socket was destroyed are lost)
    const from = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(3 << 20);
    expect(readFileSync(join(r.dir, 'model.safetensors')).equals(weights)).toBe(true);
    expect(existsSync(join(storage(), 'blobs', `${sha}.incomplete`))).toBe(false);
  });

  it('resumes the .incomplete blob an earlier (killed) pull left', async () => {
    mkdirSync(join(storage(), 'blobs'), { recursive: true });
    const have = 5_000_000;
    writeFileSync(join(storage(), 'blobs', `${sha}.incomplete`), weights.subarray(0, have));
    const r = await pull(REPO, opts());
    expect(gets('/cdn/').map((g) => g.range)).toEqual([`bytes=${have}-`]);
    expect(r.bytesDownloaded).toBe(weights.length - have + readFileSync(join(tiny, 'config.json')).length);
    expect(readFileSync(join(r.dir, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('detects corrupted bytes (sha256 vs the LFS metadata), keeps nothing of them, and says so', async () => {
    server.corrupt = true;
    const err = await pull(REPO, opts()).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('INTEGRITY');
    expect(err.message).toMatch(new RegExp(`test-org/tiny-a/model\\.safetensors: sha256 .* the hub says ${sha}`));
    expect(existsSync(join(storage(), 'blobs', sha))).toBe(false);
    expect(existsSync(join(storage(), 'blobs', `${sha}.incomplete`))).toBe(false);
    expect(existsSync(join(storage(), 'snapshots', COMMIT, 'model.safetensors'))).toBe(false);
  });

  it('sends HF_TOKEN as a bearer token to the hub (not to the CDN); a missing token is a clear 401', async () => {
    server.requireToken = 'hf_secret';
    const denied = await pull(REPO, opts()).catch((e) => e);
    expect(denied).toBeInstanceOf(HubError);
    expect(denied.code).toBe('UNAUTHORIZED');
    expect(denied.status).toBe(401);
    expect(denied.message).toMatch(/gated.*HF_TOKEN/);
    server.log.length = 0;
    await pull(REPO, { ...opts(), token: 'hf_secret' });
    const hubRequests = server.log.filter((r) => !r.path.startsWith('/cdn/'));
    expect(hubRequests.length).toBeGreaterThan(0);
    for (const r of hubRequests) expect(r.authorization).toBe('Bearer hf_secret');
    for (const r of gets('/cdn/')) expect(r.authorization).toBeUndefined();
  });

  it('names a missing repository or revision (404s with the hub error codes)', async () => {
    const repo = await pull('test-org/nope', opts()).catch((e) => e);
    expect(repo).toMatchObject({ name: 'HubError', code: 'NOT_FOUND' });
    expect(repo.message).toMatch(/test-org\/nope@main: not found .*Repository not found/);
    const rev = await pull(REPO, { ...opts(), revision: 'v9' }).catch((e) => e);
    expect(rev).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(rev.message).toMatch(/test-org\/tiny-a@v9/);
  });

  it('HF_HUB_OFFLINE: answers from the cache without a request, and says when the cache lacks the repo', async () => {
    const online = await pull(REPO, opts());
    server.log.length = 0;
    const offline = await pull(REPO, { ...opts(), offline: true });
    expect(offline.dir).toBe(online.dir);
    expect(server.log).toHaveLength(0);
    const empty = mkdtempSync(join(tmpdir(), 'gpt-oss-hub-empty-'));
    try {
      const err = await pull(REPO, { ...opts(), cacheDir: empty, offline: true }).catch((e) => e);
      expect(err).toMatchObject({ code: 'OFFLINE' });
      expect(err.message).toMatch(/HF_HUB_OFFLINE/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('reports a full disk as DISK_FULL naming the path (a write that fails with ENOSPC)', async () => {
    // /dev/full: every write fails with ENOSPC, as on a full disk
    mkdirSync(join(storage(), 'blobs'), { recursive: true });
    symlinkSync('/dev/full', join(storage(), 'blobs', `${sha}.incomplete`));
    const err = await pull(REPO, opts()).catch((e) => e);
    expect(err).toMatchObject({ name: 'HubError', code: 'DISK_FULL' });
    expect(err.message).toContain(join(storage(), 'blobs', `${sha}.incomplete`));
  });

  it('gpt-oss pull prints the snapshot folder', async () => {
    const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [cli, 'pull', REPO], { env: { ...process.env, HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: cache, HF_TOKEN: '' } }, (e, stdout, stderr) =>
        e ? reject(new Error(stderr)) : resolve(stdout),
      ),
    );
    expect(out.trim()).toBe(join(storage(), 'snapshots', COMMIT));
  });
});
