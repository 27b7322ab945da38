// Kernel selection (policy.h) and the pure part of the capability table (caps.h). Compiled into every
// build, with or without CUDA, so the host test runs anywhere.
#include "policy.h"

#include "gemm_wgmma_layout.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace gptoss::cuda {

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------
const char* tensor_cores_name(TensorCores t) {
  switch (t) {
    case TensorCores::MmaSync: return "mma.sync";
    case TensorCores::Wgmma: return "wgmma";
    case TensorCores::Tcgen05: return "tcgen05";
    case TensorCores::Mfma: return "mfma";
    case TensorCores::None: break;
  }
  return "none";
}

GpuCaps make_caps(int device, const std::string& name, int arch, int compiled_arch, unsigned compiled, int smem_optin,
                  int sm_count, int warp_size, size_t total_mem, bool amd) {
  GpuCaps c;
  c.device = device;
  c.name = name;
  c.amd = amd;
  c.arch = arch;
  c.compiled_arch = compiled_arch;
  c.compiled = compiled_arch ? compiled : 0u;
  c.tensor_cores = c.compiled & kFeatTcgen05 ? TensorCores::Tcgen05
                   : c.compiled & kFeatWgmma ? TensorCores::Wgmma
                   : c.compiled & kFeatMfma  ? TensorCores::Mfma
                   : c.compiled & kFeatMmaSync ? TensorCores::MmaSync
                                               : TensorCores::None;
  // Every tensor-core kernel of this tree is written for mma.sync; wgmma/tcgen05 images carry it too.
  c.mma_sync = (c.compiled & kFeatMmaSync) != 0;
  c.fp8_compiled = (c.compiled & kFeatFp8Mma) != 0;
  // e4m3 mma.sync is native on Ada (sm_89) and Blackwell's sm_12x. On Hopper ptxas lowers it to f16
  // HMMAs plus a conversion of every operand (F2FP.F16.E4M3.UNPACK_B in the SASS), and the H200
  // measured the FP8 kernels slower than Mma (bench/RESULTS.md); sm_100 is not known here.
  c.fp8_mma = c.fp8_compiled && !amd &&
              ((arch >= GPTOSS_ARCH_ADA && arch < GPTOSS_ARCH_HOPPER) || arch >= GPTOSS_ARCH_BLACKWELL_RTX);
  c.pdl = (c.compiled & kFeatPdl) != 0 && !amd && arch >= GPTOSS_ARCH_HOPPER;
  c.bulk_async = (c.compiled & kFeatBulkAsync) != 0 && !amd && arch >= GPTOSS_ARCH_HOPPER;
  c.mma_block_scale = (c.compiled & kFeatMmaBlockScale) != 0 && !amd && arch >= GPTOSS_ARCH_BLACKWELL_RTX;
  c.smem_optin = smem_optin;
  c.sm_count = sm_count;
  c.warp_size = warp_size;
  c.total_mem = total_mem;
  return c;
}

namespace {
// GPTOSS_COMPILED_ARCH of an AMD image (arch.cuh): the gfx number, gfx90a as 910.
std::string gfx_name(int compiled_arch) { return compiled_arch == 910 ? "gfx90a" : "gfx" + std::to_string(compiled_arch); }
}  // namespace

std::string arch_label(const GpuCaps& c) {
  if (!c.amd) return "sm_" + std::to_string(c.arch / 10);
  if (c.compiled_arch > 1) return gfx_name(c.compiled_arch);
  return "gfx" + std::to_string(c.arch / 100) + std::to_string(c.arch / 10 % 10) + "x";  // compute capability 9.4 -> gfx94x
}

std::string caps_summary(const GpuCaps& c) {
  char buf[256];
  if (c.amd) {
    if (!c.compiled_arch) return arch_label(c) + ", no code object in this plugin";
    std::snprintf(buf, sizeof buf, "%s, image %s (%s), %d CUs, %d KB LDS a block", arch_label(c).c_str(),
                  c.compiled_arch > 1 ? gfx_name(c.compiled_arch).c_str() : "unknown", tensor_cores_name(c.tensor_cores),
                  c.sm_count, c.smem_optin / 1024);
    return buf;
  }
  if (!c.compiled_arch) {
    std::snprintf(buf, sizeof buf, "sm_%d, no image in this binary", c.arch / 10);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "sm_%d %s, image sm_%d%s (%s%s%s%s), %d SMs, %d KB smem a block", c.arch / 10,
                arch_name(c.arch), c.compiled_arch / 10,
                c.compiled & (kFeatWgmma | kFeatTcgen05 | kFeatMmaBlockScale) ? "a" : "", tensor_cores_name(c.tensor_cores),
                c.fp8_mma ? ", fp8" : c.fp8_compiled ? ", fp8 emulated" : "",
                c.mma_block_scale               ? ", mxf8 block-scale"
                : c.block_scale_selftest_failed ? ", mxf8 block-scale failed its self-test (not used)"
                                                : "",
                c.pdl ? ", pdl" : "", c.sm_count, c.smem_optin / 1024);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Knobs
// ---------------------------------------------------------------------------------------------
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  const int n = v ? std::atoi(v) : 0;
  return v && n >= lo && n <= hi ? n : fallback;
}
bool env_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "false") == 0 || std::strcmp(v, "off") == 0);
}

namespace {
// The named value of an enumerated knob: `fallback` when the variable is unset or names none of `values`.
template <class T>
T env_choice(const char* name, T fallback, std::initializer_list<std::pair<const char*, T>> values) {
  const char* v = std::getenv(name);
  if (!v) return fallback;
  for (const auto& [text, value] : values)
    if (!std::strcmp(v, text)) return value;
  return fallback;
}

// The knobs read at each knobs() call (policy.h): gpu_check and the kernel bench switch them between calls.
void read_per_call_knobs(GpuKnobs& k) {
  using K = GpuKnobs;
  k.moe_decode = env_choice("GPTOSS_CUDA_MOE_DECODE", K::MoeDecode::Auto,
                            {{"mma", K::MoeDecode::Mma}, {"mma-prmt", K::MoeDecode::MmaPrmt},
                             {"mma-fp8", K::MoeDecode::MmaFp8}, {"simt", K::MoeDecode::Simt},
                             {"mma-relaid", K::MoeDecode::MmaRelaid}, {"mfma", K::MoeDecode::Mfma},
                             {"mma-mxf8", K::MoeDecode::MmaMxf8},
                             {"stream", K::MoeDecode::Stream}});
  k.moe_bf16 = env_choice("GPTOSS_CUDA_MOE_BF16", K::MoeBf16::Auto,
                          {{"gemv", K::MoeBf16::Gemv}, {"grouped", K::MoeBf16::Grouped}});
  k.moe_batch = env_choice("GPTOSS_CUDA_MOE_BATCH", K::MoeBatch::Auto,
                           {{"mma", K::MoeBatch::GroupedMma}, {"gemm", K::MoeBatch::Gemm}, {"stream", K::MoeBatch::Stream}});
  k.moe_group = env_choice("GPTOSS_CUDA_MOE_GROUP", 0, {{"4", 4}, {"8", 8}});
  k.gemv = env_choice("GPTOSS_CUDA_GEMV", K::Gemv::Auto, {{"warp", K::Gemv::Warp}, {"xs", K::Gemv::Xs}});
  k.gemv_ctas = env_int("GPTOSS_CUDA_GEMV_CTAS", 0, 1, 8);
  k.attn_decode = env_choice("GPTOSS_CUDA_ATTN_DECODE", K::AttnDecode::Auto, {{"mma", K::AttnDecode::Mma}, {"simt", K::AttnDecode::Simt}});
  k.gemm = env_choice("GPTOSS_CUDA_GEMM", K{}.gemm,
                      {{"auto", K::Gemm::Auto}, {"mma", K::Gemm::Mma}, {"wgmma", K::Gemm::Wgmma}});
  k.gemm_splitk = env_int("GPTOSS_CUDA_GEMM_SPLITK", 0, 1, 8);
  k.gemm_ws = env_flag("GPTOSS_CUDA_GEMM_WS", kGemmWsDefault);
  k.moe_stream_tokens = env_choice("GPTOSS_CUDA_MOE_STREAM_TOKENS", 0, {{"16", 16}, {"32", 32}});
  k.moe_stream_max = env_int("GPTOSS_CUDA_MOE_STREAM_MAX", 0, 1, kMoeStreamMaxPerExpert);
  k.moe_act_bf16 = env_choice("GPTOSS_CUDA_MOE_ACT", false, {{"bf16", true}, {"split", false}});
  k.gemv_max_tokens = env_int("GPTOSS_CUDA_GEMV_MAX_TOKENS", 0, 1, kGemvMaxTokens);
  k.moe_stream_tma = env_choice("GPTOSS_CUDA_MOE_STREAM_TMA", K::MoeStreamTma::Auto,
                                {{"0", K::MoeStreamTma::Off}, {"1", K::MoeStreamTma::On}});
  k.attn_mma_splits = env_int("GPTOSS_CUDA_ATTN_MMA_SPLITS", 32, 1, kDecodeMmaMaxSplits);
  k.router_cluster = env_flag("GPTOSS_CUDA_ROUTER_CLUSTER", false);
  k.moe_act_frags = env_flag("GPTOSS_CUDA_MOE_ACT_FRAGS", false);
  k.router_rank = env_flag("GPTOSS_CUDA_ROUTER_RANK", true);
  k.logprobs_device = env_choice("GPTOSS_CUDA_LOGPROBS", false, {{"device", true}, {"host", false}});
  k.moe_slice = env_int("GPTOSS_CUDA_MOE_SLICE", kMoeSliceDefault, 4, kMoeSliceMax);
  k.moe_staged = env_int("GPTOSS_CUDA_MOE_STAGED", 0, 1, 3);
  k.moe_staged_ctas = env_int("GPTOSS_CUDA_MOE_STAGED_CTAS", 0, 1, 1 << 16);
}
}  // namespace

GpuKnobs GpuKnobs::from_env() {
  GpuKnobs k;
  k.moe_fp8_ctas = env_int("GPTOSS_CUDA_MOE_FP8_CTAS", 2, 1, 2);
  k.attn_splits = env_int("GPTOSS_CUDA_ATTN_SPLITS", 32, 1, kDecodeMaxSplits);
  k.attn_window_splits = env_int("GPTOSS_CUDA_ATTN_WINDOW_SPLITS", 1, 1, 2);
  k.pdl = env_flag("GPTOSS_CUDA_PDL", true);
  read_per_call_knobs(k);
  return k;
}

GpuKnobs knobs() {
  static const GpuKnobs base = GpuKnobs::from_env();
  GpuKnobs k = base;
  read_per_call_knobs(k);
  return k;
}

// ---------------------------------------------------------------------------------------------
// Choosers
// ---------------------------------------------------------------------------------------------
namespace {
int ceil_div_i(int64_t a, int64_t b) { return int((a + b - 1) / b); }
}  // namespace

bool wgmma_grouped_ws(const GpuCaps& caps, const GpuKnobs& k, int bm, int K) {
  return k.gemm_ws && (bm == 64 || bm == 128) && K > 0 && wgmma_tile_runs(caps) &&
         wgmma::ws_smem_bytes(bm, (K + 31) / 32) + wgmma::static_smem_bytes(bm) <= caps.smem_optin;
}

bool wgmma_tile_runs(const GpuCaps& caps) {
  return !caps.amd && caps.mma_sync && (caps.compiled & kFeatWgmma) != 0 &&
         wgmma::smem_bytes(true, 64, wgmma::kMaxKBlocks) + wgmma::static_smem_bytes(64) <= caps.smem_optin;
}

namespace {
// The tile of a problem the per-problem policy wants on wgmma (`wgmma_wanted`), under the knob.
GemmTileKind tile_kind(const GpuCaps& caps, const GpuKnobs& k, bool wgmma_wanted) {
  if (caps.tensor_cores == TensorCores::Mfma) return GemmTileKind::Mfma;
  if (!caps.mma_sync) return GemmTileKind::None;
  const bool want = k.gemm == GpuKnobs::Gemm::Wgmma || (k.gemm == GpuKnobs::Gemm::Auto && wgmma_wanted);
  return want && wgmma_tile_runs(caps) ? GemmTileKind::Wgmma : GemmTileKind::MmaSync;
}
}  // namespace

int gemv_max_tokens(const GpuCaps& caps, const GpuKnobs& k) {
  if (k.gemv_max_tokens >= 1) return std::min(k.gemv_max_tokens, kGemvMaxTokens);
  return wgmma_tile_runs(caps) ? kGemvWgmmaMaxTokens : kGemvMaxTokens;
}

GemmTileKind gemm_tile_kind(const GpuCaps& caps, const GpuKnobs& k, int64_t rows) {
  return tile_kind(caps, k, rows > gemv_max_tokens(caps, k));
}
GemmTileKind gemm_tile_kind(const GpuCaps& caps, int64_t rows) { return gemm_tile_kind(caps, knobs(), rows); }

int wgmma_dense_splits(const GpuCaps& caps, const GpuKnobs& k, int tiles, int k_steps,
                       const std::function<int(int)>& resident) {
  if (k.gemm_splitk == 1 || tiles <= 0 || k_steps <= 1) return 1;
  int s = k.gemm_splitk >= 2 ? k.gemm_splitk : std::min(caps.sm_count / tiles, k_steps / kSplitMinSteps);
  s = std::max(std::min({s, wgmma::kMaxSplits, k_steps}), 1);
  if (k.gemm_splitk < 2 && resident)  // one wave: fewer splits rather than a cluster left for a second
    for (int r; s > 1 && (r = resident(s)) >= 0 && r < tiles;) --s;
  return s;
}

GemmTileKind moe_gemm_tile_kind(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E) {
  return tile_kind(caps, k, E > 0 && int64_t(n) * experts_per_token >= int64_t(kWgmmaMoeMinRowsPerExpert) * E);
}
GemmTileKind moe_gemm_tile_kind(const GpuCaps& caps, int n, int experts_per_token, int E) {
  return moe_gemm_tile_kind(caps, knobs(), n, experts_per_token, E);
}

LinearPath choose_linear(const GpuCaps& caps, int n, int K, bool mxfp4) {
  if (!mxfp4 && K % 8 != 0) return LinearPath::Naive;
  if (mxfp4 && K % 32 != 0) return LinearPath::Naive;
  if (n <= gemv_max_tokens(caps, knobs())) return LinearPath::Gemv;
  if (gemm_tile_kind(caps, n) == GemmTileKind::None) return LinearPath::Naive;
  return mxfp4 && K / 32 > kGemmMaxKBlocks ? LinearPath::Naive : LinearPath::Gemm;  // the tile keeps K/32 scales a row
}

AttentionPath flash_path(const GpuCaps& caps) {
  if (caps.tensor_cores == TensorCores::Mfma) return AttentionPath::FlashMfma;
  return caps.mma_sync ? AttentionPath::Flash : AttentionPath::Naive;
}

LinearPath choose_linear_q8(const GpuCaps& caps, int n) {
  return n > gemv_max_tokens(caps, knobs()) && gemm_tile_kind(caps, n) != GemmTileKind::None ? LinearPath::Gemm : LinearPath::Gemv;
}

GemvKernel choose_gemv(const GpuCaps& caps, const GpuKnobs& k, GemvFormat f, int n, int K, bool x_aligned) {
  const bool row1 = f == GemvFormat::BF16 && n == 1 && x_aligned && K % 8 == 0 && K <= 16 * caps.warp_size * 8;
  // Xs: not opted out (GPTOSS_CUDA_GEMV=warp), NVIDIA, a format it reads, rows within a lane's registers, x 16-byte aligned, and
  // the tokens' x (f32) within a block's shared memory. bf16 at one token stays on Row1 (the same
  // structure, with the fused add_rmsnorm variant beside it).
  const bool xs = k.gemv != GpuKnobs::Gemv::Warp && !caps.amd && f != GemvFormat::MXFP4 && n >= 1 && n <= kGemvMaxTokens &&
                  x_aligned && K > 0 && K <= kGemvXsMaxK && K % (f == GemvFormat::Q8 ? 32 : 8) == 0 &&
                  int64_t(n) * K * 4 <= caps.smem_optin && !(f == GemvFormat::BF16 && n == 1);
  if (xs) return GemvKernel::Xs;
  return row1 ? GemvKernel::Row1 : GemvKernel::Warp;
}

int gemv_ctas_per_sm(const GpuKnobs& k, int fit) {
  const int f = std::max(1, fit);
  return k.gemv_ctas > 0 ? std::min(f, k.gemv_ctas) : f;
}

AttentionPath choose_attention(const GpuCaps& caps, int n, int Hq, int Hkv, int D) {
  const int G = Hkv > 0 ? Hq / Hkv : 0;
  if (n <= kAttnDecodeMaxTokens && G <= kDecodeMaxG && D == kDecodeD && int64_t(n) * Hkv <= kDecodeMaxPairs)
    return AttentionPath::Decode;
  if (D == kFlashD) return flash_path(caps);
  return AttentionPath::Naive;
}

// One 64-key tile a split over the most keys a query can see, at most k.attn_splits splits (longer
// ranges: several tiles a split). A window of at most 4 tiles (gpt-oss: 128 keys) is one split: no
// partials, no merge (k.attn_window_splits = 2 gives it two). A split always takes whole tiles.
int attention_decode_splits(const GpuKnobs& k, int ctx, int sliding_window) {
  const int span = sliding_window > 0 ? std::min(ctx, sliding_window) : ctx;
  if (sliding_window > 0 && span <= 4 * kDecodeTile) return std::min(k.attn_window_splits, ceil_div_i(span, kDecodeTile));
  const int s = ceil_div_i(span, kDecodeTile);
  return s < 1 ? 1 : (s > k.attn_splits ? k.attn_splits : s);
}

bool attention_decode_uses_mma(const GpuCaps& caps, const GpuKnobs& k, int Hq, int Hkv, bool f32_values, int seqs,
                               int span) {
  using Want = GpuKnobs::AttnDecode;
  if (k.attn_decode == Want::Simt || !caps.mma_sync || caps.tensor_cores == TensorCores::Mfma) return false;
  if (k.attn_decode == Want::Auto &&
      !(caps.arch == 900 && (seqs >= kDecodeMmaAutoMinSeqs || (seqs == 1 && span >= kDecodeMmaAutoMinSpan))))
    return false;
  return Hkv > 0 && Hq % Hkv == 0 && Hq / Hkv <= kDecodeMmaMaxG && !f32_values;
}

int attention_decode_mma_splits(const GpuKnobs& k, int ctx, int sliding_window) {
  const int span = sliding_window > 0 ? std::min(ctx, sliding_window) : ctx;
  const int tiles = ceil_div_i(std::max(span, 1), kDecodeMmaTile);
  if (sliding_window > 0 && tiles <= 4) return 1;
  return std::min(tiles, k.attn_mma_splits);
}

int attention_paged_splits(const GpuKnobs& k, int ctx, int sliding_window, int pairs, int sms) {
  const int base = attention_decode_splits(k, ctx, sliding_window);
  const int want = ceil_div_i(4 * std::max(sms, 1), std::max(pairs, 1));  // about 4 blocks an SM in all
  return std::max(1, std::min(base, want));
}

bool router_uses_split(const GpuCaps& caps, int n, int E) {
  return n <= kRouterSplitMaxTokens && E > kRow4Threads / caps.warp_size;
}

bool router_uses_cluster(const GpuCaps& caps, const GpuKnobs& k, int n, int E) {
  const int blocks = (E + kRow4Threads / caps.warp_size - 1) / (kRow4Threads / caps.warp_size);
  return k.router_cluster && caps.pdl && !caps.amd && router_uses_split(caps, n, E) && blocks <= kRouterClusterMax;
}

bool moe_uses_decode(int n, int k) { return int64_t(n) * k <= kMoeDecodeMaxPairs; }

MoeBf16Path choose_moe_bf16(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token) {
  using Want = GpuKnobs::MoeBf16;
  if (gemm_tile_kind(caps, k, n) == GemmTileKind::None || k.moe_bf16 == Want::Gemv) return MoeBf16Path::Gemv;
  if (k.moe_bf16 == Want::Grouped) return MoeBf16Path::Grouped;
  return moe_uses_decode(n, experts_per_token) ? MoeBf16Path::Gemv : MoeBf16Path::Grouped;
}

namespace {
// The FP8 streaming kernels' ring depth (3, else 2) for both GEMMs of a layer, given their shared memory a CTA.
int fp8_stream_stages(const GpuCaps& caps, int H, int I, int (*cta_smem)(int nch, int stages)) {
  const int nh = H / 32, ni = I / 32;
  if (fp8_per(nh) > kFp8PerMax || fp8_per(ni) > kFp8PerMax) return 0;
  for (int st : {3, 2})
    if (std::max(cta_smem(nh, st), cta_smem(ni, st)) <= caps.smem_optin) return st;
  return 0;
}
}  // namespace

int moe_fp8_stages(const GpuCaps& caps, int H, int I) { return fp8_stream_stages(caps, H, I, fp8_cta_smem); }
int moe_mxf8_stages(const GpuCaps& caps, int H, int I) { return fp8_stream_stages(caps, H, I, mxf8_cta_smem); }

namespace {
bool moe_mma_fits(const GpuCaps& caps, const GpuKnobs& k, int H, int I) {
  const int nh = H / 32, ni = I / 32;
  const int smem_cap = std::min(kMoeMaxSmem, caps.smem_optin);
  return caps.mma_sync && slice_shape(nh, k.moe_slice).slices <= kMoeMaxWarps &&
         slice_shape(ni, k.moe_slice).slices <= kMoeMaxWarps && mma_cta_smem(nh, k.moe_slice) <= smem_cap &&
         mma_cta_smem(ni, k.moe_slice) <= smem_cap;
}
}  // namespace

bool moe_decode_layout(const GpuCaps& caps, const GpuKnobs& k, int H, int I) {
  // Hopper's default since the fourteenth session (H100: the 64-stream step 12.9 -> 12.3 ms, 128 streams
  // 18.1 -> 17.2 ms, one stream 2.5 -> 2.4 ms; bench/RESULTS.md); elsewhere on request. An explicit
  // GPTOSS_CUDA_MOE_DECODE=mma (or any other kernel) keeps the checkpoint's layout.
  const bool wanted = k.moe_decode == GpuKnobs::MoeDecode::MmaRelaid ||
                      (k.moe_decode == GpuKnobs::MoeDecode::Auto && caps.arch == 900);
  return wanted && H > 0 && I > 0 && H % 32 == 0 && I % 32 == 0 &&
         H % kMoeTileRows == 0 && (2 * I) % kMoeTileRows == 0 &&
         int64_t(kMoeDecodeMaxPairs) * ceil_div_i(H, kMoeTileRows) <= kMoeTileCounters && moe_mma_fits(caps, k, H, I);
}

namespace {
bool group_fits(const GpuCaps& caps, const GpuKnobs& k, int H, int I, int tokens) {
  const int smem_cap = std::min(kMoeMaxSmem, caps.smem_optin);
  return caps.mma_sync && caps.tensor_cores != TensorCores::Mfma && H > 0 && I > 0 && H % 32 == 0 && I % 32 == 0 &&
         slice_shape(H / 32, k.moe_slice).slices <= kMoeMaxWarps && slice_shape(I / 32, k.moe_slice).slices <= kMoeMaxWarps &&
         group_cta_smem(H / 32, k.moe_slice, tokens) <= smem_cap && group_cta_smem(I / 32, k.moe_slice, tokens) <= smem_cap;
}
}  // namespace

namespace {
// Whether `ctas` blocks of `bytes` shared memory each fit one SM: an SM's shared memory is the block opt-in plus
// the 1 KB the driver reserves a block (sm_80..sm_120), and each block takes its 1 KB too.
bool ctas_fit_sm(const GpuCaps& caps, int ctas, int bytes) { return ctas * (bytes + 1024) <= caps.smem_optin + 1024; }
}  // namespace

int moe_stream_stages(const GpuCaps& caps, int nch) {
  if (!caps.mma_sync || caps.amd || caps.tensor_cores == TensorCores::Mfma || nch <= 0) return 0;
  if (ctas_fit_sm(caps, 3, moe_stream_smem_bytes(kMoeStreamShallowStages, nch))) return kMoeStreamShallowStages;
  if (ctas_fit_sm(caps, 2, moe_stream_smem_bytes(kMoeStreamDeepStages, nch))) return kMoeStreamDeepStages;
  return moe_stream_smem_bytes(kMoeStreamShallowStages, nch) <= caps.smem_optin ? kMoeStreamShallowStages : 0;
}

int moe_stream_wide_stages(const GpuCaps& caps, int nch) {
  if (moe_stream_stages(caps, nch) == 0) return 0;
  return ctas_fit_sm(caps, 2, moe_stream_smem_bytes(kMoeStreamShallowStages, nch, kMoeStreamWideTokens))
             ? kMoeStreamShallowStages
             : 0;
}

bool moe_stream_uses_tma(const GpuCaps& caps, const GpuKnobs& k, int nch, int tokens, int stages) {
  using T = GpuKnobs::MoeStreamTma;
  if (k.moe_stream_tma == T::Off || !caps.bulk_async) return false;
  // the rings compiled (the wide CTA on the shallow one only), as many CTAs an SM as the cp.async kernel's
  if (stages != kMoeStreamShallowStages && !(stages == kMoeStreamDeepStages && tokens == kMoeStreamTokens)) return false;
  return ctas_fit_sm(caps, moe_stream_ctas_per_sm(stages, tokens), moe_stream_tma_smem_bytes(stages, nch, tokens));
}

int moe_stream_deep_stages(const GpuCaps& caps, int nch) {
  if (moe_stream_stages(caps, nch) == 0) return 0;
  return moe_stream_smem_bytes(kMoeStreamDeepStages, nch) <= caps.smem_optin ? kMoeStreamDeepStages : 0;
}

namespace {
// The streaming MoE kernels can take experts of these widths on this device: MXFP4 rows (K a multiple of
// 32) in the checkpoint's layout or the decode layout (moe_decode_layout() holds only where the rows are a
// multiple of 16), and a ring that fits for both GEMMs (gate_up's K = H, down's K = I).
bool moe_stream_runs(const GpuCaps& caps, int E, int H, int I) {
  return E > 0 && H > 0 && I > 0 && H % 32 == 0 && I % 32 == 0 && moe_stream_stages(caps, H / 32) > 0 &&
         moe_stream_stages(caps, I / 32) > 0;
}
}  // namespace

int moe_stream_tokens(const GpuCaps& caps, const GpuKnobs& k, int64_t pairs, int E, int H, int I) {
  const bool wide_runs = moe_stream_runs(caps, 1, H, I) && moe_stream_wide_stages(caps, H / 32) > 0 &&
                         moe_stream_wide_stages(caps, I / 32) > 0;
  if (!wide_runs || k.moe_stream_tokens == kMoeStreamTokens) return kMoeStreamTokens;
  if (k.moe_stream_tokens == kMoeStreamWideTokens) return kMoeStreamWideTokens;
  return caps.arch == 900 && E > 0 && pairs >= int64_t(kMoeStreamWideAutoMinPerExpert) * E ? kMoeStreamWideTokens
                                                                                          : kMoeStreamTokens;
}

bool moe_decode_uses_stream(const GpuCaps& caps, const GpuKnobs& k, int E, int H, int I) {
  return k.moe_decode == GpuKnobs::MoeDecode::Stream && moe_stream_runs(caps, E, H, I);
}

MoeBatchPath choose_moe_batch(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E, int H, int I,
                              bool decode_layout) {
  using Want = GpuKnobs::MoeBatch;
  const int64_t pairs = int64_t(n) * experts_per_token;
  const bool stream_runs = moe_stream_runs(caps, E, H, I);
  if (k.moe_batch == Want::Stream && stream_runs && pairs <= int64_t(kMoeStreamMaxPerExpert) * E) return MoeBatchPath::Stream;
  if (E <= 0 || k.moe_batch == Want::Gemm) return MoeBatchPath::Gemm;
  // Hopper (where it was measured): the streaming kernels between the grouped decode kernels' few rows an
  // expert and the GEMM tile's many (shapes.h kMoeStreamAuto*). They read the decode layout too.
  const int64_t top = k.moe_stream_max > 0 ? k.moe_stream_max : kMoeStreamAutoMaxPerExpert;
  const bool stream_band = caps.arch == 900 && stream_runs && pairs > int64_t(kMoeStreamAutoMinPerExpert) * E &&
                           pairs <= top * E;
  // The grouped decode kernels read the checkpoint's layout only: the decode layout takes the stream below the band
  // as well (16th session: at 8 streams of the 20b the GEMM tile, 8 rows of ~21 experts, held a step at ~12 ms
  // against ~9 ms at 64 streams), the tile above it.
  const bool stream_below = caps.arch == 900 && stream_runs && pairs <= top * E;
  if (decode_layout) return stream_below ? MoeBatchPath::Stream : MoeBatchPath::Gemm;
  if (!group_fits(caps, k, H, I, 4)) return stream_band ? MoeBatchPath::Stream : MoeBatchPath::Gemm;
  if (k.moe_batch == Want::GroupedMma) return MoeBatchPath::GroupedMma;
  if (stream_band) return MoeBatchPath::Stream;
  return pairs <= int64_t(kMoeGroupMaxPerExpert) * E ? MoeBatchPath::GroupedMma : MoeBatchPath::Gemm;
}

int moe_group_tokens(const GpuCaps& caps, const GpuKnobs& k, int n, int experts_per_token, int E, int H, int I) {
  const bool eight = group_fits(caps, k, H, I, 8);
  if (k.moe_group == 4 || k.moe_group == 8) return k.moe_group == 8 && eight ? 8 : 4;
  (void)n, (void)experts_per_token, (void)E;
  return 4;  // 8 on request only: at 64 streams it ran 2.2x slower than the GEMM tile (2 CTAs an SM, 8 tokens' fragments)
}

MoeDecodeKind choose_moe_decode(const GpuCaps& caps, const GpuKnobs& k, int n, int H, int I, bool decode_layout) {
  using Want = GpuKnobs::MoeDecode;
  if (decode_layout) return MoeDecodeKind::MmaRelaid;  // moe_decode_layout() held at upload
  if (k.moe_decode == Want::Simt) return MoeDecodeKind::Simt;
  if (int64_t(n) * ceil_div_i(H, kMoeTileRows) > kMoeTileCounters) return MoeDecodeKind::Simt;  // last-block counters
  // AMD: the SIMT kernels (the same source as the ones verified on NVIDIA) unless the MFMA kernels are
  // asked for (GPTOSS_CUDA_MOE_DECODE=mfma: compiled, not yet run on an AMD GPU), and then only where a
  // CTA's LDS holds the activation.
  if (caps.tensor_cores == TensorCores::Mfma)
    return k.moe_decode == Want::Mfma && moe_mfma_smem_bytes(std::max(H / 32, I / 32)) <= caps.smem_optin
               ? MoeDecodeKind::Mfma
               : MoeDecodeKind::Simt;
  const bool mma_fits = moe_mma_fits(caps, k, H, I);
  if (k.moe_decode == Want::MmaPrmt && mma_fits) return MoeDecodeKind::MmaPrmt;
  if (k.moe_decode == Want::Mma && mma_fits) return MoeDecodeKind::Mma;
  // The block-scaled MMA (sm_120a): the default where it is compiled, the device runs it and it passed its
  // self-test (caps.mma_block_scale); on request wherever e4m3 mma.sync is compiled (emulated: the checks).
  if (k.moe_decode == Want::Auto || k.moe_decode == Want::MmaMxf8) {
    const bool mxf8_wanted = k.moe_decode == Want::MmaMxf8 ? caps.fp8_compiled || caps.mma_block_scale : caps.mma_block_scale;
    if (mxf8_wanted && moe_mxf8_stages(caps, H, I) > 0) return MoeDecodeKind::MmaMxf8;
  }
  const bool fp8_wanted = k.moe_decode == Want::MmaFp8 ? caps.fp8_compiled : caps.fp8_mma;
  if (fp8_wanted && moe_fp8_stages(caps, H, I) > 0) return MoeDecodeKind::MmaFp8;
  return mma_fits ? MoeDecodeKind::Mma : MoeDecodeKind::Simt;
}

int gemm_tile_rows(const GpuCaps& caps, int64_t rows_per_group, bool mxfp4, int K) {
  return gemm_tile_rows(caps, gemm_tile_kind(caps, rows_per_group), rows_per_group, mxfp4, K);
}

int gemm_tile_rows(const GpuCaps& caps, GemmTileKind kind, int64_t rows_per_group, bool mxfp4, int K) {
  if (kind == GemmTileKind::Wgmma) {  // 64 always fits (wgmma_tile_runs); 128 where its ring does
    const int kb = mxfp4 ? K / 32 : 0;
    const bool fits128 = wgmma::smem_bytes(mxfp4, 128, kb) + wgmma::static_smem_bytes(128) <= caps.smem_optin;
    return rows_per_group >= 96 && fits128 ? 128 : 64;
  }
  int bm = rows_per_group >= 96 ? 128 : rows_per_group >= 40 ? 64 : 32;
  if (kind == GemmTileKind::Mfma) {  // static LDS, ~31 KB at 128 rows: any CDNA part (64 KB)
    while (bm > 32 && gemm_mfma_smem_bytes(bm) > caps.smem_optin) bm /= 2;
    return bm;
  }
  const int kb = mxfp4 ? K / kGemmBK : 0;
  // The 128-row MXFP4 tile needs ~102 KB (K = 2880): more than sm_86/89/120 give a block.
  while (bm > 32 && bm * int(sizeof(int)) + gemm_smem_bytes(mxfp4, bm, kb) > caps.smem_optin) bm /= 2;  // + rows_src
  return bm;  // the 32-row tile needs at most ~73 KB (K <= 8192): every sm_80+ part
}

bool use_pdl(const GpuCaps& caps, const GpuKnobs& k) { return caps.pdl && k.pdl; }

}  // namespace gptoss::cuda
