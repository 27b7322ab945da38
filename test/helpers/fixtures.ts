// Reading the transformers reference fixtures under test/fixtures.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GptOssModel } from '../../lib/index.js';

export const fixtureDir = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

export function readJson<T>(name: string, file: string): T {
  return JSON.parse(readFileSync(`${fixtureDir(name)}/${file}`, 'utf8')) as T;
}

export function readF32(name: string, file: string): Float32Array {
  const b = readFileSync(`${fixtureDir(name)}/${file}`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** ||got - ref|| / ||ref||, accumulated in float64. */
export function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`relL2: length ${got.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return Math.sqrt(num / den);
}

export function argmaxRows(values: ArrayLike<number>, cols: number): number[] {
  const rows = values.length / cols;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

export function hasNaN(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i])) return true;
  return false;
}

/** n greedy tokens after `prompt`, one step at a time through a Session (the tiny-a fixtures' check). */
export async function greedyContinuation(model: GptOssModel, prompt: number[], n: number): Promise<number[]> {
  const session = model.createSession({ maxContext: 128 });
  let logits = await session.prefill(prompt);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const next = argmaxRows(logits, model.config.vocabSize)[0];
    out.push(next);
    logits = await session.step(next);
  }
  await session.dispose();
  return out;
}
