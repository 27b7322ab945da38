// Copies of the tiny-a fixture with one thing changed, for the error-contract tests and the fuzzer.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './fixtures.js';

/** A fresh copy of tiny-a's config.json and model.safetensors in `dir`. */
export function copyTiny(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixtureDir('tiny-a'), f), join(dir, f));
  return dir;
}

export function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const p = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFileSync(p, JSON.stringify(c));
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;

/**
 * Rewrites model.safetensors' header with `edit` (the data after it is kept; offsets are relative
 * to the data, so they stay valid). `pad` spaces are added to the JSON, which moves the data start.
 */
export function editHeader(dir: string, edit: (h: Header) => void, pad = 0): void {
  const p = join(dir, 'model.safetensors');
  const b = readFileSync(p);
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Header;
  edit(h);
  const json = Buffer.from(JSON.stringify(h) + ' '.repeat(pad), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(p, Buffer.concat([len, json, b.subarray(8 + n)]));
}
