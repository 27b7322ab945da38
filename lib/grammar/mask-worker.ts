// The worker thread behind structured outputs' token masks (token-mask.ts MaskCache.fetch): a mask walks the
// whole vocabulary (14-55 ms on a 2-core machine for a new matcher state, and ~0.4 s for the byte-ordered
// index the first time), so it is computed here and the event loop only receives it (a transferred bitset).
// A request names its state by the schema's source (mode and JSON) and the bytes read since the document began, replayed here
// from the schema's initial state: compiled nodes differ between threads, bytes do not.
import { parentPort } from 'node:worker_threads';
import { compiledSource } from './constraint.js';
import { step, type MatchState } from './json-schema.js';
import { allowedTokens, warmTokenMasks } from './token-mask.js';

interface MaskRequest {
  id: number;
  /** 'warm': build the vocabulary's index now; no reply. */
  warm?: boolean;
  source: string;
  bytes: Uint8Array;
  ends: number[];
  vocab: number;
}

parentPort!.on('message', (m: MaskRequest) => {
  if (m.warm) {
    warmTokenMasks();
    return;
  }
  try {
    let state: MatchState | undefined = compiledSource(m.source).start();
    for (let i = 0; i < m.bytes.length && state !== undefined; i++) state = step(state, m.bytes[i]!);
    if (state === undefined) throw new Error(`the ${m.bytes.length} bytes sent do not continue the schema`);
    const mask = allowedTokens(state, m.ends, m.vocab);
    parentPort!.postMessage({ id: m.id, mask }, [mask.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
