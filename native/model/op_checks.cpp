#include "op_checks.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace gptoss::checks {

namespace {

// t's dtype is one of `dtypes`; the message lists them ("expected dtype bf16 or f32, got ...").
void expect_dtype_in(const Tensor& t, std::initializer_list<DType> dtypes, const char* what) {
  if (std::find(dtypes.begin(), dtypes.end(), t.dtype) != dtypes.end()) return;
  std::string names;
  for (DType d : dtypes) names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
  throw type_error(std::string(what) + ": expected dtype " + names + ", got " + t.describe());
}

// A KV cache pair [ctx, kvHeads, D]: (kCache's dtype, vCache's dtype) one of the backend's cache
// types (kv_types(): K and V alike, or f32 K with f16 V), vCache of kCache's shape.
void cache_pair(const Tensor& k_cache, const Tensor& v_cache, std::initializer_list<KvCacheType> cache_types,
                const char* k_what, const char* v_what) {
  bool key_ok = false;
  std::string keys, values;
  std::vector<DType> seen;
  for (KvCacheType t : cache_types) {
    if (t.key == k_cache.dtype && t.value == v_cache.dtype) {
      expect_ndim(k_cache, 3, k_what);
      return;
    }
    if (std::find(seen.begin(), seen.end(), t.key) == seen.end()) {
      seen.push_back(t.key);
      keys += (keys.empty() ? "" : " or ") + std::string(dtype_name(t.key));
    }
    if (t.key == k_cache.dtype) {
      key_ok = true;
      values += (values.empty() ? "" : " or ") + std::string(dtype_name(t.value));
    }
  }
  if (!key_ok) throw type_error(std::string(k_what) + ": expected dtype " + keys + ", got " + k_cache.describe());
  throw type_error(std::string(v_what) + ": expected dtype " + values + " (with kCache " + dtype_name(k_cache.dtype) +
                   "), got " + v_cache.describe());
}

// The joined gateUp's layouts: transformers' bf16 [E, H, 2*I] on the CPU (rows = inputs), and rows =
// outputs [E, 2*I, H] for MXFP4 blocks and for bf16 on a GPU (kernels.transposeExperts makes it); what
// a wrong shape's error says of each (tests match these words).
struct GateUpLayout {
  bool rows_are_outputs;  // [E, 2*I, H]; else [E, H, 2*I]
  const char* name;       // "moe: bf16 gateUp", then " on <device>" when names_device
  bool names_device;
  const char* note;       // after the expected shape
};
constexpr GateUpLayout kGateUpLayouts[] = {
    {false, "moe: bf16 gateUp", false, ""},  // bf16 on the CPU
    {true, "moe: bf16 gateUp", true,         // bf16 on a GPU
     " (rows = outputs; transformers' [E, H, 2*I] goes through kernels.transposeExperts, as loadModel does)"},
    {true, "moe: gateUp", false, ""},  // MXFP4
};

struct ExpertsDims {
  int64_t experts, intermediate;
};
// gateUp's E and I in `layout`, for hidden size h: 3 dimensions, H where the layout puts it, an even 2*I.
ExpertsDims gate_up_dims(const Tensor& gate_up, int64_t h, const GateUpLayout& layout, const Device& device) {
  expect_ndim(gate_up, 3, "moe: gateUp");
  const int64_t inter2 = gate_up.dim(layout.rows_are_outputs ? 1 : 2);
  if (gate_up.dim(layout.rows_are_outputs ? 2 : 1) != h || inter2 % 2 != 0) {
    const std::string hs = std::to_string(h);
    throw range_error(std::string(layout.name) + (layout.names_device ? " on " + device.str() : "") + " must be " +
                      (layout.rows_are_outputs ? "[E, 2*I, " + hs + "]" : "[E, " + hs + ", 2*I]") + layout.note +
                      ", got " + gate_up.describe());
  }
  return {gate_up.dim(0), inter2 / 2};
}

}  // namespace

void placed(const Tensor& t, const Device& device, const char* what) {
  if (device.kind == DeviceKind::CPU) {
    if (t.device.kind != DeviceKind::CPU)
      throw type_error(std::string(what) + ": expected a cpu tensor, got " + t.describe());
  } else if (t.device != device) {
    throw type_error(std::string(what) + ": expected a tensor on " + device.str() + ", got " + t.describe());
  }
}

void on_device(const Tensor& t, const Device& device, const char* what) {
  placed(t, device, what);
  if (!t.data && t.numel() != 0) throw type_error(std::string(what) + ": tensor has no data (disposed?)");
  if (t.dtype == DType::MXFP4 && !t.scales && t.numel() != 0)
    throw type_error(std::string(what) + ": mxfp4 tensor has no scales");
}

void param(const Tensor& t, int64_t n, const char* what) {
  expect_dtype_in(t, {DType::BF16, DType::F32}, what);
  if (t.numel() != n)
    throw range_error(std::string(what) + ": expected " + std::to_string(n) + " elements, got " + t.describe());
}

void copy_from_host(const Tensor& dst, size_t bytes, const Device& device) {
  on_device(dst, device, "copy_from_host: dst");
  if (bytes > dst.nbytes() + dst.scale_bytes())
    throw range_error("copy_from_host: " + std::to_string(bytes) + " bytes do not fit " + dst.describe());
}

void copy_to_host(const Tensor& src, size_t bytes, const Device& device) {
  on_device(src, device, "copy_to_host: src");
  if (bytes > src.nbytes() + src.scale_bytes())
    throw range_error("copy_to_host: " + std::to_string(bytes) + " bytes exceed " + src.describe());
}

void embedding(const Tensor& tokens, const Tensor& table, const Tensor& out, const Device& device) {
  on_device(tokens, device, "embedding: tokens");
  on_device(table, device, "embedding: table");
  on_device(out, device, "embedding: out");
  expect_dtype(tokens, DType::I32, "embedding: tokens");
  expect_ndim(tokens, 1, "embedding: tokens");
  if (device.kind == DeviceKind::CPU)
    expect_dtype_in(table, {DType::BF16, DType::F32, DType::F16, DType::Q8_0}, "embedding: table");
  else if (table.dtype != DType::BF16 && table.dtype != DType::F32 && table.dtype != DType::Q8_0)
    throw type_error("embedding: table must be bf16, f32 or q8_0, got " + table.describe());
  expect_ndim(table, 2, "embedding: table");
  expect_dtype(out, DType::F32, "embedding: out");
  expect_shape(out, {tokens.dim(0), table.dim(1)}, "embedding: out");
}

void rmsnorm(const Tensor& x, const Tensor& weight, const Tensor& out, const Device& device) {
  on_device(x, device, "rmsnorm: x");
  on_device(weight, device, "rmsnorm: weight");
  on_device(out, device, "rmsnorm: out");
  expect_dtype(x, DType::F32, "rmsnorm: x");
  if (x.ndim() < 1) throw range_error("rmsnorm: x must have at least one dimension, got " + x.describe());
  param(weight, x.dim(-1), "rmsnorm: weight");
  expect_dtype(out, DType::F32, "rmsnorm: out");
  expect_shape(out, x.shape, "rmsnorm: out");
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, const Tensor& out, const Device& device) {
  on_device(x, device, "linear: x");
  on_device(weight, device, "linear: weight");
  on_device(out, device, "linear: out");
  expect_dtype(x, DType::F32, "linear: x");
  expect_ndim(x, 2, "linear: x");
  // The CPU also reads the other GGUF storage types in place; GPU backends take bf16, MXFP4 and Q8_0
  // (repacked at upload: cuda/q8.cuh).
  if (device.kind == DeviceKind::CPU)
    expect_dtype_in(weight, {DType::BF16, DType::MXFP4, DType::Q8_0, DType::MXFP4_GGML, DType::F32, DType::F16}, "linear: weight");
  else if (weight.dtype != DType::BF16 && weight.dtype != DType::MXFP4 && weight.dtype != DType::Q8_0)
    throw type_error("linear: weight must be bf16, mxfp4 or q8_0, got " + weight.describe());
  expect_ndim(weight, 2, "linear: weight");
  if (weight.dim(1) != x.dim(1))
    throw range_error("linear: weight " + weight.describe() + " does not match x " + x.describe() +
                      " (expected weight [out, " + std::to_string(x.dim(1)) + "])");
  if ((weight.dtype == DType::MXFP4 || weight.dtype == DType::MXFP4_GGML || weight.dtype == DType::Q8_0) &&
      weight.dim(1) % kMxfp4BlockSize != 0)
    throw range_error("linear: mxfp4 weight needs in % 32 == 0, got " + weight.describe());
  if (bias) {
    on_device(*bias, device, "linear: bias");
    param(*bias, weight.dim(0), "linear: bias");
  }
  expect_dtype(out, DType::F32, "linear: out");
  expect_shape(out, {x.dim(0), weight.dim(0)}, "linear: out");
  if (out.data == x.data) throw range_error("linear: out must not alias x");
}

void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, const Device& device) {
  on_device(x, device, "rope: x");
  on_device(positions, device, "rope: positions");
  on_device(inv_freq, device, "rope: invFreq");
  expect_dtype(x, DType::F32, "rope: x");
  expect_ndim(x, 3, "rope: x");
  if (x.dim(2) % 2 != 0) throw range_error("rope: x head dim must be even, got " + x.describe());
  expect_dtype(positions, DType::I32, "rope: positions");
  expect_shape(positions, {x.dim(0)}, "rope: positions");
  expect_dtype(inv_freq, DType::F32, "rope: invFreq");
  expect_shape(inv_freq, {x.dim(2) / 2}, "rope: invFreq");
}

void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
              const Tensor& v_cache, const Device& device, std::initializer_list<KvCacheType> cache_types) {
  on_device(k, device, "kvStore: k");
  on_device(v, device, "kvStore: v");
  on_device(positions, device, "kvStore: positions");
  on_device(k_cache, device, "kvStore: kCache");
  on_device(v_cache, device, "kvStore: vCache");
  expect_dtype(k, DType::F32, "kvStore: k");
  expect_dtype(v, DType::F32, "kvStore: v");
  expect_ndim(k, 3, "kvStore: k");
  expect_shape(v, k.shape, "kvStore: v");
  expect_dtype(positions, DType::I32, "kvStore: positions");
  expect_shape(positions, {k.dim(0)}, "kvStore: positions");
  cache_pair(k_cache, v_cache, cache_types, "kvStore: kCache", "kvStore: vCache");
  if (k_cache.dim(1) != k.dim(1) || k_cache.dim(2) != k.dim(2))
    throw range_error("kvStore: kCache " + k_cache.describe() + " does not match k " + k.describe() +
                      " (expected [ctx, " + std::to_string(k.dim(1)) + ", " + std::to_string(k.dim(2)) + "])");
  expect_shape(v_cache, k_cache.shape, "kvStore: vCache");
}

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, const Tensor& out, const Device& device,
               std::initializer_list<KvCacheType> cache_types) {
  on_device(q, device, "attention: q");
  on_device(k_cache, device, "attention: kCache");
  on_device(v_cache, device, "attention: vCache");
  on_device(sinks, device, "attention: sinks");
  on_device(positions, device, "attention: positions");
  on_device(out, device, "attention: out");
  expect_dtype(q, DType::F32, "attention: q");
  expect_ndim(q, 3, "attention: q");
  cache_pair(k_cache, v_cache, cache_types, "attention: kCache", "attention: vCache");
  expect_shape(v_cache, k_cache.shape, "attention: vCache");
  const int64_t hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2);
  if (k_cache.dim(2) != d) throw range_error("attention: kCache head dim does not match q: " + k_cache.describe());
  if (hkv == 0 || hq % hkv != 0)
    throw range_error("attention: query heads (" + std::to_string(hq) + ") must be a multiple of kv heads (" +
                      std::to_string(hkv) + ")");
  param(sinks, hq, "attention: sinks");
  expect_dtype(positions, DType::I32, "attention: positions");
  expect_shape(positions, {q.dim(0)}, "attention: positions");
  if (sliding_window < 0) throw range_error("attention: slidingWindow must be >= 0");
  expect_dtype(out, DType::F32, "attention: out");
  expect_shape(out, q.shape, "attention: out");
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                     const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                     int sliding_window, const Tensor& out, const Device& device,
                     std::initializer_list<KvCacheType> cache_types) {
  attention(q, k_cache, v_cache, sinks, positions, sliding_window, out, device, cache_types);
  on_device(seq_of_token, device, "pagedAttention: seqOfToken");
  on_device(block_tables, device, "pagedAttention: blockTables");
  expect_dtype(seq_of_token, DType::I32, "pagedAttention: seqOfToken");
  expect_shape(seq_of_token, {q.dim(0)}, "pagedAttention: seqOfToken");
  expect_dtype(block_tables, DType::I32, "pagedAttention: blockTables");
  expect_ndim(block_tables, 2, "pagedAttention: blockTables");
  if (block_size < 1 || k_cache.dim(0) % block_size != 0)
    throw range_error("pagedAttention: blockSize " + std::to_string(block_size) + " must be >= 1 and divide the pool's " +
                      std::to_string(k_cache.dim(0)) + " rows");
}

void gather_rows(const Tensor& x, const Tensor& rows, const Tensor& out, const Device& device) {
  on_device(x, device, "gatherRows: x");
  on_device(rows, device, "gatherRows: rows");
  on_device(out, device, "gatherRows: out");
  expect_dtype(x, DType::F32, "gatherRows: x");
  expect_ndim(x, 2, "gatherRows: x");
  expect_dtype(rows, DType::I32, "gatherRows: rows");
  expect_ndim(rows, 1, "gatherRows: rows");
  expect_dtype(out, DType::F32, "gatherRows: out");
  expect_shape(out, {rows.dim(0), x.dim(1)}, "gatherRows: out");
}

void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, const Tensor& expert_idx,
            const Tensor& expert_weight, const Device& device, int max_k) {
  on_device(x, device, "router: x");
  on_device(weight, device, "router: weight");
  on_device(bias, device, "router: bias");
  on_device(expert_idx, device, "router: expertIdx");
  on_device(expert_weight, device, "router: expertWeight");
  expect_dtype(x, DType::F32, "router: x");
  expect_ndim(x, 2, "router: x");
  if (device.kind == DeviceKind::CPU)
    expect_dtype_in(weight, {DType::BF16, DType::F32}, "router: weight");  // GGUF keeps the router in f32
  else
    expect_dtype(weight, DType::BF16, "router: weight");
  expect_ndim(weight, 2, "router: weight");
  if (weight.dim(1) != x.dim(1))
    throw range_error("router: weight " + weight.describe() + " does not match x " + x.describe());
  const int64_t e = weight.dim(0);
  param(bias, e, "router: bias");
  const int64_t k_max = std::min<int64_t>(e, max_k);
  if (k < 1 || k > k_max)
    throw range_error("router: k must be in [1, " + std::to_string(k_max) + "], got " + std::to_string(k));
  expect_dtype(expert_idx, DType::I32, "router: expertIdx");
  expect_shape(expert_idx, {x.dim(0), k}, "router: expertIdx");
  expect_dtype(expert_weight, DType::F32, "router: expertWeight");
  expect_shape(expert_weight, {x.dim(0), k}, "router: expertWeight");
}

void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
         const Tensor& out, const Device& device) {
  on_device(x, device, "moe: x");
  on_device(expert_idx, device, "moe: expertIdx");
  on_device(expert_weight, device, "moe: expertWeight");
  const bool cpu = device.kind == DeviceKind::CPU;
  if (w.split()) {
    if (!cpu) throw type_error("moe: separate gate and up experts (GGUF) are not supported on " + device.str() + " yet");
    on_device(w.gate, device, "moe: gate");
    on_device(w.up, device, "moe: up");
    on_device(w.gate_bias, device, "moe: gateBias");
    on_device(w.up_bias, device, "moe: upBias");
  } else {
    on_device(w.gate_up, device, "moe: gateUp");
    on_device(w.gate_up_bias, device, "moe: gateUpBias");
  }
  on_device(w.down, device, "moe: down");
  on_device(w.down_bias, device, "moe: downBias");
  on_device(out, device, "moe: out");
  expect_dtype(x, DType::F32, "moe: x");
  expect_ndim(x, 2, "moe: x");
  const int64_t n = x.dim(0), h = x.dim(1);
  int64_t e, inter;
  if (w.split()) {
    expect_dtype(w.gate, DType::MXFP4_GGML, "moe: gate");
    expect_ndim(w.gate, 3, "moe: gate");
    e = w.gate.dim(0);
    inter = w.gate.dim(1);
    if (w.gate.dim(2) != h) throw range_error("moe: gate must be [E, I, " + std::to_string(h) + "], got " + w.gate.describe());
    expect_dtype(w.up, DType::MXFP4_GGML, "moe: up");
    expect_shape(w.up, w.gate.shape, "moe: up");
    param(w.gate_bias, e * inter, "moe: gateBias");
    param(w.up_bias, e * inter, "moe: upBias");
  } else {
    const bool bf16 = w.gate_up.dtype == DType::BF16;
    if (!bf16 && w.gate_up.dtype != DType::MXFP4)
      throw type_error("moe: gateUp: expected dtype mxfp4 or bf16, got " + w.gate_up.describe());
    const ExpertsDims d = gate_up_dims(w.gate_up, h, kGateUpLayouts[!bf16 ? 2 : cpu ? 0 : 1], device);
    e = d.experts;
    inter = d.intermediate;
    if (bf16 && !cpu && w.down.dtype != DType::BF16)
      throw type_error("moe: down must be bf16 like gateUp on " + device.str() + ", got " + w.down.describe());
    param(w.gate_up_bias, e * 2 * inter, "moe: gateUpBias");
  }
  if (h % kMxfp4BlockSize != 0 || inter % kMxfp4BlockSize != 0)
    throw range_error("moe: hidden and intermediate sizes must be multiples of 32, got hidden " + std::to_string(h) +
                      ", intermediate " + std::to_string(inter));
  if (cpu && w.down.dtype == DType::BF16) {
    expect_shape(w.down, {e, inter, h}, "moe: down (bf16, [E, I, H])");
  } else if (w.down.dtype == DType::BF16) {
    if (w.gate_up.dtype != DType::BF16)
      throw type_error("moe: down must be mxfp4 like gateUp on " + device.str() + ", got " + w.down.describe());
    expect_shape(w.down, {e, h, inter}, "moe: down (bf16 on a GPU: [E, H, I], rows = outputs)");
  } else {
    if (w.down.dtype != DType::MXFP4 && !(cpu && w.down.dtype == DType::MXFP4_GGML))
      throw type_error(std::string("moe: down: expected dtype mxfp4") + (cpu ? ", mxfp4-ggml" : "") + " or bf16, got " + w.down.describe());
    expect_shape(w.down, {e, h, inter}, "moe: down");
  }
  param(w.down_bias, e * h, "moe: downBias");
  expect_dtype(expert_idx, DType::I32, "moe: expertIdx");
  expect_ndim(expert_idx, 2, "moe: expertIdx");
  if (expert_idx.dim(0) != n)
    throw range_error("moe: expertIdx must have " + std::to_string(n) + " rows, got " + expert_idx.describe());
  expect_dtype(expert_weight, DType::F32, "moe: expertWeight");
  expect_shape(expert_weight, expert_idx.shape, "moe: expertWeight");
  expect_dtype(out, DType::F32, "moe: out");
  expect_shape(out, x.shape, "moe: out");
  if (out.data == x.data) throw range_error("moe: out must not alias x");
}

void add(const Tensor& acc, const Tensor& x, const Device& device) {
  on_device(acc, device, "add: acc");
  on_device(x, device, "add: x");
  expect_dtype(acc, DType::F32, "add: acc");
  expect_dtype(x, DType::F32, "add: x");
  expect_shape(x, acc.shape, "add: x");
}

void add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& normed,
                 const Device& device) {
  add(x, residual, device);
  rmsnorm(x, weight, normed, device);
}

void qkv(const Tensor& xn, const Tensor& wq, const Tensor& bq, const Tensor& wk, const Tensor& bk, const Tensor& wv,
         const Tensor& bv, const Tensor& q, const Tensor& k, const Tensor& v, const Device& device) {
  linear(xn, wq, &bq, q, device);
  linear(xn, wk, &bk, k, device);
  linear(xn, wv, &bv, v, device);
}

void rope_kv_store(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& inv_freq,
                   const Tensor& k_cache, const Tensor& v_cache, const Device& device,
                   std::initializer_list<KvCacheType> cache_types) {
  rope(q, positions, inv_freq, device);
  rope(k, positions, inv_freq, device);
  kv_store(k, v, positions, k_cache, v_cache, device, cache_types);
}

void mxfp4_dequantize(const Tensor& packed, const Tensor& out, const Device& device) {
  on_device(packed, device, "mxfp4Dequantize: packed");
  on_device(out, device, "mxfp4Dequantize: out");
  expect_dtype(packed, DType::MXFP4, "mxfp4Dequantize: packed");
  if (packed.ndim() < 1 || packed.dim(-1) % kMxfp4BlockSize != 0)
    throw range_error("mxfp4Dequantize: packed must have a last dimension that is a multiple of 32, got " +
                      packed.describe());
  if (out.dtype != DType::F32 && out.dtype != DType::BF16)
    throw type_error("mxfp4Dequantize: out must be f32 or bf16, got " + out.describe());
  expect_shape(out, packed.shape, "mxfp4Dequantize: out");
}

int32_t logit_row_code(const float* l, int64_t v) {
  bool finite = false;
  for (int64_t i = 0; i < v; ++i) {
    const float x = l[i];
    if (std::isnan(x) || x == INFINITY) return sample_bad_logit_code(i);
    finite = finite || x != -INFINITY;
  }
  return finite ? 0 : kSampleNoFiniteLogit;
}

int32_t sampled_token(int32_t code, const char* fn) {
  if (code >= 0) return code;
  if (code == kSampleNoFiniteLogit)
    throw range_error(std::string(fn) + ": every logit is -Infinity, there is no token to draw");
  throw range_error(std::string(fn) + ": logits[" + std::to_string(-2 - int64_t(code)) +
                    "] is NaN or +Infinity, there is no distribution to draw from");
}

void sample(const Tensor& logits, const SampleParams& p, float uniform, const Device& device) {
  on_device(logits, device, "sample: logits");
  expect_dtype(logits, DType::F32, "sample: logits");
  if (!(logits.ndim() == 1 || (logits.ndim() == 2 && logits.dim(0) >= 1)) || logits.dim(-1) < 1)
    throw range_error("sample: logits must be [V] or [n, V] with V >= 1 (row 0 is used), got " + logits.describe());
  if (!(p.temperature >= 0.f) || !std::isfinite(p.temperature))
    throw range_error("sample: temperature must be a finite number >= 0");
  if (p.top_k < 0) throw range_error("sample: topK must be >= 0");
  if (!(p.top_p > 0.f && p.top_p <= 1.f)) throw range_error("sample: topP must be in (0, 1]");
  if (!(p.min_p >= 0.f && p.min_p <= 1.f)) throw range_error("sample: minP must be in [0, 1]");
  if (!(uniform >= 0.f && uniform < 1.f)) throw range_error("sample: uniform must be in [0, 1)");
}

void token_slot(const Tensor& token, const Device& device, const char* what) {
  on_device(token, device, what);
  expect_dtype(token, DType::I32, what);
  if (token.numel() < 1) throw range_error(std::string(what) + " must hold at least 1 element, got " + token.describe());
}

void logprob_top(const Tensor& logits, const std::vector<int32_t>& rows, const std::vector<int>& tops, const Device& device) {
  if (tops.size() != rows.size()) throw range_error("logprobTop: rows and tops must have one entry a row");
  if (logits.dtype != DType::F32 || logits.ndim() != 2 || logits.device != device)
    throw type_error("logprobTop: logits must be f32 [rows, vocab] on " + device.str() + ", got " + logits.describe());
  for (size_t j = 0; j < rows.size(); ++j) {
    if (rows[j] < 0 || rows[j] >= logits.dim(0))
      throw range_error("logprobTop: rows[" + std::to_string(j) + "] = " + std::to_string(rows[j]) + " is outside the logits' " +
                        std::to_string(logits.dim(0)) + " rows");
    if (tops[j] < 0 || tops[j] > kMaxTopLogprobs)
      throw range_error("logprobTop: tops[" + std::to_string(j) + "] must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " +
                        std::to_string(tops[j]));
  }
}

}  // namespace gptoss::checks
