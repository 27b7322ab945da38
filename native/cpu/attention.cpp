// KV-cache store and causal attention with per-head sinks (openai/gpt-oss torch/model.py sdpa;
// transformers eager_attention_forward): softmax over [q.k * scale for visible keys, sink], sink
// dropped after the softmax. Sliding layers see keys with position - j < window.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels.h"
#include "ops.h"

namespace gptoss::cpu {

namespace portable {
// The same contract as the ISA kernels, as two plain passes over the keys per head.
void attention_chunk(const float* qt, int64_t d, const float* k, const float* v, int64_t ld, int64_t len, float* m,
                     float* l, float* o) {
  const int64_t dp = (d + 7) / 8 * 8;
  std::vector<float> s(static_cast<size_t>(len));
  for (int g = 0; g < 8; ++g) {
    float mx = m[g];
    for (int64_t j = 0; j < len; ++j) {
      float acc = 0.f;
      for (int64_t c = 0; c < d; ++c) acc += qt[8 * c + g] * k[j * ld + c];
      s[size_t(j)] = acc;
      mx = std::max(mx, acc);
    }
    float* og = o + g * dp;
    const float corr = m[g] == -INFINITY ? 0.f : std::exp(m[g] - mx);
    for (int64_t c = 0; c < d; ++c) og[c] *= corr;
    float sum = l[g] * corr;
    for (int64_t j = 0; j < len; ++j) {
      const float p = std::exp(s[size_t(j)] - mx);
      sum += p;
      for (int64_t c = 0; c < d; ++c) og[c] += p * v[j * ld + c];
    }
    m[g] = mx;
    l[g] = sum;
  }
}
}  // namespace portable

// ---------------- kv_store ----------------
// Positions are read from host memory: a CPU-only check (CUDA flags them on the device).
static void check_positions(const Tensor& positions, const Tensor& k_cache, const char* op) {
  for (int64_t i = 0; i < positions.numel(); ++i) {
    int32_t p = positions.ptr<int32_t>()[i];
    if (p < 0 || p >= k_cache.dim(0))
      throw range_error(std::string(op) + ": position " + std::to_string(p) + " at index " + std::to_string(i) +
                        " is outside the cache of " + std::to_string(k_cache.dim(0)) + " rows");
  }
}

static void check_kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, const Tensor& k_cache,
                           const Tensor& v_cache) {
  checks::kv_store(k, v, positions, k_cache, v_cache, kCpuDevice, {kKvF32});
  check_positions(positions, k_cache, "kvStore");
}

// A measurement aid, not a cache format: GPTOSS_CPU_KV_ROUND=<a kvCache type> rounds every value the
// CPU stores in its (f32) KV cache as a GPU cache of that type holds it ('f16', 'bf16', 'f32' exact,
// 'f32k-f16v' K exact and V in f16), so the CPU's logits show what that cache costs in fidelity
// (bench/kv-fidelity.mjs; the GPU's attention reads its cache in f32 too). Read once per process;
// unset = exact. "f16-k" rounds only K (which of the two a cache's error comes from); "f16-v" is
// f32k-f16v's earlier name.
struct KvRound {
  DType k = DType::F32, v = DType::F32;
};
static KvRound kv_round_mode() {
  static const KvRound mode = [] {
    const char* env = std::getenv("GPTOSS_CPU_KV_ROUND");
    if (!env || !*env) return KvRound{};
    const std::string s(env);
    if (s == "f16-k") return KvRound{DType::F16, DType::F32};
    if (s == "f16-v") return KvRound{kKvF32KF16V.key, kKvF32KF16V.value};
    for (KvCacheType t : {kKvF16, kKvBF16, kKvF32, kKvF32KF16V})
      if (s == kv_cache_name(t)) return KvRound{t.key, t.value};
    throw range_error("GPTOSS_CPU_KV_ROUND must be 'f16', 'bf16', 'f32', 'f32k-f16v', 'f16-k' or 'f16-v' (or unset), got '" + s + "'");
  }();
  return mode;
}

static void copy_row(const float* src, int64_t n, float* dst, DType round) {
  if (round == DType::F32) {
    std::copy_n(src, n, dst);
  } else if (round == DType::F16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(f32_to_f16(src[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
  }
}

static void kv_store_impl(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache,
                          Tensor& v_cache) {
  const int64_t row = k.dim(1) * k.dim(2);
  const KvRound round = kv_round_mode();
  for (int64_t i = 0; i < k.dim(0); ++i) {
    int64_t p = positions.ptr<int32_t>()[i];
    copy_row(k.ptr<float>() + i * row, row, k_cache.ptr<float>() + p * row, round.k);
    copy_row(v.ptr<float>() + i * row, row, v_cache.ptr<float>() + p * row, round.v);
  }
}

void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache) {
  check_kv_store(k, v, positions, k_cache, v_cache);
  kv_store_impl(k, v, positions, k_cache, v_cache);
}

// ---------------- attention ----------------
static void check_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                            const Tensor& positions, int sliding_window, const Tensor& out) {
  checks::attention(q, k_cache, v_cache, sinks, positions, sliding_window, out, kCpuDevice, {kKvF32});
  check_positions(positions, k_cache, "attention");
}

static inline int64_t first_visible(int64_t pos, int sliding_window) {
  return sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : 0;
}

namespace {
// Where query i's keys are: logical position p of its sequence is cache row
// table(i)[p / block_size] * block_size + p % block_size. A session's contiguous cache is the case
// of one block as long as the cache, so both paths run the same code below.
struct KvBlocks {
  const int32_t* tables;     // [seqs, stride]
  int64_t stride;            // blocks a table row holds
  const int32_t* seq_of;     // [n], or null: every query is sequence 0
  int64_t block_size;
  const int32_t* table(int64_t i) const { return tables + (seq_of ? seq_of[i] : 0) * stride; }
  int64_t row(const int32_t* t, int64_t p) const { return int64_t(t[p / block_size]) * block_size + p % block_size; }
};

// Reads host memory: the CPU's value checks of the block tables (every block a query can see exists in the pool).
void check_blocks(const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int64_t block_size,
                  int64_t pool_rows) {
  const int64_t seqs = block_tables.dim(0), stride = block_tables.dim(1), pool_blocks = pool_rows / block_size;
  for (int64_t i = 0; i < positions.numel(); ++i) {
    const int32_t s = seq_of_token.ptr<int32_t>()[i], p = positions.ptr<int32_t>()[i];
    if (s < 0 || s >= seqs)
      throw range_error("pagedAttention: seqOfToken[" + std::to_string(i) + "] = " + std::to_string(s) + " is not a row of blockTables (" +
                        std::to_string(seqs) + " rows)");
    if (p < 0 || p / block_size >= stride)
      throw range_error("pagedAttention: position " + std::to_string(p) + " at index " + std::to_string(i) + " lies past the " +
                        std::to_string(stride) + " blocks of its table");
    for (int64_t b = 0; b <= p / block_size; ++b) {
      const int32_t id = block_tables.ptr<int32_t>()[s * stride + b];
      if (id < 0 || id >= pool_blocks)
        throw range_error("pagedAttention: blockTables[" + std::to_string(s) + "][" + std::to_string(b) + "] = " + std::to_string(id) +
                          " is not a block of the pool (" + std::to_string(pool_blocks) + " blocks)");
    }
  }
}

// Work item = (query token, tile of <= 8 query heads per kv head, chunk of visible keys), covering
// every kv head: the 16-key steps walk whole cache rows ([kvHeads, D] contiguous) so reads stream,
// and a tile's heads share every K/V row load (attention_chunk). Decode has one token, so the keys
// are split into chunks until every thread has several items (split-K); each (item, kv head)
// leaves (m, l, o) and a merge folds the chunks and the sink together. A step never crosses a
// block boundary (its rows are contiguous only within a block).
void attention_blocks(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                      const Tensor& positions, const KvBlocks& kvb, int sliding_window, float softmax_scale, Tensor& out) {
  const int64_t n = q.dim(0), hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2), group = hq / hkv;
  if (n == 0 || d == 0) return;
  const int64_t tiles = (group + 7) / 8, dp = (d + 7) / 8 * 8;
  const int32_t* pos = positions.ptr<int32_t>();
  int64_t max_len = 0;
  for (int64_t i = 0; i < n; ++i) max_len = std::max(max_len, pos[i] - first_visible(pos[i], sliding_window) + 1);
  // At least ~16 items per thread for dynamic balance, and no chunk under 128 keys.
  const int64_t pairs = n * tiles, want = 16 * int64_t(thread_pool().threads());
  const int64_t chunks = std::max<int64_t>(1, std::min((want + pairs - 1) / pairs, (max_len + 127) / 128));
  const int64_t slot = 16 + 8 * dp;  // m[8], l[8], o[8][dp] per (item, kv head)
  // Slot of (token i, kv head, tile, chunk): the merge reads a (token, head)'s chunks in a row.
  auto slot_of = [&](int64_t i, int64_t kvh, int64_t tile, int64_t chunk) {
    return ((((i * hkv + kvh) * tiles + tile) * chunks) + chunk) * slot;
  };
  Tensor part = host_empty(DType::F32, {n * hkv * tiles * chunks * slot});  // 64-byte aligned; slot % 8 == 0
  const Kernels& kern = kernels();
  const float* kc = k_cache.ptr<float>();
  const float* vc = v_cache.ptr<float>();
  const int64_t ld = hkv * d;
  constexpr int64_t kStep = 16;  // keys per kv-head sweep (a multiple of both ISAs' block)
  parallel_for(pairs * chunks, [&](int64_t w0, int64_t w1) {
    Tensor qt_buf = host_empty(DType::F32, {hkv * d * 8});  // qt per kv head, [d][8] each
    float* qt = qt_buf.ptr<float>();
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t chunk = w % chunks, tile = (w / chunks) % tiles, i = w / (chunks * tiles);
      const int32_t* table = kvb.table(i);
      const int64_t lo = first_visible(pos[i], sliding_window), len = pos[i] - lo + 1;
      const int64_t per = (len + chunks - 1) / chunks;
      const int64_t c0 = std::min(len, chunk * per), c1 = std::min(len, c0 + per);
      const int64_t nh = std::min<int64_t>(8, group - tile * 8);
      for (int64_t kvh = 0; kvh < hkv; ++kvh) {
        float* sl = part.ptr<float>() + slot_of(i, kvh, tile, chunk);
        std::fill_n(sl, 8, -INFINITY);
        std::fill_n(sl + 8, 8 + 8 * dp, 0.f);
        const float* qh = q.ptr<float>() + (i * hq + kvh * group + tile * 8) * d;
        float* qtk = qt + kvh * d * 8;
        for (int64_t c = 0; c < d; ++c)
          for (int64_t g = 0; g < 8; ++g) qtk[8 * c + g] = g < nh ? qh[g * d + c] * softmax_scale : 0.f;
      }
      for (int64_t j = c0; j < c1;) {
        const int64_t p = lo + j, in_block = kvb.block_size - p % kvb.block_size;
        const int64_t nk = std::min(std::min(kStep, c1 - j), in_block);
        const int64_t row0 = kvb.row(table, p) * ld;
        // The step after next, K and V rows (contiguous): the kv-head sweeps read each row in
        // d-sized pieces, an order the hardware prefetchers follow poorly.
        if (j + 3 * kStep <= c1 && in_block >= 3 * kStep)
          for (int64_t b = 0; b < kStep * ld; b += 16) {
            __builtin_prefetch(kc + row0 + 2 * kStep * ld + b, 0, 3);
            __builtin_prefetch(vc + row0 + 2 * kStep * ld + b, 0, 3);
          }
        for (int64_t kvh = 0; kvh < hkv; ++kvh) {
          float* sl = part.ptr<float>() + slot_of(i, kvh, tile, chunk);
          kern.attention_chunk(qt + kvh * d * 8, d, kc + row0 + kvh * d, vc + row0 + kvh * d, ld, nk, sl, sl + 8,
                               sl + 16);
        }
        j += nk;
      }
    }
  });
  // Merge: softmax over [chunk scores..., sink] = sum_c o_c e^(m_c - M) / (e^(sink - M) + sum_c l_c e^(m_c - M)).
  parallel_for(n * hq, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r / hq, h = r % hq, kvh = h / group, tile = (h % group) / 8, g = (h % group) % 8;
      const float* first = part.ptr<float>() + slot_of(i, kvh, tile, 0);
      const float sink = param_at(sinks, h);
      float mx = sink;
      for (int64_t c = 0; c < chunks; ++c) mx = std::max(mx, first[c * slot + g]);
      float denom = std::exp(sink - mx);
      float* o = out.ptr<float>() + r * d;
      std::fill_n(o, d, 0.f);
      for (int64_t c = 0; c < chunks; ++c) {
        const float* sl = first + c * slot;
        if (sl[8 + g] == 0.f) continue;  // empty chunk
        const float f = std::exp(sl[g] - mx);
        denom += sl[8 + g] * f;
        for (int64_t e = 0; e < d; ++e) o[e] += f * sl[16 + g * dp + e];
      }
      const float inv = 1.0f / denom;
      for (int64_t e = 0; e < d; ++e) o[e] *= inv;
    }
  });
}

const int32_t kOneBlock[1] = {0};
}  // namespace

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) {
  check_attention(q, k_cache, v_cache, sinks, positions, sliding_window, out);
  const KvBlocks contiguous{kOneBlock, 1, nullptr, std::max<int64_t>(1, k_cache.dim(0))};
  attention_blocks(q, k_cache, v_cache, sinks, positions, contiguous, sliding_window, softmax_scale, out);
}

static void check_paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                                  const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables,
                                  int block_size, int sliding_window, const Tensor& out) {
  checks::paged_attention(q, k_cache, v_cache, sinks, positions, seq_of_token, block_tables, block_size, sliding_window,
                          out, kCpuDevice, {kKvF32});
  check_blocks(positions, seq_of_token, block_tables, block_size, k_cache.dim(0));
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                     const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                     int sliding_window, float softmax_scale, Tensor& out) {
  check_paged_attention(q, k_cache, v_cache, sinks, positions, seq_of_token, block_tables, block_size, sliding_window, out);
  const KvBlocks paged{block_tables.ptr<int32_t>(), block_tables.dim(1), seq_of_token.ptr<int32_t>(), block_size};
  attention_blocks(q, k_cache, v_cache, sinks, positions, paged, sliding_window, softmax_scale, out);
}

namespace ref {
void kv_store(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache) {
  check_kv_store(k, v, positions, k_cache, v_cache);
  kv_store_impl(k, v, positions, k_cache, v_cache);
}

// The reference reads row(i, j) for query i's key at logical position j.
template <typename Row>
static void attention_ref(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                          const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out, Row row) {
  const int64_t n = q.dim(0), hq = q.dim(1), hkv = k_cache.dim(1), d = q.dim(2), group = hq / hkv;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kvh = h / group, pos = positions.ptr<int32_t>()[i];
      const int64_t lo = first_visible(pos, sliding_window);
      const float* qv = q.ptr<float>() + (i * hq + h) * d;
      std::vector<double> s;
      double m = param_at(sinks, h);
      for (int64_t j = lo; j <= pos; ++j) {
        double acc = 0;
        for (int64_t c = 0; c < d; ++c) acc += double(qv[c]) * k_cache.ptr<float>()[(row(i, j) * hkv + kvh) * d + c];
        s.push_back(acc * softmax_scale);
        m = std::max(m, s.back());
      }
      double denom = std::exp(param_at(sinks, h) - m);
      for (double& x : s) denom += (x = std::exp(x - m));
      for (int64_t c = 0; c < d; ++c) {
        double acc = 0;
        for (int64_t j = lo; j <= pos; ++j) acc += s[j - lo] * v_cache.ptr<float>()[(row(i, j) * hkv + kvh) * d + c];
        out.ptr<float>()[(i * hq + h) * d + c] = float(acc / denom);
      }
    }
}

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
               const Tensor& positions, int sliding_window, float softmax_scale, Tensor& out) {
  check_attention(q, k_cache, v_cache, sinks, positions, sliding_window, out);
  attention_ref(q, k_cache, v_cache, sinks, positions, sliding_window, softmax_scale, out,
                [](int64_t, int64_t j) { return j; });
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                     const Tensor& positions, const Tensor& seq_of_token, const Tensor& block_tables, int block_size,
                     int sliding_window, float softmax_scale, Tensor& out) {
  check_paged_attention(q, k_cache, v_cache, sinks, positions, seq_of_token, block_tables, block_size, sliding_window, out);
  const int32_t* tables = block_tables.ptr<int32_t>();
  const int32_t* seq_of = seq_of_token.ptr<int32_t>();
  const int64_t stride = block_tables.dim(1);
  attention_ref(q, k_cache, v_cache, sinks, positions, sliding_window, softmax_scale, out, [&](int64_t i, int64_t j) {
    return int64_t(tables[seq_of[i] * stride + j / block_size]) * block_size + j % block_size;
  });
}
}  // namespace ref

}  // namespace gptoss::cpu
