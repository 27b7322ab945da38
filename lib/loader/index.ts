// A checkpoint directory: config.json plus model.safetensors, or model.safetensors.index.json and
// its shards. Everything is checked here at the file level; native/model binds the tensors the
// config implies (dtype, shape) and maps the files.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { NativeTensorRecord } from '../addon-types.js';
import { readConfig, type ModelConfig } from './config.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  files: string[];
  headers: SafetensorsHeader[];
  tensors: NativeTensorRecord[];
  bytesOnDisk: number;
}

export function openCheckpoint(dirArg: string): Checkpoint {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CheckpointError(dir, 'not a directory');
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

  return { dir, config, files, headers, tensors, bytesOnDisk: headers.reduce((a, h) => a + h.fileSize, 0) };
}
