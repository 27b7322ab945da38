// A StepBackend whose "model" follows a script: at a sequence's first sample it picks the reply from
// what the sequence holds (the rendered prompt), then hands out the reply's tokens one per step. The
// server's Harmony plumbing (tool calls, tool results) needs known output; the random test models
// cannot give it. Block accounting is the real contract's.
import { blocksFor, type BatchItem, type StepBackend } from '../../lib/engine/backend.js';

export class ScriptedBackend implements StepBackend {
  readonly blockSize = 16;
  readonly totalBlocks: number;
  readonly prompts: number[][] = [];
  #used = 0;
  #next = 1;
  readonly #open = new Map<number, { blocks: number; history: number[]; reply: number[] | null }>();

  constructor(
    totalBlocks: number,
    private readonly choose: (history: readonly number[]) => number[],
  ) {
    this.totalBlocks = totalBlocks;
  }

  freeBlocks(): number {
    return this.totalBlocks - this.#used;
  }

  open(maxTokens: number): number | null {
    const blocks = blocksFor(maxTokens, this.blockSize);
    if (blocks > this.freeBlocks()) return null;
    this.#used += blocks;
    const seq = this.#next++;
    this.#open.set(seq, { blocks, history: [], reply: null });
    return seq;
  }

  close(seq: number): void {
    const s = this.#open.get(seq);
    if (!s) return;
    this.#used -= s.blocks;
    this.#open.delete(seq);
  }

  async step(items: BatchItem[]): Promise<Int32Array> {
    await new Promise((r) => setImmediate(r));
    return Int32Array.from(
      items.map((item) => {
        const s = this.#open.get(item.seq);
        if (!s) throw new Error(`ScriptedBackend: sequence ${item.seq} is not open`);
        s.history.push(...item.tokens);
        if (item.sample === null) return -1;
        if (s.reply === null) {
          this.prompts.push([...s.history]);
          s.reply = [...this.choose(s.history)];
        }
        const id = s.reply.shift();
        if (id === undefined) throw new Error('ScriptedBackend: the script ran out');
        return id;
      }),
    );
  }

  async dispose(): Promise<void> {
    this.#open.clear();
    this.#used = 0;
  }
}
