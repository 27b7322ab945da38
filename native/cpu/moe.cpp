// Router (top-k + softmax over the selected logits) and the MXFP4 mixture of experts
// (transformers GptOssTopKRouter / GptOssExperts). For n > 1 tokens are grouped by expert so each
// selected expert's packed weights stream from memory once per call; all groups go through one
// parallel_for per projection, so a decode step costs two dispatches however many experts it uses.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numeric>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"
#include "profile.h"

namespace gptoss::cpu {

void linear_bf16(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);  // matmul.cpp
namespace ref {
float weight_at(const Tensor& w, int64_t r, int64_t c);  // matmul.cpp
}

void topk_softmax(const float* logits, int64_t n_experts, int k, int32_t* idx, float* weight) {
  std::vector<int32_t> order(static_cast<size_t>(n_experts));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float m = logits[order[0]];
  float sum = 0.f;
  for (int j = 0; j < k; ++j) {
    idx[j] = order[j];
    weight[j] = std::exp(logits[order[j]] - m);
    sum += weight[j];
  }
  for (int j = 0; j < k; ++j) weight[j] /= sum;
}

void swiglu_interleaved(const float* gate_up, int64_t inter, const SwigluParams& p, float* out) {
  for (int64_t j = 0; j < inter; ++j) {
    const float gate = std::min(gate_up[2 * j], p.limit);
    const float up = std::min(std::max(gate_up[2 * j + 1], -p.limit), p.limit);
    const float glu = gate / (1.0f + std::exp(-gate * p.alpha));
    out[j] = (up + 1.0f) * glu;
  }
}

// ---------------- router ----------------
void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
            Tensor& expert_weight) {
  checks::router(x, weight, bias, k, expert_idx, expert_weight, kCpuDevice);
  const int64_t n = x.dim(0), e = weight.dim(0);
  Tensor logits = host_empty(DType::F32, {n, e});
  linear_bf16(x, weight, &bias, logits);  // bf16 or f32 router weight
  for (int64_t t = 0; t < n; ++t)
    topk_softmax(logits.ptr<float>() + t * e, e, k, expert_idx.ptr<int32_t>() + t * k,
                 expert_weight.ptr<float>() + t * k);
}

// ---------------- moe ----------------
// Expert ids are read from host memory: a CPU-only check (CUDA flags them on the device).
static void check_moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
                      const Tensor& out) {
  checks::moe(x, expert_idx, expert_weight, w, out, kCpuDevice);
  const int64_t e = w.experts();
  for (int64_t i = 0; i < expert_idx.numel(); ++i) {
    int32_t id = expert_idx.ptr<int32_t>()[i];
    if (id < 0 || id >= e)
      throw range_error("moe: expert index " + std::to_string(id) + " at position " + std::to_string(i) +
                        " is out of range for " + std::to_string(e) + " experts");
  }
}

namespace {
struct Group {
  int32_t expert;
  std::vector<int64_t> tokens;  // token of each row of this group
  int64_t row0;                 // first row in the gathered buffers
};

// Activations as the MXFP4 kernels read them: f32 in the set's mxfp4_pos order, or (q8) int8 blocks
// in its mxfp4_q8_pos order with one f32 scale a block.
// A std::vector whose data starts on a 64-byte boundary: the kernels read activations with 32-byte
// loads, and a buffer at 16 or 48 mod 64 (where malloc may put a std::vector's) splits every other one
// across two cache lines (the AVX2 MXFP4 matvec measured up to 10% slower so, bench/RESULTS.md).
template <class T>
struct Align64 {
  using value_type = T;
  Align64() = default;
  template <class U>
  Align64(const Align64<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const Align64<U>&) const { return true; }
  template <class U>
  bool operator!=(const Align64<U>&) const { return false; }
};
using AlignedFloats = std::vector<float, Align64<float>>;

struct Activations {
  bool q8;
  int64_t cols;
  AlignedFloats& f;  // f32: [rows, cols] (the caller's buffer, resized here when f32)
  std::vector<int8_t, Align64<int8_t>> q;  // q8: [rows, cols]
  std::vector<float> d;   // q8: [rows, cols / 32]
  Activations(bool q8_, int64_t rows, int64_t cols_, AlignedFloats& fbuf) : q8(q8_), cols(cols_), f(fbuf) {
    if (q8) {
      q.resize(size_t(rows * cols));
      d.resize(size_t(rows * cols / kMxfp4BlockSize));
    } else {
      f.resize(size_t(rows * cols));
    }
  }
  // out[t*ld + r - r0] for rows r in [r0, r1) of expert `expert`'s W (MXFP4 in either block form),
  // tokens = rows [row0, row0 + n) here.
  void rows(const Kernels& k, const Tensor& w, int64_t expert, int64_t row0, int64_t n, float* out, int64_t ld,
            int64_t r0, int64_t r1) const {
    const int64_t nblk = cols / kMxfp4BlockSize, first = (expert * w.dim(1) + r0) * nblk;  // first block
    const int8_t* xq = q8 ? q.data() + row0 * cols : nullptr;
    const float* xd = q8 ? d.data() + row0 * nblk : nullptr;
    if (w.dtype == DType::MXFP4_GGML) {
      const uint8_t* b = static_cast<const uint8_t*>(w.data) + first * kMxfp4GgmlBlockBytes;
      if (q8)
        k.mxfp4_ggml_rows_q8(b, cols, xq, xd, n, out, ld, 0, r1 - r0);
      else
        k.mxfp4_ggml_rows(b, cols, f.data() + row0 * cols, n, out, ld, 0, r1 - r0);
    } else {
      const uint8_t* b = static_cast<const uint8_t*>(w.data) + first * kMxfp4BlockBytes;
      const uint8_t* s = static_cast<const uint8_t*>(w.scales) + first;
      if (q8)
        k.mxfp4_rows_q8(b, s, cols, xq, xd, n, out, ld, 0, r1 - r0);
      else
        k.mxfp4_rows(b, s, cols, f.data() + row0 * cols, n, out, ld, 0, r1 - r0);
    }
  }
};

// One expert's rows [r0, r1) of a bf16 expert weight (transformers' layout [E, C, R]: out = x @ W[e]) times
// f32 activations, into out[t * ld + r - r0]. Each input's row of outputs is contiguous, so the loop runs
// over inputs and accumulates a slice of outputs (the compiler vectorizes it). MXFP4 weights go through
// Activations::rows.
void expert_rows_bf16(const Tensor& w, int64_t expert, int64_t cols, const float* x, int64_t nt, float* out,
                      int64_t ld, int64_t r0, int64_t r1) {
  const int64_t rows = w.dim(2);
  const uint16_t* base = static_cast<const uint16_t*>(w.data) + expert * cols * rows;
  std::vector<float> acc(size_t(r1 - r0));
  for (int64_t t = 0; t < nt; ++t) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t c = 0; c < cols; ++c) {
      const float xv = x[t * cols + c];
      const uint16_t* wr = base + c * rows + r0;
      for (int64_t r = 0; r < r1 - r0; ++r) acc[size_t(r)] += xv * bf16_to_f32(wr[r]);
    }
    std::copy(acc.begin(), acc.end(), out + t * ld);
  }
}

// The MoE's per-call buffers (permuted and gathered activations, gate_up outputs, swiglu outputs, down
// outputs), kept per thread between calls: a 128-token prefill layer needs ~30 MB of them, which as
// fresh std::vectors were zero-filled (and page-faulted) on one thread every call (5% of a prefill).
// Kept only while they total at most kMoeScratchKeepBytes; larger ones are released after the call.
struct MoeScratch {
  AlignedFloats xp, xg, gu, actp, y;
  size_t bytes() const {
    return 4 * (xp.capacity() + xg.capacity() + gu.capacity() + actp.capacity() + y.capacity());
  }
};
constexpr size_t kMoeScratchKeepBytes = size_t(64) << 20;
MoeScratch& moe_scratch() {
  thread_local MoeScratch s;
  return s;
}
struct ScratchRelease {
  MoeScratch& s;
  ~ScratchRelease() {
    if (s.bytes() > kMoeScratchKeepBytes) s = MoeScratch();
  }
};

// The order of one block of activations for a weight form (identity for bf16).
void order_for(const Kernels& k, const Tensor& w, bool q8, uint8_t* pos) {
  if (w.dtype == DType::MXFP4_GGML)
    mxfp4_ggml_order(q8 ? k.mxfp4_q8_pos : k.mxfp4_pos, pos);
  else if (w.dtype == DType::MXFP4)
    std::copy_n(q8 ? k.mxfp4_q8_pos : k.mxfp4_pos, 32, pos);
  else
    for (int c = 0; c < 32; ++c) pos[c] = uint8_t(c);
}
}  // namespace

// Two dispatches per call, whatever n (three with q8 and more than one group row: the down
// projection's activations are quantized in between): (1) gate_up rows of every group, each chunk
// finishing its rows with bias + swiglu and writing the activations straight into the layout the
// down kernel reads; (2) down, split over output columns (hidden rows), each chunk running every
// group for its rows and then the bias + weighted sum over the slots for those columns, so no stage
// runs on one thread (bench/RESULTS.md: the serial swiglu + sum cost ~0.1-0.2 ms a decode layer).
void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
         const SwigluParams& swiglu, Tensor& out) {
  check_moe(x, expert_idx, expert_weight, w, out);
  const int64_t n = x.dim(0), h = x.dim(1), topk = expert_idx.dim(1);
  const int64_t e = w.experts(), inter = w.intermediate(), inter2 = 2 * inter;
  if (n == 0) return;
  // q8 activations: MXFP4 experts in either block form (Hugging Face's, GGUF's split gate/up in ggml
  // blocks); bf16 experts take f32.
  const bool split = w.split();
  auto mxfp4 = [](const Tensor& t) { return t.dtype == DType::MXFP4 || t.dtype == DType::MXFP4_GGML; };
  const bool q8 = w.activations == ExpertActivations::Q8 && mxfp4(w.down) &&
                  (split ? mxfp4(w.gate) && mxfp4(w.up) : mxfp4(w.gate_up));
  // Group (token, slot) pairs by expert; slot_row[t*topk+s] = the pair's row in the gathered buffers.
  std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(e));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t s = 0; s < topk; ++s) by_expert[size_t(expert_idx.ptr<int32_t>()[t * topk + s])].push_back(t * topk + s);
  std::vector<Group> groups;
  std::vector<int64_t> slot_row(static_cast<size_t>(n * topk));
  std::vector<int32_t> row_expert;
  int64_t rows = 0;
  for (int64_t ex = 0; ex < e; ++ex) {
    if (by_expert[size_t(ex)].empty()) continue;
    Group g{int32_t(ex), {}, rows};
    for (int64_t pair : by_expert[size_t(ex)]) {
      g.tokens.push_back(pair / topk);
      slot_row[size_t(pair)] = rows++;
      row_expert.push_back(int32_t(ex));
    }
    groups.push_back(std::move(g));
  }
  const Kernels& k = kernels();
  // The order each projection's kernel reads its activations in (per weight form).
  uint8_t pos[32], down_pos[32];
  order_for(k, split ? w.gate : w.gate_up, q8, pos);
  order_for(k, w.down, q8, down_pos);
  const int64_t hb = h / kMxfp4BlockSize, ib = inter / kMxfp4BlockSize;
  // x in the kernels' order (quantized once per token for q8), gathered per group row.
  MoeScratch& sc = moe_scratch();
  Activations xg(q8, rows, h, sc.xg);
  if (q8) {
    sc.xp.resize(size_t(n * h));
    permute_for_mxfp4(x.ptr<float>(), n, h, pos, sc.xp.data());
    AlignedFloats none;
    Activations xt(true, n, h, none);
    quantize_q8(sc.xp.data(), n, h, xt.q.data(), xt.d.data());
    for (const Group& g : groups)
      for (size_t j = 0; j < g.tokens.size(); ++j) {
        std::copy_n(xt.q.data() + g.tokens[j] * h, h, xg.q.data() + (g.row0 + int64_t(j)) * h);
        std::copy_n(xt.d.data() + g.tokens[j] * hb, hb, xg.d.data() + (g.row0 + int64_t(j)) * hb);
      }
  } else {
    // Permuted straight into the gathered rows, in parallel (a prefill layer gathers rows * h floats).
    std::vector<int64_t> row_token(static_cast<size_t>(rows));
    for (const Group& g : groups)
      for (size_t j = 0; j < g.tokens.size(); ++j) row_token[size_t(g.row0) + j] = g.tokens[j];
    parallel_for(rows, [&](int64_t a, int64_t b) {
      for (int64_t r = a; r < b; ++r)
        permute_for_mxfp4(x.ptr<float>() + row_token[size_t(r)] * h, 1, h, pos, xg.f.data() + r * h);
    }, 8);
  }

  // The swiglu output in the kernels' f32 order; quantized into `act` before down for q8. Every
  // element of gu, actp and y is written below before it is read.
  AlignedFloats& gu = sc.gu;
  AlignedFloats& actp = sc.actp;
  gu.resize(static_cast<size_t>(rows * inter2));
  actp.resize(static_cast<size_t>(rows * inter));
  {
    ProfileScope ps("moe.gate_up+swiglu");
    parallel_for(int64_t(groups.size()) * inter2, [&](int64_t a, int64_t b) {
      std::vector<float> halves;  // split form: this chunk's gate rows, then its up rows
      while (a < b) {
        // Chunks are multiples of 16 rows and inter2 is even, so r0 and r1 are even: a chunk holds
        // whole (gate, up) pairs.
        const int64_t gi = a / inter2, r0 = a % inter2, r1 = std::min(inter2, r0 + (b - a));
        const Group& grp = groups[size_t(gi)];
        const int64_t nt = int64_t(grp.tokens.size());
        if (split) {
          // gate row j and up row j are the interleaved rows 2j and 2j + 1 (llama.cpp's split).
          const int64_t j0 = r0 / 2, j1 = r1 / 2, m = j1 - j0;
          halves.resize(size_t(2 * nt * m));
          if (mxfp4(w.gate) && mxfp4(w.up)) {
            xg.rows(k, w.gate, grp.expert, grp.row0, nt, halves.data(), m, j0, j1);
            xg.rows(k, w.up, grp.expert, grp.row0, nt, halves.data() + nt * m, m, j0, j1);
          } else {
            const float* xrows = xg.f.data() + grp.row0 * h;
            expert_rows_bf16(w.gate, grp.expert, h, xrows, nt, halves.data(), m, j0, j1);
            expert_rows_bf16(w.up, grp.expert, h, xrows, nt, halves.data() + nt * m, m, j0, j1);
          }
          for (int64_t t = 0; t < nt; ++t) {
            float* row = gu.data() + (grp.row0 + t) * inter2;
            for (int64_t j = 0; j < m; ++j) {
              row[2 * (j0 + j)] = halves[size_t(t * m + j)] + param_at(w.gate_bias, grp.expert * inter + j0 + j);
              row[2 * (j0 + j) + 1] = halves[size_t((nt + t) * m + j)] + param_at(w.up_bias, grp.expert * inter + j0 + j);
            }
          }
        } else {
          if (mxfp4(w.gate_up))
            xg.rows(k, w.gate_up, grp.expert, grp.row0, nt, gu.data() + grp.row0 * inter2 + r0, inter2, r0, r1);
          else
            expert_rows_bf16(w.gate_up, grp.expert, h, xg.f.data() + grp.row0 * h, nt,
                             gu.data() + grp.row0 * inter2 + r0, inter2, r0, r1);
          for (int64_t j = 0; j < nt; ++j) {
            float* row = gu.data() + (grp.row0 + j) * inter2;
            for (int64_t c = r0; c < r1; ++c) row[c] += param_at(w.gate_up_bias, grp.expert * inter2 + c);
          }
        }
        for (int64_t j = 0; j < nt; ++j) {
          float* row = gu.data() + (grp.row0 + j) * inter2;
          float act[16];
          for (int64_t c = r0; c < r1; c += 32) {  // up to 16 pairs at a time
            const int64_t pairs = std::min<int64_t>(16, (r1 - c) / 2);
            swiglu_interleaved(row + c, pairs, swiglu, act);
            for (int64_t i = 0; i < pairs; ++i) {
              const int64_t col = c / 2 + i;
              actp[size_t((grp.row0 + j) * inter + (col & ~int64_t(31)) + down_pos[col & 31])] = act[i];
            }
          }
        }
        a += r1 - r0;
      }
    }, 16);
  }
  // f32: act reads actp as it is (already rows x inter); q8: quantized from it.
  Activations act(q8, rows, inter, actp);
  if (q8) {
    parallel_for(rows, [&](int64_t r0, int64_t r1) {
      quantize_q8(actp.data() + r0 * inter, r1 - r0, inter, act.q.data() + r0 * inter, act.d.data() + r0 * ib);
    }, 8);
  }
  AlignedFloats& y = sc.y;
  y.resize(static_cast<size_t>(rows * h));
  ScratchRelease release{sc};
  ProfileScope ps("moe.down+sum");
  parallel_for(h, [&](int64_t r0, int64_t r1) {
    for (const Group& grp : groups)
      if (mxfp4(w.down))
        act.rows(k, w.down, grp.expert, grp.row0, int64_t(grp.tokens.size()), y.data() + grp.row0 * h + r0, h, r0, r1);
      else
        expert_rows_bf16(w.down, grp.expert, inter, act.f.data() + grp.row0 * inter, int64_t(grp.tokens.size()),
                        y.data() + grp.row0 * h + r0, h, r0, r1);
    // out[t] = sum_s weight[t,s] * (y[row(t,s)] + down_bias[expert]), slots in order.
    for (int64_t t = 0; t < n; ++t) {
      float* o = out.ptr<float>() + t * h;
      for (int64_t c = r0; c < r1; ++c) o[c] = 0.f;
      for (int64_t s = 0; s < topk; ++s) {
        const int64_t r = slot_row[size_t(t * topk + s)];
        const float wt = expert_weight.ptr<float>()[t * topk + s];
        const int64_t ex = row_expert[size_t(r)];
        const float* yr = y.data() + r * h;
        for (int64_t c = r0; c < r1; ++c) o[c] += wt * (yr[c] + param_at(w.down_bias, ex * h + c));
      }
    }
  }, 16);
}

namespace ref {
void router(const Tensor& x, const Tensor& weight, const Tensor& bias, int k, Tensor& expert_idx,
            Tensor& expert_weight) {
  checks::router(x, weight, bias, k, expert_idx, expert_weight, kCpuDevice);
  const int64_t n = x.dim(0), e = weight.dim(0);
  Tensor logits = host_empty(DType::F32, {n, e});
  ref::linear(x, weight, &bias, logits);
  for (int64_t t = 0; t < n; ++t)
    topk_softmax(logits.ptr<float>() + t * e, e, k, expert_idx.ptr<int32_t>() + t * k,
                 expert_weight.ptr<float>() + t * k);
}

void moe(const Tensor& x, const Tensor& expert_idx, const Tensor& expert_weight, const MoeWeights& w,
         const SwigluParams& swiglu, Tensor& out) {
  check_moe(x, expert_idx, expert_weight, w, out);
  const int64_t n = x.dim(0), h = x.dim(1), topk = expert_idx.dim(1);
  const int64_t inter = w.intermediate(), inter2 = 2 * inter;
  std::vector<float> gu(static_cast<size_t>(inter2)), act(static_cast<size_t>(inter));
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> acc(size_t(h), 0.0);
    for (int64_t s = 0; s < topk; ++s) {
      const int32_t ex = expert_idx.ptr<int32_t>()[t * topk + s];
      const Tensor down = w.down.select(ex);
      for (int64_t r = 0; r < inter2; ++r) {
        // Row r of the interleaved gate_up; the GGUF form holds it as gate (even r) or up (odd r) row
        // r / 2; bf16 experts (transformers' layout) as column r of [H, 2*I].
        const Tensor rows = w.split() ? (r % 2 == 0 ? w.gate : w.up).select(ex) : w.gate_up.select(ex);
        const int64_t wr = w.split() ? r / 2 : r;
        const bool transposed = rows.dtype == DType::BF16;
        double a = w.split() ? param_at(r % 2 == 0 ? w.gate_bias : w.up_bias, ex * inter + r / 2)
                             : param_at(w.gate_up_bias, ex * inter2 + r);
        for (int64_t c = 0; c < h; ++c)
          a += double(transposed ? weight_at(rows, c, wr) : weight_at(rows, wr, c)) * x.ptr<float>()[t * h + c];
        gu[size_t(r)] = float(a);
      }
      swiglu_interleaved(gu.data(), inter, swiglu, act.data());
      for (int64_t r = 0; r < h; ++r) {
        double a = param_at(w.down_bias, ex * h + r);
        for (int64_t c = 0; c < inter; ++c)
          a += double(down.dtype == DType::BF16 ? weight_at(down, c, r) : weight_at(down, r, c)) * act[size_t(c)];
        acc[size_t(r)] += double(expert_weight.ptr<float>()[t * topk + s]) * a;
      }
    }
    for (int64_t c = 0; c < h; ++c) out.ptr<float>()[t * h + c] = float(acc[size_t(c)]);
  }
}
}  // namespace ref

}  // namespace gptoss::cpu
