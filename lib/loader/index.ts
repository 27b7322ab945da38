// A checkpoint: a directory with config.json plus model.safetensors, or model.safetensors.index.json
// and its shards; or a GGUF file (a path to it, an Ollama blob without extension, or a directory
// holding one .gguf and no config.json). Everything is checked here at the file level; native/model
// binds the tensors the config implies (dtype, shape) and maps the files.
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { NativeTensorRecord } from '../addon-types.js';
import { readConfigSteps, type ModelConfig } from './config.js';
import { readSafetensorsHeaderSteps, type SafetensorsHeader } from './safetensors.js';
import { listDir, openFailure, readJsonFileSteps, runAsync, runSync, statPath, type Io } from './io.js';
import { ggufConfig, ggufRecordDtype, isGgufFileSteps, readGgufSteps, type GgufFile, type GgufValue } from './gguf.js';

/** model.safetensors.index.json lists every tensor once: tens of KB for gpt-oss-120b. */
const MAX_INDEX_BYTES = 64 << 20;

/** Whether `path` exists (following symlinks); a loop or a permission problem is an error naming it. */
function* present(path: string): Io<boolean> {
  try {
    yield* statPath(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CheckpointError(path, openFailure(e));
  }
}

/** What a GGUF file says about itself beyond the model's shape (model.info.gguf). */
export interface GgufSummary {
  version: number;
  architecture: string;
  /** general.name, when present. */
  name?: string;
  /** general.file_type (llama_ftype: 38 = MXFP4 MoE, 7 = Q8_0, 1 = F16 ...). */
  fileType?: number;
  /** tensor count by ggml type, e.g. { F32: 289, Q8_0: 98, MXFP4: 72 } */
  tensorTypes: Record<string, number>;
  /** tokenizer.chat_template (the Harmony template as a Jinja string), when present. */
  chatTemplate?: string;
  /** tokenizer.ggml.model and the vocabulary size it lists (the runtime uses its own o200k_harmony tokenizer). */
  tokenizerModel?: string;
  tokenizerVocab?: number;
  /** A split GGUF (llama.cpp's gguf-split): how many parts were opened (model.info.files lists them). */
  splitCount?: number;
}

export interface Checkpoint {
  dir: string;
  format: 'safetensors' | 'gguf';
  /** The config.json read (a GGUF file: the file itself, whose metadata holds the config). */
  configFile: string;
  config: ModelConfig;
  files: string[];
  headers: SafetensorsHeader[];
  tensors: NativeTensorRecord[];
  bytesOnDisk: number;
  gguf?: GgufSummary;
}

function ggufSummary(g: GgufFile): GgufSummary {
  const str = (k: string) => (typeof g.metadata.get(k) === 'string' ? (g.metadata.get(k) as string) : undefined);
  const tensorTypes: Record<string, number> = {};
  for (const t of g.tensors.values()) tensorTypes[t.type] = (tensorTypes[t.type] ?? 0) + 1;
  const tokens = g.metadata.get('tokenizer.ggml.tokens') as GgufValue | undefined;
  const fileType = g.metadata.get('general.file_type');
  return {
    version: g.version,
    architecture: String(g.metadata.get('general.architecture')),
    ...(str('general.name') !== undefined ? { name: str('general.name') } : {}),
    ...(typeof fileType === 'number' ? { fileType } : {}),
    tensorTypes,
    ...(str('tokenizer.chat_template') !== undefined ? { chatTemplate: str('tokenizer.chat_template') } : {}),
    ...(str('tokenizer.ggml.model') !== undefined ? { tokenizerModel: str('tokenizer.ggml.model') } : {}),
    ...(tokens && typeof tokens === 'object' && 'length' in tokens ? { tokenizerVocab: tokens.length } : {}),
  };
}

/** llama.cpp's gguf-split names: `<prefix>-00001-of-00003.gguf` (llama_split_path). */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** split.no / split.count of a GGUF part (gguf-split writes them into every part), or undefined. */
function splitOf(g: GgufFile): { no: number; count: number } | undefined {
  const count = g.metadata.get('split.count');
  if (count === undefined) return undefined;
  const no = g.metadata.get('split.no');
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || typeof no !== 'number' || !Number.isInteger(no) || no < 0 || no >= count)
    throw new CheckpointError(g.path, `split.no ${String(no)} / split.count ${String(count)} do not describe a part of a split GGUF`);
  return { no, count };
}

/**
 * A GGUF file, or a split one (llama.cpp's gguf-split, as the published gpt-oss-120b GGUFs come: the first part holds
 * the metadata, every part a share of the tensors): any part's path opens them all, each mapped in place.
 */
function* openGguf(path: string): Io<Checkpoint> {
  const g = yield* readGgufSteps(path);
  const split = splitOf(g);
  const parts: GgufFile[] = [g];
  if (split && split.count > 1) {
    const m = SPLIT_NAME.exec(basename(path));
    if (!m || Number(m[3]) !== split.count || Number(m[2]) !== split.no + 1)
      throw new CheckpointError(path, `is part ${split.no + 1} of a GGUF split in ${split.count} (split.no, split.count), but its name does not end in -${String(split.no + 1).padStart(5, '0')}-of-${String(split.count).padStart(5, '0')}.gguf: the other parts cannot be found`);
    parts.length = 0;
    for (let i = 0; i < split.count; i++) {
      const p = join(dirname(path), `${m[1]}-${String(i + 1).padStart(5, '0')}-of-${m[3]}.gguf`);
      if (i === split.no) {
        parts.push(g);
        continue;
      }
      if (!(yield* present(p))) throw new CheckpointError(p, `is missing: part ${i + 1} of the GGUF split in ${split.count} that ${basename(path)} belongs to`);
      const part = yield* readGgufSteps(p);
      const s = splitOf(part);
      if (!s || s.no !== i || s.count !== split.count)
        throw new CheckpointError(p, `is not part ${i + 1} of ${split.count} of ${basename(path)}'s split (its split.no / split.count: ${s ? `${s.no} / ${s.count}` : 'none'})`);
      parts.push(part);
    }
  }
  const first = parts[0];
  const config = ggufConfig(first);
  const tensors: NativeTensorRecord[] = [];
  const seen = new Map<string, string>();
  parts.forEach((part, file) => {
    for (const t of part.tensors.values()) {
      const other = seen.get(t.name);
      if (other !== undefined) throw new CheckpointError(part.path, `is also in ${other}: a tensor may be in one part of a split GGUF only`, t.name);
      seen.set(t.name, part.path);
      tensors.push({ name: t.name, file, dtype: ggufRecordDtype(t), shape: t.shape, offset: t.offset, length: t.length });
    }
  });
  const declared = first.metadata.get('split.tensors.count');
  if (parts.length > 1 && typeof declared === 'number' && declared !== tensors.length)
    throw new CheckpointError(first.path, `split.tensors.count says ${declared} tensors, its ${parts.length} parts hold ${tensors.length}`);
  const summary = ggufSummary(first);
  if (parts.length > 1) {
    summary.tensorTypes = {};
    for (const part of parts) for (const t of part.tensors.values()) summary.tensorTypes[t.type] = (summary.tensorTypes[t.type] ?? 0) + 1;
    summary.splitCount = parts.length;
  }
  return {
    dir: first.path,
    format: 'gguf',
    configFile: first.path,
    config,
    files: parts.map((p) => p.path),
    headers: [],
    tensors,
    bytesOnDisk: parts.reduce((a, p) => a + p.fileSize, 0),
    gguf: summary,
  };
}

/** The files of a checkpoint, read and checked (synchronous file calls). */
export function openCheckpoint(dirArg: string): Checkpoint {
  return runSync(openCheckpointSteps(dirArg));
}

/** openCheckpoint with every file call on libuv's thread pool (loadModel): the event loop never waits on a file. */
export function openCheckpointAsync(dirArg: string): Promise<Checkpoint> {
  return runAsync(openCheckpointSteps(dirArg));
}

function* openCheckpointSteps(dirArg: string): Io<Checkpoint> {
  if (typeof dirArg !== 'string' || dirArg === '')
    throw new TypeError(`openCheckpoint: argument 'dir' must be a non-empty path, got ${dirArg === '' ? "''" : dirArg === null ? 'null' : typeof dirArg}`);
  const dir = resolve(dirArg);
  let isDir: boolean;
  try {
    isDir = (yield* statPath(dir)).isDirectory;
  } catch (e) {
    throw new CheckpointError(dir, openFailure(e));
  }
  if (!isDir) {
    if (yield* isGgufFileSteps(dir)) return yield* openGguf(dir);
    throw new CheckpointError(dir, 'is a file, not a checkpoint directory (config.json + model.safetensors) or a GGUF file');
  }
  if (!(yield* present(join(dir, 'config.json')))) {
    const ggufs = (yield* listDir(dir)).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (ggufs.length === 1) return yield* openGguf(join(dir, ggufs[0]));
    // the parts of one split GGUF (and nothing else): its first part
    const m = ggufs.map((f) => SPLIT_NAME.exec(f));
    if (ggufs.length > 1 && m.every((x) => x && x[1] === m[0]![1] && x[3] === m[0]![3]) && Number(m[0]![3]) === ggufs.length) {
      const first = ggufs.find((_, i) => Number(m[i]![2]) === 1);
      if (first) return yield* openGguf(join(dir, first));
    }
    if (ggufs.length > 1) throw new CheckpointError(dir, `holds ${ggufs.length} .gguf files (${ggufs.join(', ')}) and no config.json: name one`);
  }
  const configFile = join(dir, 'config.json');
  const config = yield* readConfigSteps(configFile);

  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files: string[];
  let weightMap: Record<string, string> | null = null;
  if (yield* present(indexPath)) {
    const index = yield* readJsonFileSteps(indexPath, MAX_INDEX_BYTES, (file, message) => new CheckpointError(file, message));
    if (index === null || typeof index !== 'object' || Array.isArray(index))
      throw new CheckpointError(indexPath, `must be a JSON object with a 'weight_map', got ${index === null ? 'null' : Array.isArray(index) ? 'an array' : typeof index}`);
    const wm = (index as { weight_map?: unknown }).weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm))
      throw new CheckpointError(indexPath, "'weight_map' must be an object {tensor name: shard file}");
    weightMap = wm as Record<string, string>;
    if (Object.keys(weightMap).length === 0) throw new CheckpointError(indexPath, "'weight_map' lists no tensors");
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    for (const s of shardNames)
      if (typeof s !== 'string' || s === '' || s.includes('/') || s.includes('\\') || s === '..' || s === '.')
        throw new CheckpointError(indexPath, `shard name ${JSON.stringify(s)} is not a file name in the directory`);
    files = shardNames.map((s) => join(dir, s));
  } else if (yield* present(single)) {
    files = [single];
  } else {
    throw new CheckpointError(dir, 'has no model.safetensors or model.safetensors.index.json');
  }

  const headers: SafetensorsHeader[] = [];
  for (const f of files) headers.push(yield* readSafetensorsHeaderSteps(f));
  const tensors: NativeTensorRecord[] = [];
  const seen = new Map<string, string>();
  headers.forEach((h, file) => {
    for (const t of h.tensors.values()) {
      const other = seen.get(t.name);
      if (other !== undefined) throw new CheckpointError(h.path, `also present in ${other}`, t.name);
      seen.set(t.name, h.path);
      if (weightMap && weightMap[t.name] !== undefined && join(dir, weightMap[t.name]) !== h.path)
        throw new CheckpointError(h.path, `index.json places it in ${weightMap[t.name]}`, t.name);
      tensors.push({ name: t.name, file, dtype: t.dtype, shape: t.shape, offset: t.offset, length: t.length });
    }
  });
  if (weightMap)
    for (const [name, shard] of Object.entries(weightMap))
      if (!seen.has(name)) throw new CheckpointError(join(dir, shard), 'listed in model.safetensors.index.json but absent from the shard', name);

  return { dir, format: 'safetensors', configFile, config, files, headers, tensors, bytesOnDisk: headers.reduce((a, h) => a + h.fileSize, 0) };
}
