// loadModel: open and check a checkpoint, bind it on a device, run it.
import { native } from './native.js';
import type { NativeModel } from './addon-types.js';
import { openCheckpoint } from './loader/index.js';
import type { ModelConfig } from './loader/config.js';
import { Session } from './session.js';
import type { ExpertActivations } from './ops.js';

/**
 * The activations mode a model loads with: the option, else GPTOSS_CPU_ACTIVATIONS (on the CPU only:
 * a CUDA model ignores the variable), else 'f32'. `fn` names the caller in error messages.
 */
export function resolveActivations(request: unknown, device: string, fn = 'loadModel'): ExpertActivations {
  const fromEnv = request === undefined;
  const value = fromEnv ? (device === 'cpu' ? process.env.GPTOSS_CPU_ACTIVATIONS || 'f32' : 'f32') : request;
  if (value !== 'f32' && value !== 'q8')
    throw new RangeError(`${fn}: ${fromEnv ? 'GPTOSS_CPU_ACTIVATIONS' : "option 'activations'"} must be 'f32' or 'q8', got ${String(value)}`);
  if (value === 'q8' && device !== 'cpu')
    throw new RangeError(`${fn}: option 'activations' 'q8' is a CPU mode; device ${device} multiplies f32 activations`);
  return value;
}

export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  device?: DeviceRequest;
  /**
   * CPU only: what the MXFP4 expert kernels multiply the weights with. 'f32' (exact: the activations
   * as they are) or 'q8' (each 32-value block rounded to int8 with an f32 scale, as llama.cpp's q8_0:
   * integer dot products, faster where the kernels are compute-bound; bench/RESULTS.md gives its
   * error). Default: GPTOSS_CPU_ACTIVATIONS when set, else 'f32'. On CUDA only 'f32' exists.
   */
  activations?: ExpertActivations;
  /** Called as weights are bound/uploaded: bytes done of total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ModelInfo {
  /**
   * Where the weights came from: 'checkpoint' (loadModel: read from files) or 'synthetic'
   * (createSyntheticModel: random weights generated in memory, for benchmarks; they mean nothing).
   */
  source: 'checkpoint' | 'synthetic';
  device: string;
  backend: string;
  /** What the expert kernels multiply the MXFP4 weights with (LoadOptions.activations). */
  activations: ExpertActivations;
  /** Why `auto` did not pick CUDA (absent when it did, or when a device was named). */
  fallbackReason?: string;
  /** Size of the checkpoint's files (0 for synthetic weights). */
  bytesOnDisk: number;
  weightBytes: number;
  /** The checkpoint's safetensors files (none for synthetic weights). */
  files: string[];
  /** Synthetic weights only: the seed of the generator. */
  seed?: number;
  /** Synthetic weights only: the preset shape, when one was named. */
  preset?: string;
}

/** @internal What a GptOssModel was made from (loadModel: a checkpoint; createSyntheticModel: a generator). */
export type ModelOrigin =
  | { source: 'checkpoint'; config: ModelConfig; files: string[]; bytesOnDisk: number }
  | { source: 'synthetic'; config: ModelConfig; seed: number; preset?: string };

/**
 * Which device `request` means on this machine; `cuda` where none is usable is an error. `fn` names
 * the caller in error messages.
 */
export function resolveDevice(request: DeviceRequest = 'auto', fn = 'loadModel'): { device: string; fallbackReason?: string } {
  if (request === 'cpu') return { device: 'cpu' };
  const reason = native.cudaUnavailableReason();
  if (request === 'auto') return reason ? { device: 'cpu', fallbackReason: `CUDA unavailable: ${reason}` } : { device: 'cuda:0' };
  if (!/^cuda(:\d+)?$/.test(request)) throw new RangeError(`${fn}: unknown device '${request}' (expected auto, cpu, cuda or cuda:N)`);
  if (reason) throw new Error(`${fn}: device '${request}' requested but CUDA is unavailable: ${reason}`);
  const index = request === 'cuda' ? 0 : Number(request.slice(5));
  const count = native.cudaDeviceCount();
  if (index >= count) throw new RangeError(`${fn}: device '${request}' does not exist (${count} CUDA device(s))`);
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

  /** @internal use loadModel or createSyntheticModel */
  constructor(nativeModel: NativeModel, origin: ModelOrigin, fallbackReason?: string) {
    this.#native = nativeModel;
    this.config = origin.config;
    const i = nativeModel.info();
    this.info =
      origin.source === 'checkpoint'
        ? {
            source: 'checkpoint',
            device: i.device,
            backend: i.backend,
            activations: i.activations,
            ...(fallbackReason ? { fallbackReason } : {}),
            bytesOnDisk: origin.bytesOnDisk,
            weightBytes: i.weightBytes,
            files: origin.files,
          }
        : {
            source: 'synthetic',
            device: i.device,
            backend: i.backend,
            activations: i.activations,
            ...(fallbackReason ? { fallbackReason } : {}),
            bytesOnDisk: 0,
            weightBytes: i.weightBytes,
            files: [],
            seed: origin.seed,
            ...(origin.preset !== undefined ? { preset: origin.preset } : {}),
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
  const activations = resolveActivations(options.activations, device);
  const checkpoint = openCheckpoint(dir);
  const nativeModel = await native.NativeModel.load(
    {
      config: checkpoint.config,
      files: checkpoint.files,
      tensors: checkpoint.tensors,
      device,
      activations,
    },
    options.onProgress,
  );
  return new GptOssModel(nativeModel, { source: 'checkpoint', config: checkpoint.config, files: checkpoint.files, bytesOnDisk: checkpoint.bytesOnDisk }, fallbackReason);
}
