// One worker thread that answers requests by id (the tokenizer's and the token masks'): started on first use,
// referenced only while a request is pending, so that an idle one never holds the process.
import { existsSync } from 'node:fs';
import { Worker, type TransferListItem } from 'node:worker_threads';

/** A reply: the request's id, and an error message or the worker's payload. */
export interface WorkerReply {
  id: number;
  error?: string;
}

export class WorkerClient<R extends WorkerReply> {
  #worker: Worker | undefined;
  #broken = false;
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (reply: R) => void; reject: (e: Error) => void }>();

  /**
   * `file`: the compiled worker's name beside the importing module (`here`, an import.meta.url), else under dist/
   * at `fallback` (from the TypeScript sources: tests). `label` starts its errors. With `stayBroken`, a worker that
   * failed to start or died is not started again (start() returns null from then on).
   */
  constructor(
    readonly here: string,
    readonly file: string,
    readonly fallback: string,
    readonly label: string,
    readonly stayBroken: boolean,
  ) {}

  /** The worker, started if it is not (null: it cannot start, or died with stayBroken). */
  start(): Worker | null {
    if (this.#worker) return this.#worker;
    if (this.#broken) return null;
    const beside = new URL(this.file, this.here);
    let w: Worker;
    try {
      w = new Worker(existsSync(beside) ? beside : new URL(this.fallback, this.here));
    } catch (e) {
      if (!this.stayBroken) throw e;
      this.#broken = true;
      return null;
    }
    const failAll = (e: Error): void => {
      if (this.#worker === w) this.#worker = undefined;
      if (this.stayBroken) this.#broken = true;
      for (const { reject } of this.#waiting.values()) reject(e);
      this.#waiting.clear();
    };
    w.on('message', (m: R) => {
      const request = this.#waiting.get(m.id);
      if (!request) return;
      this.#waiting.delete(m.id);
      if (this.#waiting.size === 0) w.unref();
      if (m.error !== undefined) request.reject(new Error(`${this.label}: ${m.error}`));
      else request.resolve(m);
    });
    w.on('error', (e) => failAll(e instanceof Error ? e : new Error(String(e))));
    w.on('exit', (code) => failAll(new Error(`${this.label}: the worker exited (code ${code})`)));
    // after the listeners: a 'message' listener added to a worker refs it again, and an idle worker must not keep the
    // process alive (one only warmed, never asked, would hold it forever)
    w.unref();
    return (this.#worker = w);
  }

  /** A request; its reply (an Error for the worker's error message, or when the worker fails). */
  request(w: Worker, message: Record<string, unknown>, transfer?: readonly TransferListItem[]): Promise<R> {
    const id = this.#next++;
    return new Promise<R>((resolve, reject) => {
      if (this.#waiting.size === 0) w.ref(); // a pending request keeps the process alive
      this.#waiting.set(id, { resolve, reject });
      w.postMessage({ ...message, id }, transfer);
    });
  }
}
