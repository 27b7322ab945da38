// Shared by bench/e2e.mjs and bench/side-by-side.mjs (a module, not a benchmark): the bytes one decoded
// token reads, the numerator of the CPU decode roofline (bytes / read bandwidth).

/**
 * Bytes a decode step reads from `model`'s weights, as the model holds them (model.info.groups: bf16,
 * Q8_0, MXFP4 ...): the routed share of the experts (expertsPerToken / numExperts), one embedding row,
 * every other tensor whole. Synthetic weights report no groups: then the checkpoint's dtypes (MXFP4
 * experts, bf16 attention, embedding and LM head).
 */
export function decodeBytesPerToken(model) {
  const c = model.config;
  let bytes = 0;
  for (const g of model.info.groups)
    bytes += g.group === 'experts' ? (g.memoryBytes * c.expertsPerToken) / c.numExperts
      : g.group === 'embedding' ? g.memoryBytes / c.vocabSize : g.memoryBytes;
  if (!model.info.groups.length) {
    const mxfp4Row = (cols) => cols / 2 + cols / 32;
    const expertBytes = c.expertsPerToken * c.numLayers * (2 * c.intermediateSize * mxfp4Row(c.hiddenSize) + c.hiddenSize * mxfp4Row(c.intermediateSize));
    const attnBytes = c.numLayers * 2 * (c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim * 2);
    bytes = expertBytes + attnBytes + c.vocabSize * c.hiddenSize * 2;
  }
  return bytes;
}
