// The worker thread behind tokenizer.encodeAsync: encodes one text a message and sends the ids back
// in a transferred Int32Array (no copy on the way back).
import { parentPort } from 'node:worker_threads';
import { tokenizer, type EncodeOptions } from './tokenizer.js';

parentPort!.on('message', (m: { id: number; text: string; allowSpecial: EncodeOptions['allowSpecial'] }) => {
  try {
    const ids = Int32Array.from(tokenizer.encode(m.text, { allowSpecial: m.allowSpecial ?? false }));
    parentPort!.postMessage({ id: m.id, ids }, [ids.buffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
