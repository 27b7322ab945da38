// loadModel: open and check a checkpoint, bind it on a device, run it.
import { native } from './native.js';
import type { NativeModel } from './addon-types.js';
import { openCheckpoint, type Checkpoint } from './loader/index.js';
import type { ModelConfig } from './loader/config.js';
import { Session } from './session.js';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  device?: DeviceRequest;
  /** Called as weights are bound/uploaded: bytes done of total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ModelInfo {
  device: string;
  backend: string;
  /** Why `auto` did not pick CUDA (absent when it did, or when a device was named). */
  fallbackReason?: string;
  bytesOnDisk: number;
  weightBytes: number;
  files: string[];
}

/** Which device `request` means on this machine; `cuda` where none is usable is an error. */
export function resolveDevice(request: DeviceRequest = 'auto'): { device: string; fallbackReason?: string } {
  if (request === 'cpu') return { device: 'cpu' };
  const reason = native.cudaUnavailableReason();
  if (request === 'auto') return reason ? { device: 'cpu', fallbackReason: `CUDA unavailable: ${reason}` } : { device: 'cuda:0' };
  if (!/^cuda(:\d+)?$/.test(request)) throw new RangeError(`loadModel: unknown device '${request}' (expected auto, cpu, cuda or cuda:N)`);
  if (reason) throw new Error(`loadModel: device '${request}' requested but CUDA is unavailable: ${reason}`);
  const index = request === 'cuda' ? 0 : Number(request.slice(5));
  const count = native.cudaDeviceCount();
  if (index >= count) throw new RangeError(`loadModel: device '${request}' does not exist (${count} CUDA device(s))`);
  return { device: `cuda:${index}` };
}

export interface SessionOptions {
  /** KV-cache capacity in tokens (default min(4096, max_position_embeddings)). */
  maxContext?: number;
}

export class GptOssModel {
  readonly config: ModelConfig;
  readonly info: ModelInfo;
  #native: NativeModel | null;

  /** @internal use loadModel */
  constructor(nativeModel: NativeModel, checkpoint: Checkpoint, fallbackReason?: string) {
    this.#native = nativeModel;
    this.config = checkpoint.config;
    const i = nativeModel.info();
    this.info = {
      device: i.device,
      backend: i.backend,
      ...(fallbackReason ? { fallbackReason } : {}),
      bytesOnDisk: checkpoint.bytesOnDisk,
      weightBytes: i.weightBytes,
      files: checkpoint.files,
    };
  }

  get device(): string {
    return this.info.device;
  }

  #get(fn: string): NativeModel {
    if (!this.#native) throw new Error(`${fn}: the model was disposed`);
    return this.#native;
  }

  createSession(options: SessionOptions = {}): Session {
    const maxContext = options.maxContext ?? Math.min(4096, this.config.maxPositionEmbeddings);
    return new Session(new native.NativeSession(this.#get('createSession'), maxContext), this.config.vocabSize);
  }

  /** Logits of every position, [tokens.length * vocabSize], from a fresh KV cache. */
  async forward(tokens: ArrayLike<number>): Promise<Float32Array> {
    if (tokens.length === 0) throw new RangeError('forward: tokens is empty');
    const session = this.createSession({ maxContext: Math.max(1, tokens.length) });
    try {
      return await session.prefillAll(tokens);
    } finally {
      await session.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.#native?.dispose();
    this.#native = null;
  }
}

export async function loadModel(dir: string, options: LoadOptions = {}): Promise<GptOssModel> {
  const { device, fallbackReason } = resolveDevice(options.device ?? 'auto');
  const checkpoint = openCheckpoint(dir);
  const nativeModel = await native.NativeModel.load(
    {
      config: checkpoint.config,
      files: checkpoint.files,
      tensors: checkpoint.tensors,
      device,
    },
    options.onProgress,
  );
  return new GptOssModel(nativeModel, checkpoint, fallbackReason);
}
