// The engine's own cost a token on the host: the scheduler, the output side (Harmony parse, stop checks, events)
// and, with --http, the OpenAI server's SSE, with a StepBackend that draws instantly (a scripted final-channel reply:
// no forward pass). What it measures is the rate the host side could sustain at N streams, the ceiling it puts on
// the GPU's (issue 11: >= 10,000 tok/s at 64 streams; with pipelined decode the host side runs while the next step
// computes, so it caps the aggregate only when it is slower than the device's step).
//   npx tsc -p tsconfig.json && node bench/engine-host.mjs [--streams 1,8,64,128] [--tokens 256] [--http] [--rounds 3]
import { createSyntheticModel, SYNTHETIC_PRESETS, tokenizer } from '../dist/index.js';
import { renderMessageTokens } from '../dist/harmony/index.js';
import { createServer } from '../dist/server/app.js';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const streamsList = arg('--streams', '1,8,64,128').split(',').map(Number);
const tokens = Number(arg('--tokens', '256'));
const rounds = Number(arg('--rounds', '3'));
const http = process.argv.includes('--http');

// the reply: an analysis message then a final one, long enough for `tokens` (words of ordinary text)
const S = { start: 200006, end: 200007, ret: 200002 };
const words = Array.from({ length: tokens }, (_, i) => ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog'][i % 9]).join(' ');
const body = (m) => renderMessageTokens(m).slice(1 + tokenizer.encode('assistant').length);
const think = body({ role: 'assistant', channel: 'analysis', content: 'Thinking about it.' });
const answer = body({ role: 'assistant', channel: 'final', content: words });
const reply = [...think, S.start, ...tokenizer.encode('assistant'), ...answer];

class InstantBackend {
  blockSize = 16;
  totalBlocks = 1 << 16;
  pipelinesDecode = false;
  #used = 0;
  #next = 1;
  #open = new Map();
  freeBlocks() { return this.totalBlocks - this.#used; }
  open(maxTokens) {
    const blocks = Math.ceil(maxTokens / this.blockSize);
    if (blocks > this.freeBlocks()) return null;
    this.#used += blocks;
    const seq = this.#next++;
    this.#open.set(seq, { blocks, at: 0 });
    return seq;
  }
  close(seq) { const s = this.#open.get(seq); if (s) { this.#used -= s.blocks; this.#open.delete(seq); } }
  async step(items) {
    await Promise.resolve();
    return Int32Array.from(items.map((it) => {
      if (it.sample === null) return -1;
      const s = this.#open.get(it.seq);
      return reply[Math.min(s.at++, reply.length - 1)];
    }));
  }
  async stepLogprobs(items) { return { ids: await this.step(items), logprobs: items.map(() => null) }; }
  async dispose() {}
}

const shape = { ...SYNTHETIC_PRESETS.tiny, vocabSize: 201088, hiddenSize: 64, intermediateSize: 64, numLayers: 1, numExperts: 4, expertsPerToken: 2, numHeads: 2, numKvHeads: 1, headDim: 32, slidingWindow: 16 };
const model = await createSyntheticModel(shape, { device: 'cpu', seed: 7 });
const prompt = [S.start, ...tokenizer.encode('user'), 200008, ...tokenizer.encode('Hi'), S.end, S.start, ...tokenizer.encode('assistant')];
const rows = [];
for (const n of streamsList) {
  for (let r = 0; r < rounds; r++) {
    const engine = model.createEngine({ backend: new InstantBackend(), maxSequences: n, maxContext: 4096, maxQueue: 4096 });
    let c0 = process.cpuUsage();
    let t0 = performance.now();
    let out = 0;
    let server;
    if (!http) {
      const results = await Promise.all(Array.from({ length: n }, (_, i) => engine.generate(prompt, { parse: true, maxTokens: reply.length, temperature: 1, seed: i }).result));
      out = results.reduce((a, x) => a + x.tokens.length, 0);
    } else {
      server = createServer(engine, { modelName: 'host' });
      const { url } = await server.listen(0);
      await new Promise((resolve) => setTimeout(resolve, 700)); // the mask worker's start (server.listen warms it) out of the figure
      c0 = process.cpuUsage();
      t0 = performance.now();
      const done = await Promise.all(Array.from({ length: n }, async () => {
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'host', messages: [{ role: 'user', content: 'Hi' }], max_tokens: reply.length, stream: true, stream_options: { include_usage: true } }) });
        const text = await res.text();
        const m = /"completion_tokens":(\d+)/.exec(text);
        return m ? Number(m[1]) : 0;
      }));
      out = done.reduce((a, x) => a + x, 0);
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    if (!http) await engine.close();
    else await server.close(1000);
    rows.push({ streams: n, round: r + 1, tokens: out, wallMs: Math.round(wall), tokPerS: Math.round((out * 1000) / wall), usCpuPerToken: +(((cpu.user + cpu.system) / out)).toFixed(1) });
  }
}
await model.dispose();
console.log(`engine host cost${http ? ' through HTTP (server and client in this process)' : ''}: ${reply.length} tokens a stream`);
console.table(rows);
