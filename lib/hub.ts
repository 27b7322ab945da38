// Downloads a Hugging Face model repository into the hub cache, in the layout huggingface_hub itself
// uses, so that files fetched by transformers, vLLM or `hf download` are reused and the other way round:
//
//   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//     models--<org>--<name>/
//       blobs/<etag>                    the file's bytes; etag = sha256 for LFS files, git blob sha1 otherwise
//       blobs/<etag>.incomplete         a transfer in progress (resumed with an HTTP Range request)
//       snapshots/<commit>/<file>       relative symlink to ../../blobs/<etag>
//       refs/<revision>                 the commit a branch or tag pointed at when last resolved
//
// The protocol (huggingface_hub file_download.py / hf_api.py): GET {endpoint}/api/models/{repo}/revision/
// {rev}?blobs=true lists the commit (`sha`) and its files with sizes and LFS sha256; HEAD {endpoint}/{repo}/
// resolve/{commit}/{file} answers with X-Repo-Commit and, for LFS files, X-Linked-Etag / X-Linked-Size
// and a redirect (Location) to a CDN, which serves the bytes (with Range). The hub's errors carry
// X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound).
//
// Environment, as huggingface_hub reads it: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN (else the file
// $HF_HOME/token), HF_HUB_OFFLINE.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export type HubErrorCode =
  | 'UNAUTHORIZED' // 401/403: no or bad token, or a gated repo not accepted
  | 'NOT_FOUND' // the repo, revision or file does not exist (or is private)
  | 'OFFLINE' // HF_HUB_OFFLINE and the files are not in the cache
  | 'INTEGRITY' // the bytes' sha256 / size do not match the hub's metadata
  | 'DISK_FULL' // not enough free space (checked before, or ENOSPC while writing)
  | 'NETWORK' // the server could not be reached or the transfer kept failing
  | 'HTTP'; // any other status

/** A download from the Hugging Face hub failed; `code` says why, the message names the repo and file. */
export class HubError extends Error {
  readonly code: HubErrorCode;
  readonly status?: number;
  constructor(code: HubErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'HubError';
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}

export interface PullOptions {
  /** Branch, tag or commit (default 'main'). */
  revision?: string;
  /** Which files of the repository to fetch (default: everything at its root that a gpt-oss load reads). */
  include?: (file: string) => boolean;
  /** Files fetched at once (default 4). */
  concurrency?: number;
  /** Bytes done of the total, over every file of this pull (files already in the cache count as done). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Defaults from the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE). */
  endpoint?: string;
  token?: string;
  cacheDir?: string;
  offline?: boolean;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** snapshots/<commit>: a folder loadModel reads. */
  dir: string;
  files: { name: string; size: number; cached: boolean }[];
  bytesDownloaded: number;
}

const truthy = (v: string | undefined): boolean => !!v && ['1', 'on', 'yes', 'true'].includes(v.toLowerCase());

/** The hub cache folder (huggingface_hub's HF_HUB_CACHE rule). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

function defaultToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.HF_TOKEN) return env.HF_TOKEN;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH ?? join(home, 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** models--<org>--<name>, the folder of one model repository in the cache. */
export function repoFolderName(repo: string): string {
  return `models--${repo.replace(/\//g, '--')}`;
}

/** The files a gpt-oss load reads: config, weights (+ index), tokenizer and chat template, at the root. */
export function defaultInclude(file: string): boolean {
  return !file.includes('/') && /\.(json|safetensors|jinja)$/.test(file);
}

/** Parses `hf:org/name[@revision]`; null for anything else. */
export function parseHfUri(uri: string): { repo: string; revision: string } | null {
  const m = /^hf:([^@]+?)(?:@(.+))?$/.exec(uri);
  if (!m) return null;
  return { repo: m[1], revision: m[2] ?? 'main' };
}

// ETag header -> the blob name: without W/ and quotes (huggingface_hub _normalize_etag).
const normalizeEtag = (etag: string | null): string | null => (etag ? etag.replace(/^W\//, '').replace(/"/g, '') : null);

interface RemoteFile {
  name: string;
  size: number;
  /** sha256 for LFS files, git blob sha1 otherwise; the blob's name in the cache. */
  etag: string;
  lfs: boolean;
}

class Hub {
  constructor(
    readonly repo: string,
    readonly endpoint: string,
    readonly token: string | undefined,
    readonly signal: AbortSignal | undefined,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { 'user-agent': 'gpt-oss-node', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async request(url: string, init: RequestInit, what: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: this.signal });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new HubError('NETWORK', `${what}: cannot reach ${new URL(url).origin} (${(e as Error).cause ?? (e as Error).message})`);
    }
    if (res.ok || (res.status >= 300 && res.status < 400)) return res;
    const code = res.headers.get('x-error-code');
    const detail = res.headers.get('x-error-message');
    await res.body?.cancel();
    const tail = detail ? ` (${detail})` : '';
    if (code === 'GatedRepo')
      throw new HubError('UNAUTHORIZED', `${what}: ${this.repo} is gated: accept its license on the hub and set HF_TOKEN${tail}`, res.status);
    if (code === 'RepoNotFound' || code === 'RevisionNotFound' || code === 'EntryNotFound' || res.status === 404) {
      const hint = this.token ? '' : ' (if it is private, set HF_TOKEN)';
      throw new HubError('NOT_FOUND', `${what}: not found on ${this.endpoint}${hint}${tail}`, res.status);
    }
    if (res.status === 401 || res.status === 403)
      throw new HubError('UNAUTHORIZED', `${what}: ${res.status} ${this.token ? 'HF_TOKEN was refused' : 'authentication required: set HF_TOKEN'}${tail}`, res.status);
    throw new HubError('HTTP', `${what}: HTTP ${res.status} from ${new URL(url).origin}${tail}`, res.status);
  }

  /** The commit a revision names and its files (sizes, LFS sha256). */
  async revision(revision: string): Promise<{ commit: string; files: { name: string; size?: number; sha256?: string; blobId?: string }[] }> {
    const url = `${this.endpoint}/api/models/${this.repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const res = await this.request(url, { headers: this.headers() }, `${this.repo}@${revision}`);
    const body = (await res.json()) as { sha?: string; siblings?: { rfilename: string; size?: number; blobId?: string; lfs?: { sha256?: string; size?: number } }[] };
    if (!body.sha || !Array.isArray(body.siblings))
      throw new HubError('HTTP', `${this.repo}@${revision}: the hub's answer has no commit sha or file list`);
    return {
      commit: body.sha,
      files: body.siblings.map((s) => ({ name: s.rfilename, size: s.lfs?.size ?? s.size, sha256: s.lfs?.sha256, blobId: s.blobId })),
    };
  }

  fileUrl(commit: string, file: string): string {
    return `${this.endpoint}/${this.repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** HEAD resolve/<commit>/<file> without following the CDN redirect: etag, size, where the bytes are. */
  async metadata(commit: string, file: string): Promise<RemoteFile & { location: string }> {
    const url = this.fileUrl(commit, file);
    const res = await this.request(url, { method: 'HEAD', redirect: 'manual', headers: this.headers({ 'accept-encoding': 'identity' }) }, `${this.repo}/${file}`);
    const linked = normalizeEtag(res.headers.get('x-linked-etag'));
    const etag = linked ?? normalizeEtag(res.headers.get('etag'));
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (!etag || !Number.isFinite(size))
      throw new HubError('HTTP', `${this.repo}/${file}: the hub sent no ETag or size for the file`);
    const location = res.headers.get('location');
    return { name: file, etag, size, lfs: linked !== null, location: location ? new URL(location, url).href : url };
  }
}

/** git's blob id of some bytes: sha1("blob <size>\0" + bytes), the ETag of a non-LFS file. */
function gitBlobHasher(size: number) {
  const h = createHash('sha1');
  h.update(`blob ${size}\0`);
  return h;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Feeds the first `bytes` of a file to a hash (an .incomplete being resumed). */
async function hashPrefix(path: string, bytes: number, hash: ReturnType<typeof createHash>): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
}

const diskFull = (path: string, need: number, free?: number): HubError =>
  new HubError('DISK_FULL', `no space left on the device of ${path}: ${need} more bytes are needed` + (free !== undefined ? `, ${free} free` : ''));

/**
 * Downloads one file into blobs/<etag> (resuming blobs/<etag>.incomplete with a Range request, retrying
 * a broken transfer from where it stopped), checks its size and hash, then renames it into place.
 */
async function downloadBlob(hub: Hub, meta: RemoteFile & { location: string }, blob: string, progress: (bytes: number) => void): Promise<number> {
  const partial = `${blob}.incomplete`;
  const what = `${hub.repo}/${meta.name}`;
  let downloaded = 0;
  for (let attempt = 0; ; attempt++) {
    let have = await fileSize(partial);
    if (have > meta.size) {
      await rm(partial, { force: true });
      have = 0;
    }
    const hash = meta.lfs ? createHash('sha256') : gitBlobHasher(meta.size);
    await hashPrefix(partial, have, hash);
    if (attempt === 0) progress(have);
    let written = have;
    try {
      if (have < meta.size) {
        // The CDN URL carries its own signature: no Authorization header off the hub's origin.
        const sameOrigin = new URL(meta.location).origin === new URL(hub.endpoint).origin;
        const headers: Record<string, string> = sameOrigin ? hub.headers() : { 'user-agent': 'gpt-oss-node' };
        if (have > 0) headers.range = `bytes=${have}-`;
        const res = await hub.request(meta.location, { headers }, what);
        if (have > 0 && res.status !== 206) {
          // the server ignored the Range: start over
          await res.body?.cancel();
          await rm(partial, { force: true });
          continue;
        }
        if (!res.body) throw new HubError('NETWORK', `${what}: empty response`);
        const out = createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' });
        let writeError: Error | undefined;
        const closed = new Promise<void>((resolve, reject) => {
          out.on('close', () => (writeError ? reject(writeError) : resolve()));
          out.on('error', (e) => (writeError = e));
        });
        closed.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            if (writeError) throw writeError;
            if (written + chunk.length > meta.size) throw new HubError('INTEGRITY', `${what}: the server sent more than the ${meta.size} bytes announced`);
            hash.update(chunk);
            written += chunk.length;
            downloaded += chunk.length;
            progress(chunk.length);
            if (!out.write(chunk)) await Promise.race([once(out, 'drain'), closed]);
          }
        } finally {
          out.end();
          await closed;
        }
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOSPC') throw diskFull(partial, meta.size - have);
      if (err instanceof HubError && err.code !== 'NETWORK') throw err;
      if (err.name === 'AbortError') throw err;
      // a broken transfer: resume from what reached the disk, a few times
      if (attempt >= 4) throw new HubError('NETWORK', `${what}: the transfer failed ${attempt + 1} times (${err.message})`);
      continue;
    }
    if (written < meta.size) {
      if (attempt >= 4) throw new HubError('NETWORK', `${what}: the transfer stopped at ${written} of ${meta.size} bytes, ${attempt + 1} times`);
      continue;
    }
    const digest = hash.digest('hex');
    if (digest !== meta.etag) {
      await rm(partial, { force: true });
      throw new HubError('INTEGRITY', `${what}: ${meta.lfs ? 'sha256' : 'git blob sha1'} of the downloaded bytes is ${digest}, the hub says ${meta.etag}; the file was discarded`);
    }
    await rename(partial, blob);
    return downloaded;
  }
}

/** Makes snapshots/<commit>/<file> a relative link to the blob (huggingface_hub's layout). */
async function linkSnapshot(pointer: string, blob: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  try {
    if ((await readlink(pointer)) === target) return;
  } catch {
    // absent
  }
  await rm(pointer, { force: true });
  await symlink(target, pointer);
}

const COMMIT = /^[0-9a-f]{40}$/;

/** The snapshot folder of a repo already in the cache, for HF_HUB_OFFLINE. */
async function cachedSnapshot(storage: string, repo: string, revision: string, include: (f: string) => boolean): Promise<PullResult> {
  let commit = revision;
  if (!COMMIT.test(revision)) {
    try {
      commit = (await readFile(join(storage, 'refs', revision), 'utf8')).trim();
    } catch {
      throw new HubError('OFFLINE', `${repo}@${revision}: HF_HUB_OFFLINE is set and the cache (${storage}) has no such revision: pull it while online`);
    }
  }
  const dir = join(storage, 'snapshots', commit);
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter(include);
  } catch {
    // no snapshot
  }
  if (!names.includes('config.json'))
    throw new HubError('OFFLINE', `${repo}@${revision}: HF_HUB_OFFLINE is set and ${dir} has no config.json: pull it while online`);
  const files = await Promise.all(names.map(async (name) => ({ name, size: await fileSize(join(dir, name)), cached: true })));
  return { repo, revision, commit, dir, files, bytesDownloaded: 0 };
}

/**
 * Downloads `repo` at `revision` into the Hugging Face hub cache (files already there are reused) and
 * returns its snapshot folder. Throws HubError.
 */
export async function pull(repo: string, options: PullOptions = {}): Promise<PullResult> {
  if (!REPO_ID.test(repo)) throw new HubError('NOT_FOUND', `'${repo}' is not a Hugging Face repo id (expected org/name)`);
  const revision = options.revision ?? 'main';
  const include = options.include ?? defaultInclude;
  const cache = options.cacheDir ?? hubCacheDir();
  const storage = join(cache, repoFolderName(repo));
  if (options.offline ?? truthy(process.env.HF_HUB_OFFLINE)) return cachedSnapshot(storage, repo, revision, include);

  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const hub = new Hub(repo, endpoint, options.token ?? defaultToken(), options.signal);
  const listing = await hub.revision(revision);
  const commit = listing.commit;
  const wanted = listing.files.filter((f) => include(f.name));
  if (!wanted.some((f) => f.name === 'config.json')) throw new HubError('NOT_FOUND', `${repo}@${revision}: no config.json at the repository's root`);

  // Metadata for every file first (a missing or gated file fails before any byte is written).
  const metas = await Promise.all(wanted.map((f) => hub.metadata(commit, f.name)));
  const total = metas.reduce((s, m) => s + m.size, 0);
  const blobsDir = join(storage, 'blobs');
  await mkdir(blobsDir, { recursive: true });
  const present = await Promise.all(metas.map(async (m) => existsSync(join(blobsDir, m.etag)) && (await fileSize(join(blobsDir, m.etag))) === m.size));
  let need = 0;
  for (let i = 0; i < metas.length; i++) if (!present[i]) need += metas[i].size - (await fileSize(join(blobsDir, `${metas[i].etag}.incomplete`)));
  const fs = await statfs(blobsDir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (need > free) throw diskFull(blobsDir, need, free);

  let done = 0;
  const report = (bytes: number): void => {
    done += bytes;
    options.onProgress?.(done, total);
  };
  report(0);
  let bytesDownloaded = 0;
  const queue = metas.map((m, i) => ({ m, cached: present[i] }));
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, queue.length)) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const blob = join(blobsDir, job.m.etag);
      if (job.cached) report(job.m.size);
      else {
        const n = await downloadBlob(hub, job.m, blob, report); // (not `+= await`: that reads the sum before the await)
        bytesDownloaded += n;
      }
      await linkSnapshot(join(storage, 'snapshots', commit, job.m.name), blob);
    }
  });
  await Promise.all(workers);
  if (revision !== commit) {
    await mkdir(dirname(join(storage, 'refs', revision)), { recursive: true });
    await writeFile(join(storage, 'refs', revision), commit);
  }
  return {
    repo,
    revision,
    commit,
    dir: join(storage, 'snapshots', commit),
    files: metas.map((m, i) => ({ name: m.name, size: m.size, cached: present[i] })),
    bytesDownloaded,
  };
}

/**
 * The snapshot folder for `hf:org/name[@revision]`: pulled (or checked against the hub) when online,
 * from the cache alone with HF_HUB_OFFLINE or when the hub cannot be reached (as huggingface_hub does).
 */
export async function resolveHfModel(uri: string, options: Omit<PullOptions, 'revision'> = {}): Promise<string> {
  const parsed = parseHfUri(uri);
  if (!parsed) throw new HubError('NOT_FOUND', `'${uri}' is not an hf: model (expected hf:org/name or hf:org/name@revision)`);
  try {
    return (await pull(parsed.repo, { ...options, revision: parsed.revision })).dir;
  } catch (e) {
    if (!(e instanceof HubError && e.code === 'NETWORK')) throw e;
    try {
      return (await pull(parsed.repo, { ...options, revision: parsed.revision, offline: true })).dir;
    } catch {
      throw e;
    }
  }
}
