// A StepBackend whose "model" follows a script: at a sequence's first sample it picks the reply from
// what the sequence holds (the rendered prompt), then hands out the reply's tokens one per step. The
// server's Harmony plumbing (tool calls, tool results) needs known output; the random test models
// cannot give it. Block accounting is the real contract's.
import { blocksFor, type BatchItem, type StepBackend, type StepLogprobs } from '../../lib/engine/backend.js';
import type { TokenLogprobs } from '../../lib/session.js';
import { renderMessageTokens, type Message } from '../../lib/harmony/index.js';
import { tokenizer } from '../../lib/tokenizer.js';

/**
 * What the model writes after `<|start|>assistant`: a rendered message without that prefix, in the renderer's
 * tokenisation (the one the model was trained on), its last token replaced by `stop` when given.
 */
export function assistantReply(m: Message, stop?: number): number[] {
  const t = renderMessageTokens(m).slice(1 + tokenizer.encode('assistant').length);
  if (stop !== undefined) t[t.length - 1] = stop;
  return t;
}

export class ScriptedBackend implements StepBackend {
  readonly blockSize = 16;
  readonly totalBlocks: number;
  readonly prompts: number[][] = [];
  /** Draws that came with a mask (BatchItem.bias.allow). */
  maskedDraws = 0;
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

  /**
   * step(), with made-up log-probabilities that depend on the id alone (scriptedLogprobs), so a test can tell
   * which token's values a client was given.
   */
  async stepLogprobs(items: BatchItem[]): Promise<StepLogprobs> {
    const ids = await this.step(items.map(({ logprobs: _l, ...item }) => item));
    return { ids, logprobs: items.map((item, i) => (item.logprobs === undefined || item.sample === null ? null : scriptedLogprobs(ids[i]!, item.logprobs))) };
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
        // a draw held to a mask (structured output): the scripted token must be one it allows
        const allow = item.bias?.allow;
        if (allow) {
          this.maskedDraws++;
          if (((allow[id >>> 5]! >>> (id & 31)) & 1) === 0) throw new Error(`ScriptedBackend: the mask forbids the scripted token ${id}`);
        }
        return id;
      }),
    );
  }

  async dispose(): Promise<void> {
    this.#open.clear();
    this.#used = 0;
  }
}

/** The scripted "model"'s log-probabilities of a drawn id with k alternatives: -(id mod 97) / 10, then ids + j, each 1 lower. */
export function scriptedLogprobs(id: number, k: number): TokenLogprobs {
  const logprob = -(id % 97) / 10;
  return { logprob, top: Array.from({ length: k }, (_, j) => ({ id: id + j, logprob: logprob - j })) };
}
