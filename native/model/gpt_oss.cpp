// gpt-oss forward pass, top-down, in the order of transformers' modeling_gpt_oss.py and
// openai/gpt-oss gpt_oss/torch/model.py: embedding -> layers (attention block, MoE block) -> norm -> LM head.
#include "gpt_oss.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sys/mman.h>
#include <unistd.h>

#include "core/read_ahead.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace gptoss {

// ---------------------------------------------------------------------------------------------
// YaRN (transformers modeling_rope_utils._compute_yarn_parameters, truncate=false as gpt-oss sets it)
// ---------------------------------------------------------------------------------------------
void yarn_inv_freq(const ModelConfig& c, std::vector<float>& inv_freq, float& scale) {
  const int dim = c.head_dim;
  const double base = c.rope_theta;
  inv_freq.assign(dim / 2, 0.f);
  if (!c.rope_yarn || c.rope_factor <= 1.0) {
    for (int i = 0; i < dim / 2; ++i) inv_freq[i] = float(1.0 / std::pow(base, double(2 * i) / dim));
    scale = 1.f;
    return;
  }
  const double factor = c.rope_factor;
  // Concentration: cos and sin are both multiplied by 0.1 ln(factor) + 1 (get_mscale).
  scale = float(0.1 * std::log(factor) + 1.0);
  auto correction_dim = [&](double rotations) {
    return dim * std::log(c.rope_original_max_positions / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = correction_dim(c.rope_beta_fast), high = correction_dim(c.rope_beta_slow);
  if (c.rope_truncate) {  // ggml/llama.cpp floor/ceil; gpt-oss's config says truncate: false
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < dim / 2; ++i) {
    // transformers computes pos_freqs in float32: base ** (arange(0, dim, 2) / dim)
    float pos_freq = float(std::pow(base, double(float(2 * i) / float(dim))));
    float extrapolation = 1.0f / pos_freq;
    float interpolation = 1.0f / (float(factor) * pos_freq);
    float ramp = std::min(1.0f, std::max(0.0f, float((i - low) / (high - low))));
    float extrapolation_factor = 1.0f - ramp;
    inv_freq[i] = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
}

// ---------------------------------------------------------------------------------------------
// Binding checkpoint tensors (HF names) to the weights, with dtype and shape checks.
// ---------------------------------------------------------------------------------------------
namespace {

// A record's dtype string (lib/loader: safetensors dtypes; GGUF types as ggml names them, MXFP4 as
// MXFP4_GGML) -> the DType it binds as, or false when none.
bool parse_storage_dtype(const std::string& s, DType& out) {
  if (s == "BF16") out = DType::BF16;
  else if (s == "F32") out = DType::F32;
  else if (s == "F16") out = DType::F16;
  else if (s == "Q8_0") out = DType::Q8_0;
  else if (s == "MXFP4_GGML") out = DType::MXFP4_GGML;
  else return false;
  return true;
}

const char* role_accepts(WeightRole role) {
  switch (role) {
    case WeightRole::Param: return "BF16, F32 or F16";
    case WeightRole::Matrix: case WeightRole::Embedding: return "BF16, F32, F16 or Q8_0";
    case WeightRole::Router: return "BF16, F32 or F16";
    case WeightRole::Experts: return "MXFP4";
  }
  return "?";
}

bool role_takes(WeightRole role, DType d) {
  switch (role) {
    case WeightRole::Param: case WeightRole::Router: return d == DType::BF16 || d == DType::F32 || d == DType::F16;
    case WeightRole::Matrix: case WeightRole::Embedding:
      return d == DType::BF16 || d == DType::F32 || d == DType::F16 || d == DType::Q8_0;
    case WeightRole::Experts: return d == DType::MXFP4_GGML;
  }
  return false;
}

// Maps fresh heap memory [p, p + bytes) before a conversion writes it, in disjoint 2 MiB pieces (a
// page table's span), a thread each (MADV_POPULATE_WRITE; on kernels before 5.14 a write of each
// page's own byte). Left to the converting threads' first writes, every thread of a
// load-time quantization writes a block of every row of the same expert at once, so they all fault
// the same fresh pages: each allocates and zeroes a page, one wins and the rest free theirs, under
// the same page-table lock (minor faults grew with the thread count: bench/RESULTS.md). The bytes
// are not changed (their value is whatever the allocator gave; the conversion writes every one).
static void map_for_writing(void* p, size_t bytes) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (!bytes) return;
  const size_t span = size_t(2) << 20, page = size_t(sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  const uintptr_t first = b / span * span;
  const int64_t pieces = int64_t((e - first + span - 1) / span);
  parallel_for(pieces, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uintptr_t s = std::max(b, first + uintptr_t(i) * span), t = std::min(e, first + uintptr_t(i + 1) * span);
      // page-aligned inside [b, e): the allocation's first and last partial pages are left to the writes
      const uintptr_t ps = (s + page - 1) / page * page, pe = t / page * page;
      if (pe > ps && madvise(reinterpret_cast<void*>(ps), pe - ps, MADV_POPULATE_WRITE) == 0) continue;
      for (uintptr_t a = ps; a < pe; a += page) {  // not the partial pages: other data may share them
        volatile uint8_t* x = reinterpret_cast<volatile uint8_t*>(a);
        *x = *x;
      }
    }
  }, 1);
}

struct Binder {
  const std::vector<std::string>& files;
  const std::vector<std::shared_ptr<MappedFile>>& maps;
  std::map<std::string, const TensorRecord*> by_name;
  Backend& backend;
  const LoadProgress& progress;
  const LoadOptions& options;
  LoadReport& report;
  uint64_t done = 0, total = 0;
  // Set while loading a checkpoint whose experts are converted at load: reads their bytes ahead of
  // the conversion (core/read_ahead.h).
  ReadAhead* ahead = nullptr;
  // File ranges the model runs from in place (the mapping is their memory): the page-in maps these,
  // not the bytes converted at load.
  std::vector<ReadAhead::Range> in_place;
  // Progress counts file bytes read at binding only for tensors converted there (CPU page-in loads).
  bool count_converted_only = false;

  void keep_in_place(const TensorRecord& r) { in_place.push_back({maps[r.file], size_t(r.offset), size_t(r.length)}); }

  // The file a tensor is in; a missing one is reported against the checkpoint's directory when it
  // has several shards.
  std::string file_of(const std::string& name) const {
    auto it = by_name.find(name);
    if (it != by_name.end()) return files[it->second->file];
    if (files.size() == 1) return files[0];
    const size_t slash = files[0].rfind('/');
    return slash == std::string::npos ? std::string(".") : files[0].substr(0, slash);
  }

  const TensorRecord& find(const std::string& name, const std::string& expected) const {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw checkpoint_error(file_of(name), name, "is missing (expected " + expected + ")");
    return *it->second;
  }

  void check_extent(const TensorRecord& r) const {
    const MappedFile& f = *maps[r.file];
    if (r.offset > f.size() || r.length > f.size() - r.offset)
      throw checkpoint_error(file_of(r.name), r.name,
                             "data [" + std::to_string(r.offset) + ", " + std::to_string(r.offset + r.length) +
                                 ") lies past the end of the file (" + std::to_string(f.size()) + " bytes)");
  }

  const TensorRecord& record(const std::string& name, const char* dtype, const Shape& shape) {
    const TensorRecord& r = find(name, dtype + shape_str(shape));
    if (r.dtype != dtype) throw checkpoint_error(file_of(name), name, "has dtype " + r.dtype + ", expected " + dtype + shape_str(shape));
    if (r.shape != shape)
      throw checkpoint_error(file_of(name), name, "has shape " + shape_str(r.shape) + ", expected " + dtype + shape_str(shape));
    check_extent(r);
    return r;
  }

  Tensor host_view(const WeightSlot& slot, const TensorRecord& r, DType dtype, const Shape& shape) {
    Tensor t;
    t.dtype = dtype;
    t.shape = shape;
    t.data = const_cast<uint8_t*>(maps[r.file]->data() + r.offset);
    t.storage = maps[r.file];  // the mapping lives as long as any view of it
    if (t.nbytes() != r.length)
      throw checkpoint_error(file_of(r.name), r.name, "holds " + std::to_string(r.length) + " bytes, expected " + std::to_string(t.nbytes()));
    // safetensors puts the data right after the JSON header, whatever its length: a data section at
    // an odd offset leaves bf16 elements misaligned, and the scalar kernels read them as uint16_t
    // (UB; UBSan: "load of misaligned address" in embed_rows and the matmul tails). Such a tensor is
    // copied once into aligned memory; real checkpoints pad the header to 8 bytes and copy nothing.
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_align(dtype) != 0) {
      Tensor aligned = host_empty(dtype, shape);
      std::memcpy(aligned.data, t.data, t.nbytes());
      // model.info says so (memory beyond the mapping; test/robust/checkpoint-errors.test.ts reads it)
      record_conversion(std::string(slot.group) + ": " + dtype_name(dtype) + " copied to aligned memory (data at a misaligned file offset)");
      return aligned;
    }
    return t;
  }

  // A line of model.info's conversions (what the load did to a group's bytes), once per kind.
  void record_conversion(const std::string& line) {
    if (std::find(report.conversions.begin(), report.conversions.end(), line) == report.conversions.end())
      report.conversions.push_back(line);
  }

  // A conversion that began at t0 has ended: its time goes to the report, and its line (once).
  void conversion_ended(std::chrono::steady_clock::time_point t0, const std::string& line) {
    report.convert_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    record_conversion(line);
  }

  // Adds a bound tensor to its group in the load report.
  void note(const WeightSlot& slot, DType file_dtype, const Tensor& t, uint64_t file_bytes, bool converted) {
    LoadGroup* g = nullptr;
    for (LoadGroup& x : report.groups)
      if (x.group == slot.group) g = &x;
    if (!g) {
      LoadGroup fresh;
      fresh.group = slot.group;
      report.groups.push_back(fresh);
      g = &report.groups.back();
    }
    auto add = [](std::string& list, const char* name) {
      const std::string n = name;
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t end = list.find('+', pos);
        if (end == std::string::npos) end = list.size();
        if (list.compare(pos, end - pos, n) == 0) return;
        pos = end + 1;
      }
      list += (list.empty() ? "" : "+") + n;
    };
    add(g->file_dtypes, dtype_name(file_dtype));
    add(g->memory_dtypes, dtype_name(t.dtype));
    g->file_bytes += file_bytes;
    const uint64_t mem = t.nbytes() + t.scale_bytes();
    g->memory_bytes += mem;
    if (converted) g->converted_bytes += mem;
  }

  Tensor finish(Tensor host, uint64_t bytes, bool converted = true) {
    Tensor t = backend.upload(host);
    if (count_converted_only && !converted) return t;
    done += bytes;
    if (progress) progress(done, total);
    return t;
  }

  // A Hugging Face BF16 tensor, optionally quantized to Q8_0 (denseWeights: 'q8').
  Tensor bf16(const WeightSlot& slot) {
    const TensorRecord& r = record(slot.name, "BF16", slot.shape);
    Tensor t = host_view(slot, r, DType::BF16, slot.shape);
    const bool q8 = options.dense_q8 && slot.role == WeightRole::Matrix;
    if (q8) t = convert(slot, t, DType::Q8_0);
    else keep_in_place(r);
    note(slot, DType::BF16, t, r.length, q8);
    return finish(t, r.length, q8);
  }

  // A GGUF tensor of any dtype the slot's role takes, read in place; f16 vectors widen to f32 and,
  // with denseWeights: 'q8', bf16/f16/f32 matrices quantize to Q8_0 (both into heap memory).
  // For a GPU backend, whose kernels read Hugging Face MXFP4 blocks, bf16 matrices and routers, and
  // Q8_0 (repacked by its upload): ggml's MXFP4 is repacked to the HF blocks, f16/f32 matrices and
  // routers become bf16, and the split gate/up experts stay on the host for join_gate_up().
  Tensor gguf(const WeightSlot& slot) {
    const TensorRecord& r = find(slot.name, std::string(role_accepts(slot.role)) + shape_str(slot.shape));
    DType d;
    if (!parse_storage_dtype(r.dtype, d) || !role_takes(slot.role, d))
      throw checkpoint_error(file_of(r.name), r.name, "has type " + r.dtype + ", which this runtime does not read for this tensor (expected " +
                             role_accepts(slot.role) + ")");
    if (r.shape != slot.shape)
      throw checkpoint_error(file_of(r.name), r.name, "has shape " + shape_str(r.shape) + ", expected " + shape_str(slot.shape));
    if ((d == DType::Q8_0 || d == DType::MXFP4_GGML) && slot.shape.back() % 32 != 0)
      throw checkpoint_error(file_of(r.name), r.name, r.dtype + " rows must hold whole 32-value blocks, got " + shape_str(slot.shape));
    check_extent(r);
    Tensor t = host_view(slot, r, d, slot.shape);
    const bool gpu = backend.device().kind != DeviceKind::CPU;
    bool converted = true;
    if (options.dense_q8 && slot.role == WeightRole::Matrix && d != DType::Q8_0)
      t = convert(slot, t, DType::Q8_0);
    else if (gpu && d == DType::MXFP4_GGML)
      t = convert(slot, t, DType::MXFP4);
    else if (gpu && slot.role != WeightRole::Param && (d == DType::F16 || d == DType::F32))
      t = convert(slot, t, DType::BF16);
    else if (d == DType::F16 && (slot.role == WeightRole::Param || slot.role == WeightRole::Router))
      t = convert(slot, t, DType::F32);
    else
      converted = false;
    if (!converted) keep_in_place(r);
    note(slot, d, t, r.length, converted);
    if (gpu && (slot.name.find(".ffn_gate_exps.") != std::string::npos || slot.name.find(".ffn_up_exps.") != std::string::npos)) {
      done += r.length;  // uploaded by join_gate_up()
      return t;
    }
    return finish(t, r.length, converted);
  }

  // A GGUF layer's experts for a GPU backend: gate and up MXFP4 [E, I, H] (repacked on the host by
  // gguf()) and their biases [E, I] -> gate_up [E, 2I, H] and its bias [E, 2I] with the rows
  // interleaved (even = gate, odd = up: the Hugging Face layout llama.cpp's converter split), uploaded.
  void join_gate_up(MoeWeights& x) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t E = x.gate.dim(0), I = x.gate.dim(1), H = x.gate.dim(2);
    Tensor gu = host_empty(DType::MXFP4, {E, 2 * I, H});
    const int64_t row_bytes = H / 2, row_scales = H / kMxfp4BlockSize;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < I; ++i)
        for (int p = 0; p < 2; ++p) {
          const Tensor& src = p ? x.up : x.gate;
          const int64_t from = e * I + i, to = e * 2 * I + 2 * i + p;
          std::memcpy(gu.ptr<uint8_t>() + to * row_bytes, src.ptr<uint8_t>() + from * row_bytes, row_bytes);
          std::memcpy(static_cast<uint8_t*>(gu.scales) + to * row_scales, static_cast<const uint8_t*>(src.scales) + from * row_scales,
                      row_scales);
        }
    // Biases: f32 (F16 ones were widened by gguf()) or bf16; a mixed pair is joined in f32.
    const DType bd = x.gate_bias.dtype == x.up_bias.dtype ? x.gate_bias.dtype : DType::F32;
    Tensor gub = host_empty(bd, {E, 2 * I});
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < I; ++i)
        for (int p = 0; p < 2; ++p) {
          const Tensor& src = p ? x.up_bias : x.gate_bias;
          const int64_t from = e * I + i, to = e * 2 * I + 2 * i + p;
          if (bd == DType::BF16) gub.ptr<uint16_t>()[to] = src.ptr<uint16_t>()[from];
          else gub.ptr<float>()[to] = src.dtype == DType::BF16 ? bf16_to_f32(src.ptr<uint16_t>()[from]) : src.ptr<float>()[from];
        }
    conversion_ended(t0, "experts: gate and up joined into gate_up, rows interleaved (the GPU kernels' layout)");
    x.gate_up = backend.upload(gu);
    x.gate_up_bias = backend.upload(gub);
    x.gate = x.up = x.gate_bias = x.up_bias = Tensor();
  }

  // src (mapped) -> a heap tensor of `to`, timed into the report.
  Tensor convert(const WeightSlot& slot, const Tensor& src, DType to) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = host_empty(to, src.shape);
    const char* why = " (f16 vectors run as f32)";
    if (to == DType::Q8_0) {
      cpu::quantize_q8_0(src, out);
      why = " (denseWeights q8)";
    } else if (to == DType::MXFP4) {
      cpu::mxfp4_from_ggml(src, out);
      why = " (ggml blocks repacked for the GPU kernels)";
    } else if (to == DType::BF16) {  // f16 or f32 -> bf16, rounded to nearest even (exact for bf16-born values)
      uint16_t* o = out.ptr<uint16_t>();
      const int64_t n = src.numel();
      if (src.dtype == DType::F16)
        for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(f16_to_f32(src.ptr<uint16_t>()[i]));
      else
        for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(src.ptr<float>()[i]);
      why = " (the GPU kernels read bf16)";
    } else {  // f16 -> f32
      for (int64_t i = 0; i < src.numel(); ++i) out.ptr<float>()[i] = f16_to_f32(src.ptr<uint16_t>()[i]);
    }
    conversion_ended(t0, std::string(slot.group) + ": " + dtype_name(src.dtype) + " -> " + dtype_name(to) + why);
    return out;
  }

  // Converts the mapped tensor of record `r` ([E, ...], read once) a few experts at a time: each
  // group's bytes are waited for (the read-ahead thread reads them; the time waited is the load's
  // read wait, the rest of convert_seconds is the conversion), converted by `fn(e0, n)` on the
  // thread pool, then released (their page mappings dropped: the model never reads them again).
  template <typename Fn>
  void streamed(const TensorRecord& r, int64_t experts, Fn&& fn) {
    const int ai = ahead ? ahead->find(maps[r.file].get(), size_t(r.offset), size_t(r.length)) : -1;
    const size_t per = experts ? size_t(r.length / uint64_t(experts)) : 0;
    // ~64 MiB a step: enough tasks for every thread (an expert is its columns / 32 of them);
    // GPTOSS_CONVERT_STEP_BYTES sets it (tests: one expert a step).
    const char* env = std::getenv("GPTOSS_CONVERT_STEP_BYTES");
    const long long env_bytes = env ? std::atoll(env) : 0;
    const size_t step_bytes = env_bytes > 0 ? size_t(env_bytes) : size_t(64) << 20;
    const int64_t step = per ? std::max<int64_t>(1, std::min<int64_t>(experts, int64_t(step_bytes / per))) : experts;
    for (int64_t e0 = 0; e0 < experts; e0 += step) {
      const int64_t n = std::min(step, experts - e0);
      const size_t b = size_t(e0) * per, e = size_t(e0 + n) * per;
      if (ai >= 0) {
        double waited = 0;
        const bool ok = ahead->wait(ai, e, waited);
        report.read_wait_seconds += waited;
        report.convert_seconds -= waited;  // added back by the caller's total: convert_seconds is the conversion alone
        if (!ok) throw checkpoint_error(file_of(r.name), r.name, "was truncated while it was being loaded (" + maps[r.file]->changed() + ")");
      }
      fn(e0, n);
      if (ai >= 0) ahead->release(ai, b, e);
    }
  }

  // Experts saved dense by transformers (Mxfp4Config(dequantize=True), then save_pretrained):
  // `<prefix>` [E, C, R] (the transpose of the blocks' [E, R, C]), bf16/f16/f32. Quantized to MXFP4
  // [E, R, C] at load, or (experts: 'bf16') run as stored.
  Tensor dense_experts(const WeightSlot& slot, const TensorRecord& r) {
    const Shape stored{slot.shape[0], slot.shape[2], slot.shape[1]};
    DType d;
    if (!parse_storage_dtype(r.dtype, d) || (d != DType::BF16 && d != DType::F32 && d != DType::F16))
      throw checkpoint_error(file_of(r.name), r.name, "has dtype " + r.dtype + ", expected BF16, F16 or F32 " + shape_str(stored) +
                                                          " (or MXFP4 " + slot.name + "_blocks/_scales)");
    if (r.shape != stored)
      throw checkpoint_error(file_of(r.name), r.name, "has shape " + shape_str(r.shape) + ", expected " + shape_str(stored) +
                                                          " (transformers' layout: the transpose of [experts, out, in])");
    check_extent(r);
    Tensor t = host_view(slot, r, d, stored);
    if (options.experts_bf16) {
      if (d != DType::BF16)
        throw checkpoint_error(file_of(r.name), r.name, "is " + r.dtype + ": experts: 'bf16' runs BF16 experts as stored; load it with experts: 'mxfp4'");
      if (backend.device().kind == DeviceKind::CPU) {
        keep_in_place(r);
        note(slot, d, t, r.length, false);
        return finish(t, r.length, false);
      }
      // A GPU's kernels read [E, out, in] rows (the GEMM tile's W [N, K], a warp a row in the decode
      // GEMV): transposed here once, then uploaded (backend.h: MoeWeights).
      const auto t0 = std::chrono::steady_clock::now();
      Tensor rows = host_empty(DType::BF16, slot.shape);
      streamed(r, t.dim(0), [&](int64_t e0, int64_t n) {
        Tensor out = rows.rows(e0, n);
        cpu::transpose_experts(t.rows(e0, n), out);
      });
      conversion_ended(t0, std::string(slot.group) + ": bf16 [E, in, out] -> [E, out, in] (experts bf16: the GPU kernels' rows)");
      note(slot, d, rows, r.length, true);
      return finish(rows, r.length);
    }
    const auto t0 = std::chrono::steady_clock::now();
    Tensor q = host_empty(DType::MXFP4, slot.shape);
    // The source is read with pread into each converting thread's buffer (cpu/ops.h: SourceReader),
    // not through the mapping (unless host_view copied it to aligned memory), and the destination is
    // mapped first, a thread a piece: 16 threads faulting the same pages in, then the unmapping after
    // each step, cost ~5 s of system time a GB (bench/RESULTS.md). GPTOSS_CONVERT_READ=map: the
    // mapping and first-write faults, as before (for A/B runs).
    const char* read_env = std::getenv("GPTOSS_CONVERT_READ");
    const bool mapped = read_env && std::string(read_env) == "map";
    const MappedFile& file = *maps[r.file];
    const bool from_file = !mapped && t.data == file.data() + r.offset;
    if (!mapped) map_for_writing(q.data, q.nbytes() + q.scale_bytes());
    const size_t per_expert = t.dim(0) ? size_t(r.length / uint64_t(t.dim(0))) : 0;
    streamed(r, t.dim(0), [&](int64_t e0, int64_t n) {
      Tensor out = q.rows(e0, n);
      if (!from_file) return cpu::quantize_mxfp4_transposed(t.rows(e0, n), out);
      const size_t base = size_t(r.offset) + size_t(e0) * per_expert;
      cpu::quantize_mxfp4_transposed(d, {n, stored[1], stored[2]}, [&](size_t off, size_t len, void* dst) {
        if (!file.read(base + off, dst, len))
          throw checkpoint_error(file_of(r.name), r.name, "was truncated while it was being loaded (" + file.changed() + ")");
      }, out);
    });
    conversion_ended(t0, std::string(slot.group) + ": " + dtype_name(d) + " -> mxfp4 (experts mxfp4)");
    note(slot, d, q, r.length, true);
    return finish(q, r.length);
  }

  static size_t dtype_align(DType d) {
    return d == DType::BF16 || d == DType::F16 ? 2 : d == DType::F32 || d == DType::I32 ? 4 : 1;
  }

  // `<prefix>_blocks` U8 [E, R, C/32, 16] + `<prefix>_scales` U8 [E, R, C/32] -> MXFP4 [E, R, C].
  Tensor mxfp4(const WeightSlot& slot) {
    const std::string& prefix = slot.name;
    if (!by_name.count(prefix + "_blocks") && by_name.count(prefix)) return dense_experts(slot, *by_name.at(prefix));
    const int64_t experts = slot.shape[0], rows = slot.shape[1], cols = slot.shape[2];
    const int64_t groups = cols / kMxfp4BlockSize;
    const TensorRecord& b = record(prefix + "_blocks", "U8", {experts, rows, groups, kMxfp4BlockBytes});
    const TensorRecord& s = record(prefix + "_scales", "U8", {experts, rows, groups});
    Tensor t;
    t.dtype = DType::MXFP4;
    t.shape = {experts, rows, cols};
    t.data = const_cast<uint8_t*>(maps[b.file]->data() + b.offset);
    t.scales = const_cast<uint8_t*>(maps[s.file]->data() + s.offset);
    if (b.file == s.file) {
      t.storage = maps[b.file];
    } else {  // keep both shards mapped
      auto keep = std::make_shared<std::pair<std::shared_ptr<MappedFile>, std::shared_ptr<MappedFile>>>(maps[b.file], maps[s.file]);
      t.storage = std::shared_ptr<void>(keep, keep.get());
    }
    keep_in_place(b);
    keep_in_place(s);
    note(slot, DType::MXFP4, t, b.length + s.length, false);
    return finish(t, b.length + s.length, false);
  }
};

}  // namespace

uint64_t WeightSlot::bytes() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return dtype == DType::MXFP4 ? dtype_bytes(DType::MXFP4, n) + uint64_t(n / kMxfp4BlockSize) : dtype_bytes(dtype, n);
}

std::vector<WeightSlot> weight_slots(const ModelConfig& c, Weights& w, WeightFormat format) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, E = c.num_experts, V = c.vocab_size;
  const int64_t D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const bool gguf = format == WeightFormat::Gguf;
  w.layers.assign(c.num_layers, LayerWeights());
  std::vector<WeightSlot> out;
  // hf: the Hugging Face name; gg: llama.cpp's (llama-arch.cpp, LLM_ARCH_OPENAI_MOE).
  auto slot = [&](WeightRole role, const char* group, const std::string& hf, const std::string& gg, Shape shape, Tensor& t) {
    out.push_back({role == WeightRole::Experts ? DType::MXFP4 : DType::BF16, gguf ? gg : hf, std::move(shape), &t, role, group});
  };
  slot(WeightRole::Embedding, "embedding", "model.embed_tokens.weight", "token_embd.weight", {V, H}, w.embedding);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[l];
    L.sliding = c.layer_sliding[l] != 0;
    using R = WeightRole;
    slot(R::Param, "norms", p + "input_layernorm.weight", b + "attn_norm.weight", {H}, L.attn.norm);
    slot(R::Matrix, "attention", p + "self_attn.q_proj.weight", b + "attn_q.weight", {Hq * D, H}, L.attn.q);
    slot(R::Param, "attention", p + "self_attn.q_proj.bias", b + "attn_q.bias", {Hq * D}, L.attn.q_bias);
    slot(R::Matrix, "attention", p + "self_attn.k_proj.weight", b + "attn_k.weight", {Hkv * D, H}, L.attn.k);
    slot(R::Param, "attention", p + "self_attn.k_proj.bias", b + "attn_k.bias", {Hkv * D}, L.attn.k_bias);
    slot(R::Matrix, "attention", p + "self_attn.v_proj.weight", b + "attn_v.weight", {Hkv * D, H}, L.attn.v);
    slot(R::Param, "attention", p + "self_attn.v_proj.bias", b + "attn_v.bias", {Hkv * D}, L.attn.v_bias);
    slot(R::Matrix, "attention", p + "self_attn.o_proj.weight", b + "attn_output.weight", {H, Hq * D}, L.attn.o);
    slot(R::Param, "attention", p + "self_attn.o_proj.bias", b + "attn_output.bias", {H}, L.attn.o_bias);
    slot(R::Param, "attention", p + "self_attn.sinks", b + "attn_sinks.weight", {Hq}, L.attn.sinks);
    slot(R::Param, "norms", p + "post_attention_layernorm.weight", b + "post_attention_norm.weight", {H}, L.mlp.norm);
    slot(R::Router, "router", p + "mlp.router.weight", b + "ffn_gate_inp.weight", {E, H}, L.mlp.router);
    slot(R::Param, "router", p + "mlp.router.bias", b + "ffn_gate_inp.bias", {E}, L.mlp.router_bias);
    MoeWeights& X = L.mlp.experts;
    if (gguf) {  // llama.cpp splits gate_up by rows: gate = rows 0::2, up = rows 1::2 (convert_hf_to_gguf.py)
      slot(R::Experts, "experts", "", b + "ffn_gate_exps.weight", {E, I, H}, X.gate);
      slot(R::Param, "experts", "", b + "ffn_gate_exps.bias", {E, I}, X.gate_bias);
      slot(R::Experts, "experts", "", b + "ffn_up_exps.weight", {E, I, H}, X.up);
      slot(R::Param, "experts", "", b + "ffn_up_exps.bias", {E, I}, X.up_bias);
    } else {
      slot(R::Experts, "experts", p + "mlp.experts.gate_up_proj", "", {E, 2 * I, H}, X.gate_up);
      slot(R::Param, "experts", p + "mlp.experts.gate_up_proj_bias", "", {E, 2 * I}, X.gate_up_bias);
    }
    slot(R::Experts, "experts", p + "mlp.experts.down_proj", b + "ffn_down_exps.weight", {E, H, I}, X.down);
    slot(R::Param, "experts", p + "mlp.experts.down_proj_bias", b + "ffn_down_exps.bias", {E, H}, X.down_bias);
  }
  slot(WeightRole::Param, "norms", "model.norm.weight", "output_norm.weight", {H}, w.norm);
  slot(WeightRole::Matrix, "lmHead", "lm_head.weight", "output.weight", {V, H}, w.lm_head);
  return out;
}

// The same rules as lib/loader/config.ts parseConfig (which runs first), as ConfigErrors naming the
// config.json field: a config built by hand gets the same answer.
void check_config(const ModelConfig& c) {
  const std::string& f = c.source;
  auto positive = [&](int v, const char* field) {
    if (v <= 0) throw config_error(f, field, "must be positive, got " + std::to_string(v));
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_layers, "num_hidden_layers");
  positive(c.num_experts, "num_local_experts");
  positive(c.num_heads, "num_attention_heads");
  positive(c.num_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  if (c.experts_per_token <= 0 || c.experts_per_token > c.num_experts)
    throw config_error(f, "num_experts_per_tok", std::to_string(c.experts_per_token) + " must be in [1, num_local_experts " +
                                                     std::to_string(c.num_experts) + "]");
  if (c.num_heads % c.num_kv_heads != 0)
    throw config_error(f, "num_key_value_heads", std::to_string(c.num_kv_heads) + " does not divide num_attention_heads " +
                                                     std::to_string(c.num_heads));
  if (c.head_dim % 2 != 0) throw config_error(f, "head_dim", "must be even (RoPE rotates two halves), got " + std::to_string(c.head_dim));
  if (c.hidden_size % kMxfp4BlockSize != 0 || c.intermediate_size % kMxfp4BlockSize != 0)
    throw config_error(f, "hidden_size", "hidden_size and intermediate_size must be multiples of 32 (MXFP4 blocks)");
  if (int(c.layer_sliding.size()) != c.num_layers)
    throw config_error(f, "layer_types", "has " + std::to_string(c.layer_sliding.size()) + " entries, num_hidden_layers is " +
                                             std::to_string(c.num_layers));
  bool sliding = false;
  for (uint8_t s : c.layer_sliding) sliding = sliding || s;
  if (sliding && c.sliding_window < 1)
    throw config_error(f, "sliding_window", "must be >= 1: layer_types has sliding_attention layers (0 would attend to nothing)");
  if (!(c.rope_theta > 0)) throw config_error(f, "rope_theta", "must be > 0 (the RoPE base), got " + std::to_string(c.rope_theta));
  if (!(c.rms_norm_eps >= 0)) throw config_error(f, "rms_norm_eps", "must be >= 0, got " + std::to_string(c.rms_norm_eps));
  if (!(c.swiglu_limit > 0)) throw config_error(f, "swiglu_limit", "must be > 0, got " + std::to_string(c.swiglu_limit));
  if (c.rope_yarn && !(c.rope_factor >= 1))
    throw config_error(f, "rope_scaling.factor", "must be >= 1 (the context extension), got " + std::to_string(c.rope_factor));
}

void Model::init_rope() {
  std::vector<float> inv_freq;
  yarn_inv_freq(config_, inv_freq, rope_scale_);
  Tensor host = host_empty(DType::F32, {int64_t(inv_freq.size())});
  std::copy(inv_freq.begin(), inv_freq.end(), host.ptr<float>());
  rope_inv_freq_ = backend_->upload(host);
}

void Model::set_expert_activations(ExpertActivations a) {
  if (a == ExpertActivations::Q8 && backend_->device().kind != DeviceKind::CPU)
    throw range_error(std::string("activations 'q8' is a CPU mode; device ") + backend_->device().str() +
                      " multiplies f32 activations");
  if (a == ExpertActivations::Bf16 && backend_->device().kind != DeviceKind::CUDA)
    throw range_error(std::string("activations 'bf16' is a CUDA mode; device ") + backend_->device().str() +
                      " multiplies " + (backend_->device().kind == DeviceKind::CPU ? "f32 or q8" : "f32") + " activations");
  expert_activations_ = a;
  for (LayerWeights& layer : weights_.layers) layer.mlp.experts.activations = a;
}

void Model::set_kv_cache(KvCacheType type) {
  const std::vector<KvCacheType> supported = backend_->kv_types();
  if (std::find(supported.begin(), supported.end(), type) == supported.end()) {
    std::string list;
    for (KvCacheType t : supported) list += std::string(list.empty() ? "'" : ", '") + kv_cache_name(t) + "'";
    throw range_error("kvCache '" + kv_cache_name(type) + "' is not available on device " +
                      backend_->device().str() + " (its attention kernels take " + list + ")");
  }
  kv_cache_ = type;
}

std::shared_ptr<Model> Model::load(const ModelConfig& c, const std::vector<std::string>& files,
                                   const std::vector<TensorRecord>& records, const Device& device,
                                   const LoadProgress& progress, const LoadOptions& options) {
  check_config(c);
  auto model = std::shared_ptr<Model>(new Model());
  model->config_ = c;
  model->backend_ = get_backend(device);
  model->kv_cache_ = model->backend_->default_kv_type();
  for (const std::string& f : files) model->files_.push_back(MappedFile::open(f));

  // CUDA reads GGUF files, Q8_0 dense weights and bf16 experts (converted at upload where its kernels
  // need another layout; all three ran on an H200). HIP runs the same sources for GGUF and Q8_0 (q8.cu,
  // wave64; compiled, not yet run on an AMD GPU: README), and `auto` keeps GGUF files on the CPU there
  // (lib/model.ts autoDeviceForFormat). Its bf16 expert kernels are not checked for 64-lane wavefronts
  // yet: refused there.
  if (device.kind == DeviceKind::HIP && options.experts_bf16)
    throw type_error("experts: 'bf16' is not supported on " + device.str() +
                     " yet (the bf16 expert kernels are not checked for AMD's 64-lane wavefronts); load with experts: "
                     "'mxfp4' (quantized at load) or device: 'cpu'");
  // On the CPU the mapping is the weights' memory and binding copies nothing: what takes time is the
  // page-in of the tensors the model runs from in place, so that is what progress counts (file bytes),
  // done here rather than at the first prefill when they fit in 3/4 of RAM (GPTOSS_POPULATE=0: neither;
  // larger: behind the first tokens). Bytes converted at load (bf16 experts) are read once by the
  // conversion and never paged in again. On a GPU the upload reads the pages, and progress counts the
  // bytes bound.
  const bool cpu = device.kind == DeviceKind::CPU;
  uint64_t file_bytes = 0;
  for (const auto& f : model->files_) file_bytes += f->size();
  const char* populate_env = std::getenv("GPTOSS_POPULATE");
  const bool populate = !(populate_env && populate_env[0] == '0');
  const uint64_t ram = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  const std::vector<WeightSlot> slots = weight_slots(c, model->weights_, options.format);
  Binder bind{files, model->files_, {}, *model->backend_, progress, options, model->load_report_, 0, 0, nullptr, {}, false};
  for (const TensorRecord& r : records) {
    if (r.file < 0 || r.file >= int(files.size())) throw range_error("load: tensor '" + r.name + "': file index out of range");
    bind.by_name[r.name] = &r;
    bind.total += r.length;
  }
  // Experts stored dense (a fine-tuned checkpoint) are converted at load, reading each byte once:
  // their ranges, in binding order, for the read-ahead thread (not for experts: 'bf16' on the CPU,
  // which runs them in place).
  std::vector<ReadAhead::Range> streamed;
  uint64_t streamed_bytes = 0;
  if (options.format != WeightFormat::Gguf && !(cpu && options.experts_bf16))
    for (const WeightSlot& slot : slots) {
      if (slot.dtype != DType::MXFP4 || bind.by_name.count(slot.name + "_blocks") || !bind.by_name.count(slot.name)) continue;
      const TensorRecord& r = *bind.by_name.at(slot.name);
      const MappedFile& f = *model->files_[r.file];
      if (r.offset > f.size() || r.length > f.size() - r.offset) continue;  // the binder names the error
      streamed.push_back({model->files_[r.file], size_t(r.offset), size_t(r.length)});
      streamed_bytes += r.length;
    }
  const bool page_in_now = cpu && populate && file_bytes - streamed_bytes <= ram / 4 * 3;
  std::unique_ptr<ReadAhead> ahead;
  if (!streamed.empty()) ahead = std::make_unique<ReadAhead>(std::move(streamed));
  bind.ahead = ahead.get();
  if (page_in_now) {
    // progress: the converted tensors' bytes as they are bound, then the page-in of the rest
    bind.count_converted_only = true;
    bind.total = file_bytes;
  }

  for (const WeightSlot& slot : slots)
    *slot.target = options.format == WeightFormat::Gguf ? bind.gguf(slot)
                   : slot.dtype == DType::MXFP4         ? bind.mxfp4(slot)
                                                        : bind.bf16(slot);
  ahead.reset();
  bind.ahead = nullptr;
  if (!cpu && options.format == WeightFormat::Gguf)
    for (LayerWeights& layer : model->weights_.layers) bind.join_gate_up(layer.mlp.experts);
  // Bytes the model runs from: the mapped tensors plus those converted at load.
  model->weight_bytes_ = 0;
  for (const LoadGroup& g : model->load_report_.groups) model->weight_bytes_ += g.memory_bytes;
  // The page-in: the ranges the model runs from in place, merged per file, in file order.
  std::vector<ReadAhead::Range> in_place = bind.in_place;
  std::sort(in_place.begin(), in_place.end(), [](const ReadAhead::Range& a, const ReadAhead::Range& b) {
    return a.file != b.file ? a.file < b.file : a.offset < b.offset;
  });
  std::vector<ReadAhead::Range> merged;
  for (const ReadAhead::Range& r : in_place) {
    if (!merged.empty() && merged.back().file == r.file && r.offset <= merged.back().offset + merged.back().length)
      merged.back().length = std::max(merged.back().length, r.offset + r.length - merged.back().offset);
    else
      merged.push_back(r);
  }
  if (page_in_now) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t chunk = size_t(64) << 20;
    uint64_t done = bind.done;
    if (progress) progress(done, file_bytes);
    for (const ReadAhead::Range& r : merged)
      for (size_t off = 0; off < r.length; off += chunk) {
        const size_t len = std::min(chunk, r.length - off);
        if (!r.file->populate(r.offset + off, len))
          throw checkpoint_error(r.file->path(), "", "was truncated while it was being loaded (" + r.file->changed() + ")");
        done += len;
        if (progress) progress(std::min(done, file_bytes), file_bytes);
      }
    // headers, and bytes no tensor the model runs from holds
    if (progress && done != file_bytes) progress(file_bytes, file_bytes);
    model->load_report_.page_in_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else if (cpu) {
    if (streamed_bytes == 0)
      for (const auto& f : model->files_) MappedFile::populate_in_background(f);
    else
      MappedFile::populate_in_background(merged);
  } else {
    // A device holds its own copy once the uploads are done: drop the mapping, so that later
    // changes to the files cannot reach the model.
    model->backend_->synchronize();
    model->files_.clear();
  }

  model->prepare_experts();
  model->init_rope();
  return model;
}

void Model::prepare_experts() {
  const auto t0 = std::chrono::steady_clock::now();
  int layers = 0;
  std::string what;
  for (LayerWeights& layer : weights_.layers) {
    std::string line = backend_->prepare_experts(layer.mlp.experts);
    if (!line.empty()) {
      ++layers;
      what = std::move(line);
    }
  }
  if (!layers) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  load_report_.convert_seconds += seconds;
  char buf[96];
  std::snprintf(buf, sizeof buf, "; %d layers in %.1f ms", layers, seconds * 1e3);
  load_report_.conversions.push_back(what + buf);
}

void Model::check_files() const {
  for (const auto& f : files_) {
    std::string what = f->changed();
    if (!what.empty())
      throw checkpoint_error(f->path(), "", what + "; the model reads its weights from this file on the CPU: load it again");
  }
}

// ---------------------------------------------------------------------------------------------
// Session: KV cache and the forward pass.
// ---------------------------------------------------------------------------------------------
Session::Session(std::shared_ptr<Model> model, int max_context) : model_(std::move(model)), max_context_(max_context) {
  const ModelConfig& c = model_->config();
  if (max_context < 1) throw range_error("session: maxContext must be at least 1, got " + std::to_string(max_context));
  if (max_context > c.max_position_embeddings)
    throw range_error("session: maxContext " + std::to_string(max_context) + " exceeds the model's max_position_embeddings " +
                      std::to_string(c.max_position_embeddings));
  Backend& be = model_->backend();
  for (int l = 0; l < c.num_layers; ++l) {
    k_cache_.push_back(be.empty(model_->kv_cache().key, {max_context, c.num_kv_heads, c.head_dim}));
    v_cache_.push_back(be.empty(model_->kv_cache().value, {max_context, c.num_kv_heads, c.head_dim}));
  }
}

Session::~Session() { model_->backend().forget_steps(this); }

void Session::truncate(int length) {
  if (length < 0 || length > length_)
    throw range_error("session: cannot truncate to " + std::to_string(length) + " tokens, it holds " + std::to_string(length_));
  length_ = length;
  have_logits_ = false;
}

bool Activations::resize(Backend& be, const ModelConfig& c, int n_, int logits_rows_, bool gathered_) {
  if (n == n_ && logits_rows == logits_rows_ && gathered == gathered_) return false;
  const int64_t H = c.hidden_size, qw = int64_t(c.num_heads) * c.head_dim, kvw = int64_t(c.num_kv_heads) * c.head_dim;
  const int64_t rows = std::max(logits_rows_, 1);
  n = n_;
  logits_rows = logits_rows_;
  gathered = gathered_;
  tokens = be.empty(DType::I32, {n});
  positions = be.empty(DType::I32, {n});
  x = be.empty(DType::F32, {n, H});
  xn = be.empty(DType::F32, {n, H});
  q = be.empty(DType::F32, {n, qw});
  k = be.empty(DType::F32, {n, kvw});
  v = be.empty(DType::F32, {n, kvw});
  attn = be.empty(DType::F32, {n, qw});
  block_out = be.empty(DType::F32, {n, H});
  expert_idx = be.empty(DType::I32, {n, c.experts_per_token});
  expert_weight = be.empty(DType::F32, {n, c.experts_per_token});
  logit_index = gathered ? be.empty(DType::I32, {rows}) : Tensor();
  picked = gathered ? be.empty(DType::F32, {rows, H}) : Tensor();
  final_norm = be.empty(DType::F32, {rows, H});
  logits = be.empty(DType::F32, {rows, c.vocab_size});
  return true;
}

Activations& Session::scratch(int n, int logits_rows) {
  // Captured steps refer to the old buffers.
  if (scratch_.resize(model_->backend(), model_->config(), n, logits_rows, false)) model_->backend().forget_steps(this);
  return scratch_;
}

// Checks the tokens, copies them in and queues the pass; the logits stay on the device. The caller
// holds the run mutex and advances length_ only once the results are back (a failed pass, even one
// reported late by an asynchronous device, leaves the session as it was).
Activations& Session::enqueue(const int32_t* tokens, int n, int logits_rows) {
  const ModelConfig& c = model_->config();
  if (n < 1) throw range_error("forward: at least one token is needed");
  if (int64_t(length_) + n > max_context_)
    throw range_error("forward: " + std::to_string(length_) + " cached + " + std::to_string(n) + " new tokens exceed maxContext " +
                      std::to_string(max_context_));
  for (int i = 0; tokens && i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw range_error("forward: token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");

  Backend& be = model_->backend();
  have_logits_ = false;
  raw_valid_ = false;
  Activations& s = scratch(n, logits_rows);
  std::vector<int32_t> positions(n);
  for (int i = 0; i < n; ++i) positions[i] = length_ + i;
  if (tokens) be.copy_from_host(s.tokens, tokens, sizeof(int32_t) * n);
  be.copy_from_host(s.positions, positions.data(), sizeof(int32_t) * n);

  // A fixed-shape step (decode: n = 1) is captured once and replayed by backends that can.
  const uint64_t shape_key = (uint64_t(n) << 32) | uint64_t(logits_rows);
  KvView kv{&k_cache_, &v_cache_};
  be.run_step(shape_key, this, [&] { model_->forward(s, kv); });
  return s;
}

size_t Session::forward(const int32_t* tokens, int n, LogitsMode mode, float* logits) {
  std::lock_guard<std::mutex> lock(model_->run_mutex());
  model_->check_files();
  Backend& be = model_->backend();
  const int logits_rows = mode == LogitsMode::All ? n : 1;
  Activations& s = enqueue(tokens, n, logits_rows);
  size_t count = 0;
  if (mode == LogitsMode::None) {
    be.synchronize();  // the pass is done (and its errors known) when forward returns
  } else {
    count = size_t(logits_rows) * model_->config().vocab_size;
    be.copy_to_host(s.logits, logits, count * sizeof(float));
  }
  length_ += n;
  have_logits_ = true;
  return count;
}

int32_t Session::step(int32_t token, const SampleParams& params, float uniform, const LogitBias* bias) {
  std::lock_guard<std::mutex> lock(model_->run_mutex());
  model_->check_files();
  enqueue(&token, 1, 1);
  // Only the sampled id crosses to the host: one round trip per decoded token (and the row, with a bias).
  int32_t next = draw_from_last(params, uniform, bias, "step");
  length_ += 1;
  have_logits_ = true;
  return next;
}

std::vector<int32_t> Session::step_many(int32_t token, int count, const SampleParams& params, const float* uniforms,
                                        const std::vector<int32_t>& stops) {
  std::lock_guard<std::mutex> lock(model_->run_mutex());
  model_->check_files();
  if (count < 1) throw range_error("step_many: count must be at least 1, got " + std::to_string(count));
  if (int64_t(length_) + count > max_context_)
    throw range_error("step_many: " + std::to_string(length_) + " cached + " + std::to_string(count) +
                      " new tokens exceed maxContext " + std::to_string(max_context_));
  Backend& be = model_->backend();
  const int start = length_;
  std::vector<int32_t> out;
  out.reserve(size_t(count));
  // Step i: token i goes in (from the host for i = 0, else from the previous draw, on the device), its
  // draw goes to s.tokens, where step i + 1 reads it, and a copy of it to the host.
  auto queue_step = [&](int i) {
    Activations& s = enqueue(i == 0 ? &token : nullptr, 1, 1);
    be.sample_into(s.logits, params, uniforms[i], s.tokens);
    return be.queue_token_read(s.tokens);
  };
  try {
    uint64_t ticket = queue_step(0);
    for (int i = 0; i < count; ++i) {
      length_ = start + i + 1;  // tokens 0..i are in (step i + 1 goes at this position)
      const uint64_t next = i + 1 < count ? queue_step(i + 1) : 0;
      const int32_t code = be.read_token(ticket);
      if (code < 0) {
        // A row with no distribution: the step queued behind it embeds the code as a token, which a
        // device flags; wait for it and drop that flag so the error reported is the sampler's.
        try { be.synchronize(); } catch (const Error&) {}
        checks::sampled_token(code, "stepMany");
      }
      const int32_t id = code;
      out.push_back(id);
      ticket = next;
      if (std::find(stops.begin(), stops.end(), id) != stops.end()) {
        if (i + 1 < count) {
          be.synchronize();  // the step queued past the stop is done before its cache rows are reused
          have_logits_ = false;
        } else {
          have_logits_ = true;
        }
        return out;
      }
    }
    have_logits_ = true;
  } catch (...) {
    length_ = start + int(out.size());  // the steps whose ids came back stay appended
    have_logits_ = false;
    throw;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The forward pass (one sequence in a session, or many in a batch: the same code).
// ---------------------------------------------------------------------------------------------
void Model::forward(Activations& s, const KvView& kv) {
  const ModelConfig& c = config_;
  const Weights& w = weights_;
  Backend& be = *backend_;
  const int n = s.n;
  const int64_t D = c.head_dim;
  Tensor q3 = s.q.reshaped({n, c.num_heads, D});
  Tensor k3 = s.k.reshaped({n, c.num_kv_heads, D});
  Tensor v3 = s.v.reshaped({n, c.num_kv_heads, D});
  Tensor attn3 = s.attn.reshaped({n, c.num_heads, D});
  const float softmax_scale = 1.0f / std::sqrt(float(D));  // 1/8 for head_dim 64
  const SwigluParams swiglu{c.swiglu_limit, 1.702f};
  // The Q8_0 dense layers (a GGUF's attention and LM head, denseWeights: 'q8') take the experts' mode.
  be.set_activations(expert_activations_);

  // Each block ends with a residual add; it is fused with the norm that opens the next block (and
  // with what that norm feeds), so x += block_out is written where that norm is.
  be.embedding(s.tokens, w.embedding, s.x);
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    Tensor& k_cache = (*kv.k)[l];
    Tensor& v_cache = (*kv.v)[l];
    const int window = L.sliding ? c.sliding_window : 0;
    // Attention block: x += o_proj(attention(rope(q), rope(k), v, sinks)), on xn = norm(x); from
    // layer 1 on, the previous MoE block's x += block_out comes first
    if (l == 0) {
      be.rmsnorm(s.x, L.attn.norm, c.rms_norm_eps, s.xn);
      be.qkv(s.xn, L.attn.q, L.attn.q_bias, L.attn.k, L.attn.k_bias, L.attn.v, L.attn.v_bias, s.q, s.k, s.v);
    } else {
      be.add_rmsnorm_qkv(s.x, s.block_out, L.attn.norm, c.rms_norm_eps, s.xn, L.attn.q, L.attn.q_bias, L.attn.k,
                         L.attn.k_bias, L.attn.v, L.attn.v_bias, s.q, s.k, s.v);
    }
    // Each token's keys and values go to its row of the cache, and each query reads its own
    // sequence's rows: in a batch every sequence attends only to itself.
    if (kv.paged()) {
      be.rope_kv_store_slots(q3, k3, v3, s.positions, *kv.slots, rope_inv_freq_, rope_scale_, k_cache, v_cache);
      be.paged_attention(q3, k_cache, v_cache, L.attn.sinks, s.positions, *kv.seq_of_token, *kv.block_tables,
                         kv.block_size, window, softmax_scale, attn3);
    } else {
      be.rope_kv_store(q3, k3, v3, s.positions, rope_inv_freq_, rope_scale_, k_cache, v_cache);
      be.attention(q3, k_cache, v_cache, L.attn.sinks, s.positions, window, softmax_scale, attn3);
    }
    be.linear(s.attn, L.attn.o, &L.attn.o_bias, s.block_out);
    // MoE block: x += sum_k w_k * expert_k(xn), experts chosen by the router's top-k (the router
    // runs fused with the residual add and the norm before it). Over a batch the experts run
    // grouped: each routed expert's weights are read once for all the tokens that chose it.
    be.add_rmsnorm_router(s.x, s.block_out, L.mlp.norm, c.rms_norm_eps, s.xn, L.mlp.router, L.mlp.router_bias,
                          c.experts_per_token, s.expert_idx, s.expert_weight);
    be.moe(s.xn, s.expert_idx, s.expert_weight, L.mlp.experts, swiglu, s.block_out);
  }
  be.add(s.x, s.block_out);
  // Final norm and the (untied) LM head, on the rows that need logits only: every row, the last,
  // or (a batch) the last row of each sequence that samples.
  if (s.logits_rows == 0) return;
  Tensor rows;
  if (s.gathered) {
    be.gather_rows(s.x, s.logit_index, s.picked);
    rows = s.picked;
  } else {
    rows = s.logits_rows == n ? s.x : s.x.rows(n - s.logits_rows, s.logits_rows);
  }
  be.rmsnorm(rows, w.norm, c.rms_norm_eps, s.final_norm);
  be.linear(s.final_norm, w.lm_head, nullptr, s.logits);
}

int32_t Session::sample(const SampleParams& params, float uniform, const LogitBias* bias) {
  if (!have_logits_) throw runtime_error("session: sample() needs a forward pass first");
  std::lock_guard<std::mutex> lock(model_->run_mutex());
  return draw_from_last(params, uniform, bias, "sample");
}

// The draw from the last logits row (run mutex held). A bias is added to the row in place, and the row
// as the model gave it is kept (raw_row_) for logprobs() and for any later draw from the same logits,
// which starts again from it.
int32_t Session::draw_from_last(const SampleParams& params, float uniform, const LogitBias* bias, const char* fn) {
  Backend& be = model_->backend();
  const int64_t row = scratch_.logits_rows - 1;
  const bool biased = bias && !bias->empty();
  if (raw_valid_) {
    std::vector<float> r(raw_row_);
    if (biased) add_logit_bias(r.data(), int64_t(r.size()), *bias);
    Tensor dst = scratch_.logits.rows(row, 1);
    be.copy_from_host(dst, r.data(), r.size() * sizeof(float));
  } else if (biased) {
    apply_logit_bias(be, scratch_.logits, row, *bias, raw_row_);
    raw_valid_ = true;
  }
  return checks::sampled_token(be.sample(scratch_.logits.rows(row, 1), params, uniform), fn);
}

TokenLogprobs Session::logprobs(int32_t id, int top) {
  if (!have_logits_) throw runtime_error("session: logprobs() needs a forward pass first");
  std::lock_guard<std::mutex> lock(model_->run_mutex());
  if (raw_valid_) return row_logprobs(raw_row_.data(), int64_t(raw_row_.size()), id, top);  // the row as it was before a bias
  if (id < 0 || id >= model_->config().vocab_size) throw range_error("logprobs: id " + std::to_string(id) + " is outside the vocabulary");
  Backend& be = model_->backend();
  const int32_t row = scratch_.logits_rows - 1;
  const RowTop t = be.logprob_top(scratch_.logits, {row}, {top}).at(0);
  return with_id(t, be.logit_at(scratch_.logits, row, id));
}

}  // namespace gptoss
