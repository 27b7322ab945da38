// A checkpoint: a directory with config.json plus model.safetensors, or model.safetensors.index.json
// and its shards; or a GGUF file (a path to it, an Ollama blob without extension, or a directory
// holding one .gguf and no safetensors). Everything is checked here at the file level; native/model
// binds the tensors the config implies (dtype, shape) and maps the files.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { NativeTensorRecord } from '../addon-types.js';
import { readConfig, type ModelConfig } from './config.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { ggufConfig, ggufRecordDtype, isGgufFile, readGguf, type GgufFile, type GgufValue } from './gguf.js';

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
}

export interface Checkpoint {
  dir: string;
  format: 'safetensors' | 'gguf';
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

function openGguf(path: string): Checkpoint {
  const g = readGguf(path);
  const config = ggufConfig(g);
  const tensors: NativeTensorRecord[] = [...g.tensors.values()].map((t) => ({
    name: t.name,
    file: 0,
    dtype: ggufRecordDtype(t),
    shape: t.shape,
    offset: t.offset,
    length: t.length,
  }));
  return { dir: path, format: 'gguf', config, files: [path], headers: [], tensors, bytesOnDisk: g.fileSize, gguf: ggufSummary(g) };
}

export function openCheckpoint(dirArg: string): Checkpoint {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new CheckpointError(dir, 'not a directory or a GGUF file: no such path');
  if (!statSync(dir).isDirectory()) {
    if (isGgufFile(dir)) return openGguf(dir);
    throw new CheckpointError(dir, 'not a directory or a GGUF file (expected a checkpoint directory with config.json, or a .gguf file)');
  }
  if (!existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetensors.index.json'))) {
    const ggufs = readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (ggufs.length === 1) return openGguf(join(dir, ggufs[0]));
    if (ggufs.length > 1) throw new CheckpointError(dir, `holds ${ggufs.length} .gguf files (${ggufs.join(', ')}): name one`);
  }
  const config = readConfig(join(dir, 'config.json'));

  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files: string[];
  let weightMap: Record<string, string> | null = null;
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new CheckpointError(indexPath, `malformed JSON: ${(e as Error).message}`);
    }
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new CheckpointError(indexPath, "missing 'weight_map'");
    weightMap = index.weight_map;
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    for (const s of shardNames)
      if (typeof s !== 'string' || s.includes('/') || s.includes('\\') || s === '..')
        throw new CheckpointError(indexPath, `shard name ${JSON.stringify(s)} is not a file name in the directory`);
    files = shardNames.map((s) => join(dir, s));
  } else if (existsSync(single)) {
    files = [single];
  } else {
    throw new CheckpointError(dir, 'no model.safetensors or model.safetensors.index.json');
  }

  const headers = files.map((f) => readSafetensorsHeader(f));
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

  return { dir, format: 'safetensors', config, files, headers, tensors, bytesOnDisk: headers.reduce((a, h) => a + h.fileSize, 0) };
}
