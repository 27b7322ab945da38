// Soak: a few hundred concurrent requests through the openai client, about a third cancelled at
// random moments (before admission, during prefill, mid-stream). Afterwards every sequence is closed,
// the KV pool is back to full, and RSS is flat: the second of two equal rounds may not grow it by
// more than 32 MiB over the first (a leak of a sequence's KV or logits per request would be
// ~0.8 MiB x 120 requests, well above that). Bounded: 300 requests of <= 6 tokens, 127.0.0.1 only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { createSyntheticModel, type GptOssModel, type Engine } from '../../lib/index.js';
import { createServer, type OpenAIServer } from '../../lib/server/app.js';
import { FULL_VOCAB_TINY } from '../helpers/checkpoint.js';
import { rng } from '../helpers/rng.js';

describe('soak (openai client, 127.0.0.1)', () => {
  let model: GptOssModel;
  let engine: Engine;
  let server: OpenAIServer;
  let client: OpenAI;

  beforeAll(async () => {
    model = await createSyntheticModel(FULL_VOCAB_TINY, { device: 'cpu' });
    engine = model.createEngine({ maxSequences: 8, maxBatchTokens: 128, maxContext: 512, maxQueue: 1000 });
    server = createServer(engine, { modelName: 'tiny' });
    client = new OpenAI({ baseURL: `${(await server.listen(0)).url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.close(1000);
    await model?.dispose();
  });

  async function round(n: number, seed: number): Promise<{ ok: number; cancelled: number }> {
    const r = rng(seed, 'soak');
    const u = (): number => r.nextFloat();
    let ok = 0;
    let cancelled = 0;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const controller = new AbortController();
        const cancel = u() < 0.35;
        if (cancel) setTimeout(() => controller.abort(), Math.floor(u() * 300));
        const words = 1 + Math.floor(u() * 40);
        const body = { model: 'tiny', messages: [{ role: 'user' as const, content: `request ${i}: ${'lorem ipsum '.repeat(words)}` }], max_tokens: 1 + Math.floor(u() * 6), temperature: 1, seed: i };
        try {
          if (u() < 0.5) {
            const stream = await client.chat.completions.create({ ...body, stream: true }, { signal: controller.signal });
            for await (const _chunk of stream) {
              /* drain */
            }
          } else if (u() < 0.5) await client.chat.completions.create(body, { signal: controller.signal });
          else await client.responses.create({ model: 'tiny', input: body.messages[0]!.content, max_output_tokens: body.max_tokens, stream: u() < 0.5 }, { signal: controller.signal });
          ok++;
        } catch (e) {
          if (!(e instanceof OpenAI.APIUserAbortError) && !controller.signal.aborted) throw e;
          cancelled++;
        }
      }),
    );
    // the server notices the last disconnects between steps
    const t0 = Date.now();
    while ((engine.stats().running > 0 || engine.stats().waiting > 0) && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 20));
    return { ok, cancelled };
  }

  it('300 concurrent requests with random cancellations: the KV pool comes back, RSS stays flat', async () => {
    const warm = await round(60, 1); // warm-up: allocator pools, JIT, sockets
    const a = await round(120, 2);
    const rssA = process.memoryUsage().rss;
    const b = await round(120, 3);
    const rssB = process.memoryUsage().rss;
    for (const x of [a, b]) {
      expect(x.ok + x.cancelled).toBe(120);
      expect(x.cancelled).toBeGreaterThan(10);
      expect(x.ok).toBeGreaterThan(30);
    }
    const s = engine.stats();
    expect(s).toMatchObject({ running: 0, waiting: 0 });
    expect(s.freeBlocks).toBe(s.totalBlocks);
    expect((engine.backend as unknown as { openSequences: number }).openSequences).toBe(0);
    // requests cancelled before the server parsed them never reached the engine
    expect(s.finished).toBeGreaterThanOrEqual(warm.ok + a.ok + b.ok);
    expect(s.finished).toBeLessThanOrEqual(300);
    expect(rssB - rssA).toBeLessThan(32 * 2 ** 20);
  }, 240_000);
});
