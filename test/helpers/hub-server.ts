// A Hugging Face hub on 127.0.0.1 for the pull tests: the endpoints and headers lib/hub.ts reads
// (the revision API, HEAD/GET resolve with X-Repo-Commit / X-Linked-Etag / X-Linked-Size, LFS files
// redirected to a "CDN" on another origin that honours Range), serving real files, with switches for
// the failures a download meets: a transfer cut short, corrupted bytes, a token required.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  name: string;
  bytes: Buffer;
  lfs: boolean;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  host: string;
}

export interface HubServerOptions {
  repo: string;
  commit: string;
  files: HubFile[];
  /** Revision names (branches, tags) that resolve to `commit`. */
  refs?: string[];
}

export class HubServer {
  readonly log: LoggedRequest[] = [];
  /** Cut the next CDN GET of a file after this many bytes (the socket is destroyed). */
  cutAfter: number | null = null;
  /** Flip one byte of every LFS body served. */
  corrupt = false;
  /** Answer 401 unless Authorization is `Bearer <token>`. */
  requireToken: string | null = null;
  #server: Server;
  #port = 0;

  constructor(readonly options: HubServerOptions) {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The hub's origin (HF_ENDPOINT). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The CDN's origin: the same server under another host name, so it is another origin. */
  get cdn(): string {
    return `http://localhost:${this.#port}`;
  }

  static sha256(b: Buffer): string {
    return createHash('sha256').update(b).digest('hex');
  }

  static gitBlobSha1(b: Buffer): string {
    return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
  }

  static fromFiles(repo: string, commit: string, files: { name: string; path: string; lfs: boolean }[]): HubServer {
    return new HubServer({ repo, commit, refs: ['main'], files: files.map((f) => ({ name: f.name, lfs: f.lfs, bytes: readFileSync(f.path) })) });
  }

  #error(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: message }));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const path = decodeURIComponent(url.pathname);
    this.log.push({
      method: req.method ?? 'GET',
      path,
      host: req.headers.host ?? '',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const { repo, commit, files, refs = [] } = this.options;
    const isCdn = path.startsWith('/cdn/');
    if (!isCdn && this.requireToken && req.headers.authorization !== `Bearer ${this.requireToken}`) {
      this.#error(res, 401, req.headers.authorization ? 'Unauthorized' : 'GatedRepo', 'Access to this model is restricted.');
      return;
    }
    const api = new RegExp(`^/api/models/([^/]+/[^/]+)/revision/(.+)$`).exec(path);
    if (api) {
      if (api[1] !== repo) return this.#error(res, 401, 'RepoNotFound', 'Repository not found');
      if (api[2] !== commit && !refs.includes(api[2])) return this.#error(res, 404, 'RevisionNotFound', 'Invalid rev id');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: repo,
          sha: commit,
          siblings: files.map((f) => ({
            rfilename: f.name,
            size: f.bytes.length,
            blobId: HubServer.gitBlobSha1(f.bytes),
            ...(f.lfs ? { lfs: { sha256: HubServer.sha256(f.bytes), size: f.bytes.length } } : {}),
          })),
        }),
      );
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve) {
      if (resolve[1] !== repo) return this.#error(res, 401, 'RepoNotFound', 'Repository not found');
      if (resolve[2] !== commit && !refs.includes(resolve[2])) return this.#error(res, 404, 'RevisionNotFound', 'Invalid rev id');
      const f = files.find((x) => x.name === resolve[3]);
      if (!f) return this.#error(res, 404, 'EntryNotFound', `${resolve[3]} does not exist`);
      if (f.lfs) {
        const sha = HubServer.sha256(f.bytes);
        res.writeHead(302, {
          location: `${this.cdn}/cdn/${sha}?signature=abc`,
          'x-repo-commit': commit,
          'x-linked-etag': `"${sha}"`,
          'x-linked-size': String(f.bytes.length),
          etag: `W/"${HubServer.gitBlobSha1(Buffer.from('pointer'))}"`,
        });
        res.end();
        return;
      }
      this.#send(req, res, f, { 'x-repo-commit': commit, etag: `"${HubServer.gitBlobSha1(f.bytes)}"` });
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const f = files.find((x) => x.lfs && HubServer.sha256(x.bytes) === cdn[1]);
      if (!f) return this.#error(res, 404, 'EntryNotFound', 'no such object');
      this.#send(req, res, f, { etag: `"${cdn[1]}"` });
      return;
    }
    this.#error(res, 404, 'NotFound', `no route ${path}`);
  }

  #send(req: IncomingMessage, res: ServerResponse, f: HubFile, headers: Record<string, string>): void {
    let body = f.bytes;
    if (f.lfs && this.corrupt) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0x40;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) start = Number(range[1]);
    const part = body.subarray(start);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'content-length': String(part.length),
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      'accept-ranges': 'bytes',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (this.cutAfter !== null && part.length > this.cutAfter) {
      const cut = this.cutAfter;
      this.cutAfter = null;
      res.write(part.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(part);
  }
}
