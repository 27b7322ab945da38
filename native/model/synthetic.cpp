// Synthetic weights (synthetic.h): scripts/checkpoint-writer.mjs's random tensors, generated in memory.
//
// Everything here must agree with the writer bit for bit, so the arithmetic is the writer's: the
// inverse-CDF table in double rounded to f32, mean + std * table in double rounded to f32, then
// f32 -> bf16 round-nearest-even. CMakeLists.txt compiles this file with -ffp-contract=off: a fused
// multiply-add would round differently from JavaScript.
#include "synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "gpt_oss.h"

namespace gptoss {

// ---------------------------------------------------------------------------------------------
// Seeding (fnv1a32 + splitmix32) and xoshiro128**, as the writer's seedState / Xoshiro128
// ---------------------------------------------------------------------------------------------
namespace {

uint32_t fnv1a32(const std::string& s) {  // over the UTF-8 bytes (names and decimal seeds are ASCII)
  uint32_t h = 0x811c9dc5u;
  for (unsigned char b : s) {
    h ^= b;
    h *= 0x01000193u;
  }
  return h;
}

struct SplitMix32 {
  uint32_t state;
  uint32_t next() {
    state += 0x9e3779b9u;
    uint32_t z = state;
    z = (z ^ (z >> 16)) * 0x85ebca6bu;
    z = (z ^ (z >> 13)) * 0xc2b2ae35u;
    return z ^ (z >> 16);
  }
};

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// JS seeds are stringified: String(seed) of an integer is its decimal form.
void seed_state(uint64_t seed, const std::string& stream, uint32_t s[4]) {
  SplitMix32 sm{fnv1a32("seed:" + std::to_string(seed))};
  const uint32_t mix = fnv1a32("stream:" + stream);
  sm.next();
  sm.state ^= mix;
  for (int i = 0; i < 4; ++i) s[i] = sm.next();
  if ((s[0] | s[1] | s[2] | s[3]) == 0) s[0] = 1;
}

struct Xoshiro128 {
  uint32_t s0, s1, s2, s3;
  inline uint32_t next() {
    const uint32_t r = rotl(s1 * 5u, 7) * 9u;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return r;
  }
};

// Jump-ahead: the state update is linear over GF(2), so n steps are the 128x128 bit matrix M^n.
// kPow[k] = M^(2^k), as 128 columns (column j = the image of state bit j); applied to a state by
// XOR-ing the columns of its set bits.
using State = std::array<uint32_t, 4>;
struct BitMatrix {
  std::array<State, 128> col;
  State apply(const State& v) const {
    State r{0, 0, 0, 0};
    for (int j = 0; j < 128; ++j)
      if ((v[j >> 5] >> (j & 31)) & 1u)
        for (int w = 0; w < 4; ++w) r[w] ^= col[j][w];
    return r;
  }
};

const std::array<BitMatrix, 64>& jump_powers() {
  static const std::array<BitMatrix, 64>* powers = [] {
    auto* p = new std::array<BitMatrix, 64>();
    for (int j = 0; j < 128; ++j) {
      State e{0, 0, 0, 0};
      e[j >> 5] = 1u << (j & 31);
      Xoshiro128 x{e[0], e[1], e[2], e[3]};
      x.next();
      (*p)[0].col[j] = {x.s0, x.s1, x.s2, x.s3};
    }
    for (int k = 1; k < 64; ++k)
      for (int j = 0; j < 128; ++j) (*p)[k].col[j] = (*p)[k - 1].apply((*p)[k - 1].col[j]);
    return p;
  }();
  return *powers;
}

Xoshiro128 jumped(const uint32_t s[4], uint64_t steps) {
  State v{s[0], s[1], s[2], s[3]};
  if (steps) {
    const auto& pow = jump_powers();
    for (int k = 0; k < 64; ++k)
      if ((steps >> k) & 1u) v = pow[k].apply(v);
  }
  return Xoshiro128{v[0], v[1], v[2], v[3]};
}

// ---------------------------------------------------------------------------------------------
// Normal samples: Acklam's inverse normal CDF at (i + 0.5) / 65536 (the writer's NORMAL_TABLE)
// ---------------------------------------------------------------------------------------------
double inverse_normal_cdf(double p) {
  static const double a[] = {-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239};
  static const double b[] = {-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1};
  static const double c[] = {-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783};
  static const double d[] = {7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416};
  const double plow = 0.02425;
  if (p < plow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - plow) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double q = p - 0.5;
  const double r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const float* normal_table() {
  static const float* table = [] {
    float* t = new float[65536];
    for (int i = 0; i < 65536; ++i) t[i] = float(inverse_normal_cdf((i + 0.5) / 65536));
    return t;
  }();
  return table;
}

// bf16 bits of mean + std * table[i] for every 16-bit draw; one table per (mean, std), kept for the
// process (a model has at most 7 distinct ones).
const uint16_t* normal_lut(double mean, double std) {
  static std::mutex mu;
  static std::map<std::pair<double, double>, std::unique_ptr<uint16_t[]>> luts;
  std::lock_guard<std::mutex> lock(mu);
  auto& lut = luts[{mean, std}];
  if (!lut) {
    const float* table = normal_table();
    lut.reset(new uint16_t[65536]);
    for (int i = 0; i < 65536; ++i) {
      const float f = float(mean + std * double(table[i]));  // JS: double arithmetic, stored to a Float32Array
      uint32_t b;
      std::memcpy(&b, &f, 4);
      lut[i] = uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);  // the writer's round-nearest-even (no NaN here)
    }
  }
  return lut.get();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Inits (the writer's checkpointTensors) and tensor streams
// ---------------------------------------------------------------------------------------------
void synthetic_scale_ranges(const ModelConfig& c, int gate_up[2], int down[2]) {
  // Math.round(x) = floor(x + 0.5) (halves round up, unlike std::round)
  auto shift = [](int fan_in) { return int(std::floor(std::log2(double(fan_in) / 256) / 2 + 0.5)); };
  const int g = 123 - shift(c.hidden_size), d = 121 - shift(c.intermediate_size);
  gate_up[0] = g - 1;
  gate_up[1] = g + 1;
  down[0] = d - 1;
  down[1] = d + 1;
}

SyntheticInit synthetic_init(const ModelConfig& c, const std::string& name) {
  std::string key = name;
  static const std::string layer_prefix = "model.layers.";
  if (name.compare(0, layer_prefix.size(), layer_prefix) == 0) {
    const size_t dot = name.find('.', layer_prefix.size());
    if (dot != std::string::npos) key = name.substr(dot + 1);
  }
  auto normal = [](double std, double mean = 0) {
    SyntheticInit i;
    i.kind = SyntheticInit::Kind::Normal;
    i.mean = mean;
    i.std = std;
    return i;
  };
  auto range = [](const int r[2]) {
    SyntheticInit i;
    i.kind = SyntheticInit::Kind::Range;
    i.lo = r[0];
    i.hi = r[1];
    return i;
  };
  const double h = c.hidden_size, q_dim = double(c.num_heads) * c.head_dim;
  int gate_up[2], down[2];
  synthetic_scale_ranges(c, gate_up, down);
  if (key == "model.embed_tokens.weight") return normal(1);
  if (key == "input_layernorm.weight" || key == "post_attention_layernorm.weight" || key == "model.norm.weight")
    return normal(0.1, 1);
  if (key == "self_attn.q_proj.weight" || key == "self_attn.k_proj.weight" || key == "self_attn.v_proj.weight" ||
      key == "mlp.router.weight")
    return normal(1 / std::sqrt(h));
  if (key == "self_attn.o_proj.weight") return normal(1 / std::sqrt(q_dim));
  if (key == "self_attn.q_proj.bias" || key == "self_attn.k_proj.bias" || key == "self_attn.v_proj.bias" ||
      key == "self_attn.o_proj.bias" || key == "mlp.router.bias" || key == "mlp.experts.gate_up_proj_bias" ||
      key == "mlp.experts.down_proj_bias")
    return normal(0.1);
  if (key == "self_attn.sinks") return normal(0.5);
  if (key == "mlp.experts.gate_up_proj_blocks" || key == "mlp.experts.down_proj_blocks") {
    SyntheticInit i;
    i.kind = SyntheticInit::Kind::Bytes;
    return i;
  }
  if (key == "mlp.experts.gate_up_proj_scales") return range(gate_up);
  if (key == "mlp.experts.down_proj_scales") return range(down);
  if (key == "lm_head.weight") return normal(2 / std::sqrt(h));
  throw range_error("synthetic: no init for tensor '" + name + "' (checkpointTensors has none)");
}

SyntheticTensor::SyntheticTensor(uint64_t seed, const std::string& name, const SyntheticInit& init, uint64_t bytes)
    : init_(init), bytes_(bytes) {
  seed_state(seed, name, state_);
  if (init.kind == SyntheticInit::Kind::Normal) {
    if (bytes % 2 != 0) throw range_error("synthetic: normal tensor '" + name + "' has an odd byte count (expected bf16)");
    normal_lut_ = normal_lut(init.mean, init.std);
  } else if (init.kind == SyntheticInit::Kind::Range) {
    const int span = init.hi - init.lo + 1;
    for (int b = 0; b < 256; ++b) range_lut_[b] = uint8_t(init.lo + ((b * span) >> 8));  // Uint8Array keeps the low byte
  }
}

uint64_t SyntheticTensor::words() const { return (bytes_ + 3) / 4; }

void SyntheticTensor::fill(uint8_t* data, uint64_t first_word, uint64_t count) const {
  const uint64_t total = words();
  if (first_word >= total) return;
  const uint64_t last_word = first_word + std::min(count, total - first_word);
  const uint64_t begin = first_word * 4, end = std::min(bytes_, last_word * 4);
  uint8_t* p = data + begin;
  const uint64_t n = end - begin, full = n / 4, tail = n % 4;
  Xoshiro128 x = jumped(state_, first_word);
  switch (init_.kind) {
    case SyntheticInit::Kind::Bytes:  // the little-endian bytes of each word
      for (uint64_t i = 0; i < full; ++i) {
        const uint32_t w = x.next();
        std::memcpy(p + 4 * i, &w, 4);
      }
      if (tail) {
        const uint32_t w = x.next();
        std::memcpy(p + 4 * full, &w, tail);
      }
      break;
    case SyntheticInit::Kind::Range: {  // one value a stream byte, low byte first
      const uint8_t* lut = range_lut_;
      for (uint64_t i = 0; i < full; ++i) {
        const uint32_t w = x.next();
        const uint32_t v = uint32_t(lut[w & 0xff]) | uint32_t(lut[(w >> 8) & 0xff]) << 8 | uint32_t(lut[(w >> 16) & 0xff]) << 16 |
                           uint32_t(lut[w >> 24]) << 24;
        std::memcpy(p + 4 * i, &v, 4);
      }
      if (tail) {
        const uint32_t w = x.next();
        for (uint64_t k = 0; k < tail; ++k) p[4 * full + k] = lut[(w >> (8 * k)) & 0xff];
      }
      break;
    }
    case SyntheticInit::Kind::Normal: {  // two bf16 a word, low half first
      const uint16_t* lut = normal_lut_;
      for (uint64_t i = 0; i < full; ++i) {
        const uint32_t w = x.next();
        const uint32_t v = uint32_t(lut[w & 0xffff]) | uint32_t(lut[w >> 16]) << 16;
        std::memcpy(p + 4 * i, &v, 4);
      }
      if (tail) {  // an odd element count: the last word's low half
        const uint16_t v = lut[x.next() & 0xffff];
        std::memcpy(p + 4 * full, &v, 2);
      }
      break;
    }
  }
}

std::vector<uint8_t> synthetic_tensor(const ModelConfig& c, uint64_t seed, const std::string& name, uint64_t chunk_words) {
  check_config(c);
  if (chunk_words == 0) throw range_error("synthetic_tensor: chunk_words must be positive");
  Weights w;
  int64_t bytes = -1;
  for (const WeightSlot& s : weight_slots(c, w)) {
    Tensor t;  // shape only, for the byte counts
    t.dtype = s.dtype;
    t.shape = Shape(s.shape);
    if (s.dtype == DType::BF16 && s.name == name) bytes = int64_t(t.nbytes());
    if (s.dtype == DType::MXFP4 && s.name + "_blocks" == name) bytes = int64_t(t.nbytes());
    if (s.dtype == DType::MXFP4 && s.name + "_scales" == name) bytes = int64_t(t.scale_bytes());
  }
  if (bytes < 0) throw range_error("synthetic_tensor: the config has no tensor '" + name + "'");
  SyntheticTensor gen(seed, name, synthetic_init(c, name), uint64_t(bytes));
  std::vector<uint8_t> out(bytes);
  for (uint64_t first = 0; first < gen.words(); first += chunk_words) gen.fill(out.data(), first, chunk_words);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model::synthetic: every weight slot generated on the thread pool, then bound on the device
// ---------------------------------------------------------------------------------------------
namespace {

constexpr uint64_t kPieceWords = uint64_t(1) << 20;   // 4 MiB of one tensor: the unit of parallel work
constexpr uint64_t kGroupBytes = uint64_t(1) << 30;   // host staging per group on a device backend

uint64_t round64(uint64_t n) { return (n + 63) / 64 * 64; }

// Maps fresh memory in before it is written: one call per piece instead of a page fault per 4 KiB
// (fresh anonymous memory is what bounds the CPU path). Best effort: on failure the writes fault.
void prefault(uint8_t* p, uint64_t n) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  const uintptr_t page = 4096;
  const uintptr_t b = (uintptr_t(p) + page - 1) & ~(page - 1), e = (uintptr_t(p) + n) & ~(page - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

// Progress from several threads, in order: bytes are added and reported under one lock.
struct Reporter {
  Reporter(const LoadProgress& p, uint64_t t) : progress(p), total(t) {}
  const LoadProgress& progress;
  const uint64_t total;
  uint64_t done = 0;
  std::mutex mu;
  void add(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    done += bytes;
    if (progress) progress(done, total);
  }
};

// Generates the data of `host` (one tensor a slot, allocated) on the pool: every tensor stream is cut
// into pieces of kPieceWords, so one 1 GB tensor keeps every thread busy. `fresh`: the memory was never
// touched (prefault it). `report` per piece if set.
void generate(const std::vector<WeightSlot>& slots, size_t begin, std::vector<Tensor>& host, const ModelConfig& c,
              uint64_t seed, bool fresh, Reporter* report) {
  struct Stream {
    SyntheticTensor gen;
    uint8_t* data;
  };
  std::vector<Stream> streams;
  for (size_t i = 0; i < host.size(); ++i) {
    const WeightSlot& s = slots[begin + i];
    const Tensor& t = host[i];
    auto add = [&](const std::string& name, void* data, uint64_t bytes) {
      streams.push_back({SyntheticTensor(seed, name, synthetic_init(c, name), bytes), static_cast<uint8_t*>(data)});
    };
    if (s.dtype == DType::MXFP4) {
      add(s.name + "_blocks", t.data, t.nbytes());
      add(s.name + "_scales", t.scales, t.scale_bytes());
    } else {
      add(s.name, t.data, t.nbytes());
    }
  }
  struct Piece {
    uint32_t stream;
    uint64_t first_word;
  };
  std::vector<Piece> pieces;
  for (size_t k = 0; k < streams.size(); ++k)
    for (uint64_t w = 0; w < streams[k].gen.words(); w += kPieceWords) pieces.push_back({uint32_t(k), w});
  parallel_for(int64_t(pieces.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Stream& s = streams[pieces[i].stream];
      const uint64_t first = pieces[i].first_word;
      const uint64_t bytes = std::min(s.gen.bytes(), (first + kPieceWords) * 4) - first * 4;
      if (fresh) prefault(s.data + first * 4, bytes);
      s.gen.fill(s.data, first, kPieceWords);
      if (report) report->add(bytes);
    }
  });
}

// Joins a thread on every way out of the scope (a thread still joinable at destruction aborts).
struct JoinOnExit {
  std::thread& t;
  ~JoinOnExit() {
    if (t.joinable()) t.join();
  }
};

}  // namespace

std::shared_ptr<Model> Model::synthetic(const ModelConfig& c, uint64_t seed, const Device& device, const LoadProgress& progress,
                                        bool dense_q8, bool experts_bf16) {
  check_config(c);
  if (experts_bf16 && device.kind == DeviceKind::HIP)
    throw type_error("experts: 'bf16' is not supported on " + device.str() + " yet (its kernels have not run on an AMD GPU); use device: 'cpu' or 'cuda'");
  auto model = std::shared_ptr<Model>(new Model());
  model->config_ = c;
  model->backend_ = get_backend(device);
  model->kv_cache_ = model->backend_->default_kv_type();
  Backend& backend = *model->backend_;
  const std::vector<WeightSlot> slots = weight_slots(c, model->weights_);
  uint64_t total = 0, largest = 0;
  for (const WeightSlot& s : slots) {
    total += s.bytes();
    largest = std::max(largest, s.bytes());
  }
  Reporter report{progress, total};
  // denseWeights: 'q8': a Matrix slot's generated bf16 -> Q8_0 on the host, then uploaded (its bytes
  // as the report counts them stay the bf16 ones).
  // experts: 'bf16': an Experts slot's generated MXFP4 [E, R, C] dequantized to bf16, exactly (E2M1 x
  // 2^k fits bf16): on a GPU by its own kernel into [E, R, C] (its rows), on the CPU on the host and
  // transposed to transformers' [E, C, R] (the layout its bf16 expert kernels read).
  auto bind = [&](const WeightSlot& s, const Tensor& host) {
    if (experts_bf16 && s.role == WeightRole::Experts) {
      if (device.kind == DeviceKind::CPU) {
        Tensor rows = host_empty(DType::BF16, s.shape);
        cpu::mxfp4_dequantize(host, rows);
        Tensor t = host_empty(DType::BF16, {s.shape[0], s.shape[2], s.shape[1]});
        cpu::transpose_experts(rows, t);
        return t;
      }
      const Tensor packed = backend.upload(host);
      Tensor rows = backend.empty(DType::BF16, s.shape);
      backend.mxfp4_dequantize(packed, rows);
      backend.synchronize();  // packed goes back to the pool on return
      return rows;
    }
    if (!dense_q8 || s.role != WeightRole::Matrix) return backend.upload(host);
    Tensor q = host_empty(DType::Q8_0, s.shape);
    cpu::quantize_q8_0(host, q);
    return backend.upload(q);
  };

  if (device.kind == DeviceKind::CPU) {
    // The host buffers are the weights (upload is zero copy): generate them all at once.
    std::vector<Tensor> host;
    for (const WeightSlot& s : slots) host.push_back(host_empty(s.dtype, s.shape));
    generate(slots, 0, host, c, seed, true, &report);
    for (size_t i = 0; i < slots.size(); ++i) *slots[i].target = bind(slots[i], host[i]);
  } else {
    // A device: host memory stays bounded. Slots are generated in groups into one of two staging
    // buffers while the previous group is uploaded from the other (one upload thread, in slot order).
    const uint64_t budget = std::max(kGroupBytes, round64(largest));
    std::vector<std::pair<size_t, size_t>> groups;
    uint64_t used = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      const uint64_t b = round64(slots[i].bytes());
      if (groups.empty() || used + b > budget) {
        groups.push_back({i, i});
        used = 0;
      }
      groups.back().second = i + 1;
      used += b;
    }
    Tensor staging[2];
    std::vector<Tensor> host[2];
    std::exception_ptr upload_error;
    std::thread uploader;
    JoinOnExit join{uploader};
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto [begin, end] = groups[g];
      Tensor& buffer = staging[g % 2];
      std::vector<Tensor>& views = host[g % 2];
      if (!buffer.defined()) buffer = host_empty(DType::U8, {int64_t(std::min(budget, total + 64 * slots.size()))});
      views.clear();
      uint64_t offset = 0;
      for (size_t i = begin; i < end; ++i) {
        Tensor t;
        t.dtype = slots[i].dtype;
        t.shape = Shape(slots[i].shape);
        t.data = buffer.ptr<uint8_t>() + offset;
        if (t.dtype == DType::MXFP4) t.scales = buffer.ptr<uint8_t>() + offset + t.nbytes();
        t.storage = buffer.storage;
        views.push_back(std::move(t));
        offset += round64(slots[i].bytes());
      }
      generate(slots, begin, views, c, seed, g < 2, nullptr);
      if (uploader.joinable()) uploader.join();
      if (upload_error) std::rethrow_exception(upload_error);
      uploader = std::thread([&, begin = begin, end = end, &views = views] {
        try {
          for (size_t i = begin; i < end; ++i) {
            *slots[i].target = bind(slots[i], views[i - begin]);
            report.add(slots[i].bytes());
          }
        } catch (...) {
          upload_error = std::current_exception();
        }
      });
    }
    uploader.join();
    if (upload_error) std::rethrow_exception(upload_error);
  }
  model->weight_bytes_ = total;
  if (experts_bf16)  // the experts run from 2 bytes a weight, not the MXFP4 bytes generated
    for (const WeightSlot& s : slots)
      if (s.role == WeightRole::Experts) model->weight_bytes_ += s.target->nbytes() - s.bytes();
  model->prepare_experts();
  model->init_rope();
  return model;
}

}  // namespace gptoss
