// safetensors headers, parsed and checked here before anything is mapped: an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__},
// then the data; offsets are relative to the end of the header.
import { CheckpointError } from '../errors.js';
import { closeFile, openRegular, readAt, runSync, type Io } from './io.js';
import { checkShape } from './shape.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

// Headers of real checkpoints are a few hundred KB; anything this large is corrupt.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  length: number;
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  dataStart: number;
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return runSync(readSafetensorsHeaderSteps(path));
}

/** @internal readSafetensorsHeader's reads and checks, for either driver (lib/loader/io.ts). */
export function* readSafetensorsHeaderSteps(path: string): Io<SafetensorsHeader> {
  const file = yield* openRegular(path, (f, message) => new CheckpointError(f, message));
  const fileSize = file.size;
  try {
    if (fileSize < 8) throw new CheckpointError(path, `file is ${fileSize} bytes, shorter than the 8-byte header length: truncated`);
    const lengthBytes = yield* readAt(file, 8, 0);
    if (lengthBytes.length < 8) throw new CheckpointError(path, 'the file ended before the 8-byte header length: truncated');
    const n = lengthBytes.readBigUInt64LE(0);
    if (n > BigInt(fileSize - 8))
      throw new CheckpointError(path, `header length ${n} runs past the end of the file (${fileSize} bytes)`);
    if (n > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError(path, `header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
    const headerLen = Number(n);
    const headerBytes = yield* readAt(file, headerLen, 8);
    if (headerBytes.length < headerLen) throw new CheckpointError(path, `the file ended inside the ${headerLen}-byte header: truncated`);
    const text = headerBytes.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new CheckpointError(path, `malformed header JSON: ${(e as Error).message}`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new CheckpointError(path, 'malformed header: the JSON is not an object');
    const dataStart = 8 + headerLen;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (raw && typeof raw === 'object') metadata = raw as Record<string, string>;
        continue;
      }
      tensors.set(name, checkEntry(path, name, raw, dataStart, dataSize));
    }
    // Tensors may not share bytes (an empty tensor owns none, wherever its offsets point).
    const sorted = [...tensors.values()].filter((t) => t.length > 0).sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      const cur = sorted[i];
      if (cur.offset < prev.offset + prev.length)
        throw new CheckpointError(path, `data overlaps tensor '${prev.name}' (bytes ${cur.offset - dataStart}.. vs ..${prev.offset + prev.length - dataStart})`, cur.name);
    }
    return { path, fileSize, dataStart, tensors, metadata };
  } finally {
    yield* closeFile(file);
  }
}

function checkEntry(path: string, name: string, raw: unknown, dataStart: number, dataSize: number): SafetensorsEntry {
  if (!raw || typeof raw !== 'object') throw new CheckpointError(path, 'header entry is not an object', name);
  const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
    throw new CheckpointError(path, `unknown dtype ${JSON.stringify(e.dtype)}`, name);
  if (!Array.isArray(e.shape)) throw new CheckpointError(path, `shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`, name);
  checkShape(path, name, e.shape);
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0])
    throw new CheckpointError(path, `data_offsets ${JSON.stringify(off)} must be [begin, end] with 0 <= begin <= end`, name);
  const [begin, end] = off as [number, number];
  if (end > dataSize)
    throw new CheckpointError(
      path,
      `data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes after the header): the file is truncated or the offsets are out of range`,
      name,
    );
  const shape = e.shape as number[];
  const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype];
  if (end - begin !== expected)
    throw new CheckpointError(path, `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, ${e.dtype}${JSON.stringify(shape)} needs ${expected}`, name);
  return { name, dtype: e.dtype as SafetensorsDType, shape, offset: dataStart + begin, length: end - begin };
}
