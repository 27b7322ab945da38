// The Responses API's stored responses (`store`, default true; `previous_response_id`; GET and DELETE
// /v1/responses/{id}), in memory: this server's lifetime, the most recent `capacity` of them (a Map in insertion
// order, so the oldest goes first). One owner: the server that created it.
import type { ResponseInputItem } from './protocol.js';

export interface StoredResponse {
  /** The response object as the client received it last (the final event's). */
  response: Record<string, unknown>;
  /** The conversation so far as input items: the chain's inputs and outputs, this response's output last. */
  items: ResponseInputItem[];
}

export class ResponseStore {
  readonly #entries = new Map<string, StoredResponse>();
  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`storedResponses must be an integer >= 0, got ${capacity}`);
  }

  get(id: string): StoredResponse | undefined {
    return this.#entries.get(id);
  }

  put(id: string, entry: StoredResponse): void {
    if (this.capacity === 0) return;
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    while (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  delete(id: string): boolean {
    return this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }
}
