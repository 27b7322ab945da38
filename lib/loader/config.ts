// config.json (Hugging Face GptOssConfig) -> a typed, checked ModelConfig.
import { ConfigError } from '../errors.js';
import { readJsonFileSteps, runSync, type Io } from './io.js';

export interface RopeScaling {
  type: 'yarn';
  factor: number;
  originalMaxPositionEmbeddings: number;
  betaFast: number;
  betaSlow: number;
  /** transformers' `truncate`: floor/ceil the ramp ends (gpt-oss: false). */
  truncate: boolean;
}

export type LayerType = 'sliding_attention' | 'full_attention';

export interface ModelConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numExperts: number;
  expertsPerToken: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  slidingWindow: number;
  layerTypes: LayerType[];
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  rmsNormEps: number;
  swigluLimit: number;
  maxPositionEmbeddings: number;
  eosTokenIds: number[];
}

type Json = Record<string, unknown>;

// The bounds of a config's integers (the native side's, napi/model.cpp), for config.json here and a GGUF's
// metadata (gguf.ts ggufConfig) alike.
export const MAX_SIZE = 1 << 24; // vocab_size, hidden_size, intermediate_size, sliding_window
export const MAX_COUNT = 4096; // layers, heads, experts
export const MAX_HEAD_DIM = 1024;
export const MAX_POSITIONS = 2 ** 30;
/** config.json is a few KB; anything larger is not a model config (and is not read whole). */
export const MAX_CONFIG_BYTES = 1 << 20;

export function parseConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(file, 'expected a JSON object');
  const j = json as Json;
  // Upper bounds are the native side's (napi/model.cpp): a config past them is not a gpt-oss.
  const int = (key: string, min = 1, fallback?: number, max = MAX_SIZE): number => {
    const v = j[key] ?? fallback;
    if (v === undefined || v === null) throw new ConfigError(file, 'missing required field', key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
      throw new ConfigError(file, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`, key);
    return v;
  };
  const num = (obj: Json, key: string, where: string, fallback?: number): number => {
    const v = obj[key] ?? fallback;
    if (v === undefined || v === null) throw new ConfigError(file, 'missing required field', where + key);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(file, `must be a number, got ${JSON.stringify(v)}`, where + key);
    return v;
  };
  if (j.model_type !== undefined && j.model_type !== 'gpt_oss')
    throw new ConfigError(file, `model_type is ${JSON.stringify(j.model_type)}, this runtime loads gpt_oss`, 'model_type');

  const numLayers = int('num_hidden_layers', 1, undefined, MAX_COUNT);
  const numHeads = int('num_attention_heads', 1, undefined, MAX_COUNT);
  const hiddenSize = int('hidden_size');
  let layerTypes: LayerType[];
  if (j.layer_types === undefined) {
    // Older configs: even layers slide, odd layers attend fully (openai/gpt-oss model.py).
    layerTypes = Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
  } else {
    const lt = j.layer_types;
    if (!Array.isArray(lt) || lt.length !== numLayers || !lt.every((t) => t === 'sliding_attention' || t === 'full_attention'))
      throw new ConfigError(file, `must list sliding_attention/full_attention for each of the ${numLayers} layers`, 'layer_types');
    layerTypes = lt as LayerType[];
  }

  let ropeScaling: RopeScaling | null = null;
  const rsKey = j.rope_scaling !== undefined && j.rope_scaling !== null ? 'rope_scaling' : 'rope_parameters';
  const rs = j[rsKey] as Json | undefined | null;
  if (rs !== undefined && rs !== null && (typeof rs !== 'object' || Array.isArray(rs)))
    throw new ConfigError(file, `must be an object ({"rope_type": "yarn", "factor": ...}), got ${JSON.stringify(rs)}`, rsKey);
  if (rs && typeof rs === 'object') {
    const type = rs.rope_type ?? rs.type;
    if (type !== 'yarn') throw new ConfigError(file, `rope_type ${JSON.stringify(type)} is not supported (gpt-oss uses yarn)`, 'rope_scaling');
    ropeScaling = {
      type: 'yarn',
      factor: num(rs, 'factor', 'rope_scaling.'),
      originalMaxPositionEmbeddings: num(rs, 'original_max_position_embeddings', 'rope_scaling.', j.initial_context_length as number | undefined),
      betaFast: num(rs, 'beta_fast', 'rope_scaling.', 32),
      betaSlow: num(rs, 'beta_slow', 'rope_scaling.', 1),
      truncate: rs.truncate === undefined ? true : Boolean(rs.truncate),
    };
    // factor 1 is plain RoPE (transformers' YaRN reduces to it); below 1 it would compress nothing.
    if (!(ropeScaling.factor >= 1))
      throw new ConfigError(file, `must be >= 1 (the context extension), got ${ropeScaling.factor}`, `${rsKey}.factor`);
    if (!(ropeScaling.originalMaxPositionEmbeddings >= 1))
      throw new ConfigError(file, `must be >= 1, got ${ropeScaling.originalMaxPositionEmbeddings}`, `${rsKey}.original_max_position_embeddings`);
    if (!(ropeScaling.betaFast > 0) || !(ropeScaling.betaSlow > 0))
      throw new ConfigError(file, `beta_fast and beta_slow must be > 0, got ${ropeScaling.betaFast} and ${ropeScaling.betaSlow}`, `${rsKey}.beta_fast`);
  }

  const eos = j.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : typeof eos === 'number' ? [eos] : [];
  const config: ModelConfig = {
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers,
    numExperts: int('num_local_experts', 1, undefined, MAX_COUNT),
    expertsPerToken: int('num_experts_per_tok', 1, j.experts_per_token as number | undefined, MAX_COUNT),
    numHeads,
    numKvHeads: int('num_key_value_heads', 1, undefined, MAX_COUNT),
    headDim: int('head_dim', 2, Number.isInteger(hiddenSize / numHeads) ? hiddenSize / numHeads : undefined, MAX_HEAD_DIM),
    slidingWindow: int('sliding_window', 0),
    layerTypes,
    ropeTheta: num(j, 'rope_theta', '', (rs?.rope_theta as number | undefined)),
    ropeScaling,
    rmsNormEps: num(j, 'rms_norm_eps', ''),
    swigluLimit: num(j, 'swiglu_limit', ''),
    maxPositionEmbeddings: int('max_position_embeddings', 1, undefined, MAX_POSITIONS),
    eosTokenIds,
  };
  if (config.headDim % 2 !== 0) throw new ConfigError(file, `must be even (RoPE rotates two halves), got ${config.headDim}`, 'head_dim');
  if (!(config.ropeTheta > 0)) throw new ConfigError(file, `must be > 0 (the RoPE base), got ${config.ropeTheta}`, 'rope_theta');
  if (!(config.rmsNormEps >= 0)) throw new ConfigError(file, `must be >= 0, got ${config.rmsNormEps}`, 'rms_norm_eps');
  if (!(config.swigluLimit > 0)) throw new ConfigError(file, `must be > 0 (the clamp of the SwiGLU inputs), got ${config.swigluLimit}`, 'swiglu_limit');
  if (config.slidingWindow < 1 && layerTypes.includes('sliding_attention'))
    throw new ConfigError(file, 'must be >= 1: layer_types has sliding_attention layers (0 would attend to nothing)', 'sliding_window');
  if (config.expertsPerToken > config.numExperts)
    throw new ConfigError(file, `${config.expertsPerToken} exceeds num_local_experts ${config.numExperts}`, 'num_experts_per_tok');
  if (config.numHeads % config.numKvHeads !== 0)
    throw new ConfigError(file, `${config.numKvHeads} does not divide num_attention_heads ${config.numHeads}`, 'num_key_value_heads');
  if (config.hiddenSize % 32 !== 0 || config.intermediateSize % 32 !== 0)
    throw new ConfigError(file, 'hidden_size and intermediate_size must be multiples of 32 (MXFP4 blocks)', 'hidden_size');
  return config;
}

export function readConfig(path: string): ModelConfig {
  return runSync(readConfigSteps(path));
}

/** @internal readConfig's reads and checks, for either driver (lib/loader/io.ts). */
export function* readConfigSteps(path: string): Io<ModelConfig> {
  const json = yield* readJsonFileSteps(path, MAX_CONFIG_BYTES, (file, message) => new ConfigError(file, message));
  return parseConfig(json, path);
}
