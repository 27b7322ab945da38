// gpt-oss-node: the public API.
export { loadModel, resolveDevice, GptOssModel } from './model.js';
export type { LoadOptions, ModelInfo, DeviceRequest, SessionOptions } from './model.js';
export { createSyntheticModel, syntheticConfig, SYNTHETIC_PRESETS, SYNTHETIC_PRESET_SEEDS } from './synthetic.js';
export type { SyntheticShape, SyntheticPreset, SyntheticOptions } from './synthetic.js';
export { Session } from './session.js';
export type { SampleOptions } from './session.js';
export { Tensor, toBf16, fromBf16 } from './tensor.js';
export type { DType, DeviceName } from './tensor.js';
export { openCheckpoint } from './loader/index.js';
export type { Checkpoint } from './loader/index.js';
export { readConfig, parseConfig } from './loader/config.js';
export type { ModelConfig, RopeScaling, LayerType } from './loader/config.js';
export { readSafetensorsHeader } from './loader/safetensors.js';
export { CheckpointError, ConfigError, DeviceUnavailableError } from './errors.js';
import './generate.js'; // attaches GptOssModel.prototype.generate
export { generate, GenerationStream } from './generate.js';
export type { GenerateInput, GenerateOptions, GenerationEvent, GenerationResult, FinishReason, ToolCall } from './generate.js';
export { ChatSession } from './chat.js';
export type { ChatSessionOptions, ChatTurnOptions } from './chat.js';
export { Xoshiro128, createRng, randomSeed, sampleFromLogits, samplingDistribution, resolveSampleOptions } from './sampling.js';
export type { Seed } from './sampling.js';
export { tokenizer, createStreamDecoder, SPECIAL_TOKENS, VOCAB_SIZE } from './tokenizer.js';
export type { Tokenizer, EncodeOptions, StreamDecoder, SpecialTokenName } from './tokenizer.js';
export * from './harmony/index.js';
export * as kernels from './ops.js';
