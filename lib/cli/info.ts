// gpt-oss info <model>: config, parameter counts, sizes, backend.
import type { Command } from 'commander';
import type { ModelConfig } from '../loader/config.js';
import {
  ACTIVATIONS_HELP,
  EXPERTS_HELP,
  KV_CACHE_HELP,
  loadWithProgress,
  parseActivations,
  parseDenseWeights,
  parseDevice,
  parseExperts,
  parseKvCache,
  type SamplingFlags,
} from './common.js';

export interface ParameterCounts {
  embedding: number;
  unembedding: number;
  attention: number;
  router: number;
  experts: number;
  norms: number;
  total: number;
  /**
   * Parameters one token passes through: everything but the embedding table (a lookup, not a
   * matmul) and the experts the router did not pick. The convention of OpenAI's gpt-oss model card
   * (20b: 20.91B total, 3.61B active).
   */
  activePerToken: number;
}

/** Parameter counts of a gpt-oss config (biases and attention sinks included). */
export function parameterCounts(c: ModelConfig): ParameterCounts {
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayerAttention = h * q + q + 2 * (h * kv + kv) + q * h + h + c.numHeads; // q, k, v, o (+bias), sinks
  const perLayerRouter = c.numExperts * h + c.numExperts;
  const perExpert = h * 2 * c.intermediateSize + 2 * c.intermediateSize + c.intermediateSize * h + h; // gate_up, down (+bias)
  const embedding = c.vocabSize * h;
  const unembedding = c.vocabSize * h;
  const attention = c.numLayers * perLayerAttention;
  const router = c.numLayers * perLayerRouter;
  const experts = c.numLayers * c.numExperts * perExpert;
  const norms = c.numLayers * 2 * h + h;
  const total = embedding + unembedding + attention + router + experts + norms;
  const activePerToken = unembedding + attention + router + c.numLayers * c.expertsPerToken * perExpert + norms;
  return { embedding, unembedding, attention, router, experts, norms, total, activePerToken };
}

function human(n: number, unit = ''): string {
  const steps: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [v, s] of steps) if (n >= v) return `${(n / v).toFixed(2)}${s}${unit}`;
  return `${n}${unit}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 2)} ${units[i]} (${n} bytes)`;
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show a checkpoint: config, parameter counts, bytes on disk and in memory, device')
    .argument('<model>', 'checkpoint folder (config.json + *.safetensors), GGUF file, or hf:org/name[@revision] (downloaded into the hub cache)')
    .option('--device <device>', 'auto, cpu, cuda, cuda:N, hip or hip:N', parseDevice, 'auto')
    .option('--dense-weights <format>', 'as-stored, or q8: attention and LM head as 8-bit (Q8_0) at load', parseDenseWeights, 'as-stored')
    .option('--kv-cache <dtype>', KV_CACHE_HELP, parseKvCache)
    .option('--experts <format>', EXPERTS_HELP, parseExperts, 'mxfp4')
    .option('--activations <mode>', ACTIVATIONS_HELP, parseActivations)
    .option('--json', 'print one JSON object')
    .action(async (dir: string, flags: Pick<SamplingFlags, 'device' | 'denseWeights' | 'kvCache' | 'experts' | 'activations'> & { json?: boolean }) => {
      const model = await loadWithProgress(dir, flags);
      try {
        const params = parameterCounts(model.config);
        if (flags.json) {
          const { gguf, ...info } = model.info;
          // The chat template is long: --json gives its length; the text is in model.info.gguf.chatTemplate.
          const ggufOut = gguf ? { ...gguf, chatTemplate: gguf.chatTemplate === undefined ? undefined : `${gguf.chatTemplate.length} characters` } : undefined;
          process.stdout.write(`${JSON.stringify({ model: dir, config: model.config, parameters: params, ...info, ...(ggufOut ? { gguf: ggufOut } : {}) })}\n`);
          return;
        }
        const c = model.config;
        const lines = [
          `model: ${dir}`,
          `config:`,
          `  vocab_size: ${c.vocabSize}`,
          `  hidden_size: ${c.hiddenSize}`,
          `  intermediate_size: ${c.intermediateSize}`,
          `  num_hidden_layers: ${c.numLayers} (${c.layerTypes.map((t) => (t === 'sliding_attention' ? 'S' : 'F')).join('')}; sliding_window ${c.slidingWindow})`,
          `  experts: ${c.numExperts}, top-${c.expertsPerToken} per token`,
          `  attention heads: ${c.numHeads} query, ${c.numKvHeads} key/value, head_dim ${c.headDim}`,
          `  rope_theta: ${c.ropeTheta}${c.ropeScaling ? `, yarn x${c.ropeScaling.factor} from ${c.ropeScaling.originalMaxPositionEmbeddings}` : ''}`,
          `  max_position_embeddings: ${c.maxPositionEmbeddings}`,
          `  rms_norm_eps: ${c.rmsNormEps}, swiglu_limit: ${c.swigluLimit}`,
          `parameters: ${human(params.total)} total (${params.total}), ${human(params.activePerToken)} active per token (${params.activePerToken})`,
          `  embedding ${human(params.embedding)}, unembedding ${human(params.unembedding)}, attention ${human(params.attention)}, router ${human(params.router)}, experts ${human(params.experts)}`,
          `format: ${model.info.format}${model.info.gguf ? ` (GGUF v${model.info.gguf.version}, ${Object.entries(model.info.gguf.tensorTypes).map(([t, n]) => `${n} ${t}`).join(', ')}${model.info.gguf.chatTemplate !== undefined ? ', chat template in metadata' : ''})` : ''}`,
          `bytes on disk: ${bytes(model.info.bytesOnDisk)} in ${model.info.files.length} file(s)`,
          `bytes in memory: ${bytes(model.info.weightBytes)}`,
          `tensor groups (file dtype -> run as: bytes in file / in memory, converted at load):`,
          ...model.info.groups.map(
            (g) => `  ${g.group}: ${g.fileDtype}${g.dtype !== g.fileDtype ? ` -> ${g.dtype}` : ''}: ${bytes(g.fileBytes)} / ${bytes(g.memoryBytes)}${g.convertedBytes ? `, ${bytes(g.convertedBytes)} converted` : ''}`,
          ),
          model.info.conversions.length
            ? `converted at load (${model.info.convertSeconds.toFixed(2)} s): ${model.info.conversions.join('; ')}`
            : 'converted at load: nothing (weights read in place from the file mapping)',
          `load time: ${model.info.loadSeconds.toFixed(2)} s`,
          `backend: ${model.info.backend}, device: ${model.info.device}${model.info.fallbackReason ? ` (${model.info.fallbackReason})` : ''}`,
          `kv cache: ${model.info.kvCache}`,
          `activations: ${model.info.activations}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        await model.dispose();
      }
    });
}
