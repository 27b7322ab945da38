export interface KvCheckpointSpec {
  name: string;
  args: string[];
}
export const KV_CHECKPOINTS: KvCheckpointSpec[];
export function kvCheckpoint(root: string, spec: KvCheckpointSpec): string;
export function kvPrompt(vocab: number): number[];
export function cpuLogits(dir: string, tokens: number[], vocab: number, round?: 'f16' | 'bf16' | 'f32' | 'f32k-f16v' | 'f16-k' | 'f16-v' | null): Float32Array;
