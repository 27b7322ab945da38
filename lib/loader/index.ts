// A checkpoint directory: config.json plus model.safetensors, or model.safetensors.index.json and
// its shards. Everything is checked here at the file level; native/model binds the tensors the
// config implies (dtype, shape) and maps the files.
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { NativeTensorRecord } from '../addon-types.js';
import { readConfig, type ModelConfig } from './config.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { openFailure, readSmallFile } from './files.js';

/** model.safetensors.index.json lists every tensor once: tens of KB for gpt-oss-120b. */
const MAX_INDEX_BYTES = 64 << 20;

/** Whether `path` exists (following symlinks); a loop or a permission problem is an error naming it. */
function present(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CheckpointError(path, openFailure(e));
  }
}

export interface Checkpoint {
  dir: string;
  /** The config.json read. */
  configFile: string;
  config: ModelConfig;
  files: string[];
  headers: SafetensorsHeader[];
  tensors: NativeTensorRecord[];
  bytesOnDisk: number;
}

export function openCheckpoint(dirArg: string): Checkpoint {
  if (typeof dirArg !== 'string' || dirArg === '')
    throw new TypeError(`openCheckpoint: argument 'dir' must be a non-empty path, got ${dirArg === '' ? "''" : dirArg === null ? 'null' : typeof dirArg}`);
  const dir = resolve(dirArg);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw new CheckpointError(dir, openFailure(e));
  }
  if (!isDir) throw new CheckpointError(dir, 'is a file, not a checkpoint directory (config.json + model.safetensors)');
  const configFile = join(dir, 'config.json');
  const config = readConfig(configFile);

  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files: string[];
  let weightMap: Record<string, string> | null = null;
  if (present(indexPath)) {
    const text = readSmallFile(indexPath, MAX_INDEX_BYTES, (file, message) => new CheckpointError(file, message));
    let index: unknown;
    try {
      index = JSON.parse(text);
    } catch (e) {
      throw new CheckpointError(indexPath, `malformed JSON: ${(e as Error).message}`);
    }
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
  } else if (present(single)) {
    files = [single];
  } else {
    throw new CheckpointError(dir, 'has no model.safetensors or model.safetensors.index.json');
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

  return { dir, configFile, config, files, headers, tensors, bytesOnDisk: headers.reduce((a, h) => a + h.fileSize, 0) };
}
