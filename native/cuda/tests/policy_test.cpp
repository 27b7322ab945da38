// Host test of the GPU path choosers (policy.h) and the capability table's derivations (caps.h):
// pure functions, so every build runs it (test/gpu-policy.test.ts), with or without a GPU or nvcc.
// The devices below are the ones the build targets (arch list of native/cuda/cuda.cmake) and the
// images a driver may pick for them, including the cases the issue names: a build without 89-real
// on an sm_89 card (compute_80 PTX JIT-ed: no FP8 kernels), and compute_80 PTX on an H200 (no PDL).
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "core/tests/check.h"
#include "cuda/gemm_wgmma_layout.h"
#include "cuda/policy.h"

using namespace gptoss::cuda;
using namespace gptoss::test;

namespace {

// check() with the condition's text and place: "FAIL <file>:<line>: <condition>"
#define CHECK_STR2(x) #x
#define CHECK_STR(x) CHECK_STR2(x)
#define CHECK(cond) check((cond), __FILE__ ":" CHECK_STR(__LINE__) ":", #cond)

constexpr unsigned kSm80 = kFeatMmaSync;
constexpr unsigned kSm89 = kFeatMmaSync | kFeatFp8Mma;
constexpr unsigned kSm90 = kFeatMmaSync | kFeatFp8Mma | kFeatPdl | kFeatBulkAsync;
constexpr unsigned kSm90a = kSm90 | kFeatWgmma;
constexpr unsigned kSm100a = kSm90 | kFeatTcgen05;

// Opt-in shared memory a block and SM counts of real parts.
GpuCaps h200(int image_arch, unsigned features) {
  return make_caps(0, "NVIDIA H200", 900, image_arch, features, 232448, 132, 32, size_t(141) << 30);
}
GpuCaps l40s(int image_arch, unsigned features) {  // sm_89, 99 KB a block
  return make_caps(0, "NVIDIA L40S", 890, image_arch, features, 101376, 142, 32, size_t(48) << 30);
}
GpuCaps a100(int image_arch, unsigned features) {
  return make_caps(0, "NVIDIA A100", 800, image_arch, features, 166912, 108, 32, size_t(80) << 30);
}

// gpt-oss-20b shapes: hidden 2880, intermediate 2880, 64 query / 8 kv heads of 64, 32 experts, top-4.
constexpr int H = 2880, I = 2880;

void test_caps() {
  const GpuCaps native = h200(900, kSm90a);
  CHECK(native.tensor_cores == TensorCores::Wgmma);
  CHECK(native.mma_sync && native.fp8_compiled && native.pdl);
  CHECK(!native.fp8_mma);  // e4m3 mma.sync is emulated on sm_90: not the default there

  const GpuCaps ptx80 = h200(800, kSm80);  // a build of 80-virtual only, JIT-ed on the H200
  CHECK(ptx80.tensor_cores == TensorCores::MmaSync);
  CHECK(ptx80.mma_sync && !ptx80.fp8_compiled && !ptx80.fp8_mma);
  CHECK(!ptx80.pdl);  // the image has no griddepcontrol although the device would run it

  CHECK(l40s(890, kSm89).fp8_mma);
  CHECK(!l40s(800, kSm80).fp8_mma);
  CHECK(!l40s(890, kSm89).pdl);
  const GpuCaps rtx = make_caps(0, "RTX PRO 6000", 1200, 1200, kSm90 | kFeatFp8Mma, 101376, 188, 32, 0);
  CHECK(rtx.fp8_mma && rtx.pdl && rtx.tensor_cores == TensorCores::MmaSync);
  const GpuCaps b200 = make_caps(0, "B200", 1000, 1000, kSm100a, 232448, 148, 32, 0);
  CHECK(b200.tensor_cores == TensorCores::Tcgen05 && !b200.fp8_mma && b200.pdl);
  // the block-scaled mma.sync: an sm_120a image on an sm_120 part (device.cu may still clear it on a failed self-test)
  const GpuCaps rtx_a = make_caps(0, "RTX PRO 6000", 1200, 1200, kSm90 | kFeatMmaBlockScale, 101376, 188, 32, 0);
  CHECK(rtx_a.mma_block_scale && !rtx.mma_block_scale && !native.mma_block_scale);
  CHECK(caps_summary(rtx_a).find("image sm_120a") != std::string::npos && caps_summary(rtx_a).find("mxf8 block-scale") != std::string::npos);
  GpuCaps rtx_failed = rtx_a;
  rtx_failed.mma_block_scale = false;
  rtx_failed.block_scale_selftest_failed = true;
  CHECK(caps_summary(rtx_failed).find("failed its self-test") != std::string::npos);
  CHECK(!make_caps(0, "MI300X", 940, 942, kFeatMfma | kFeatMmaBlockScale, 65536, 304, 64, 0, true).mma_block_scale);

  const GpuCaps none = h200(0, kSm90a);  // no image for this device: nothing compiled counts
  CHECK(none.compiled == 0 && !none.mma_sync && !none.pdl && none.tensor_cores == TensorCores::None);
  CHECK(caps_summary(none).find("no image") != std::string::npos);
  CHECK(caps_summary(native).find("image sm_90a") != std::string::npos);

  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(mi300.tensor_cores == TensorCores::Mfma && !mi300.mma_sync && !mi300.pdl && !mi300.fp8_mma);
  // AMD in AMD's words: the image's gfx target (GPTOSS_COMPILED_ARCH: 942, gfx90a as 910), CUs, LDS.
  CHECK(arch_label(mi300) == "gfx942" && arch_label(native) == "sm_90");
  CHECK(caps_summary(mi300) == "gfx942, image gfx942 (mfma), 304 CUs, 64 KB LDS a block");
  CHECK(arch_label(make_caps(0, "MI250X", 900, 910, kFeatMfma, 65536, 110, 64, 0, true)) == "gfx90a");
  const GpuCaps no_code = make_caps(0, "MI300X", 940, 0, 0, 65536, 304, 64, 0, true);
  CHECK(arch_label(no_code) == "gfx94x" && caps_summary(no_code) == "gfx94x, no code object in this plugin");
}

void test_linear() {
  const GpuCaps c = h200(900, kSm90a);
  CHECK(choose_linear(c, 1, H, false) == LinearPath::Gemv);
  CHECK(choose_linear(c, kGemvWgmmaMaxTokens, H, true) == LinearPath::Gemv);  // sm_90a: the GEMV up to 4 rows
  CHECK(choose_linear(c, kGemvWgmmaMaxTokens + 1, H, false) == LinearPath::Gemm);
  CHECK(choose_linear(a100(800, kSm80), kGemvMaxTokens, H, true) == LinearPath::Gemv);  // elsewhere up to 8
  CHECK(choose_linear(a100(800, kSm80), kGemvMaxTokens + 1, H, false) == LinearPath::Gemm);
  CHECK(choose_linear(c, 512, H, true) == LinearPath::Gemm);
  CHECK(choose_linear(c, 512, 8 * 1000 + 4, false) == LinearPath::Naive);       // K % 8
  CHECK(choose_linear(c, 1, 48, true) == LinearPath::Naive);                     // K % 32
  CHECK(choose_linear(c, 512, 32 * (kGemmMaxKBlocks + 1), true) == LinearPath::Naive);  // scales do not fit
  CHECK(choose_linear(h200(0, 0), 512, H, false) == LinearPath::Naive);          // no tensor-core image
  CHECK(choose_linear(h200(800, kSm80), 512, H, false) == LinearPath::Gemm);

  // Which tile kernel (no knob): mma.sync on every NVIDIA image but sm_90a's (wgmma/tcgen05 images carry
  // it too), MFMA on CDNA; sm_90a: test_gemm_wgmma.
  const GpuKnobs auto_k;
  CHECK(gemm_tile_kind(h200(900, kSm90), auto_k, 512) == GemmTileKind::MmaSync);
  CHECK(gemm_tile_kind(make_caps(0, "B200", 1000, 1000, kSm100a, 232448, 148, 32, 0), auto_k, 512) == GemmTileKind::MmaSync);
  CHECK(gemm_tile_kind(h200(0, 0), auto_k, 512) == GemmTileKind::None);
  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  const GpuCaps mi250 = make_caps(0, "AMD Instinct MI250X", 900, 910, kFeatMfma, 65536, 110, 64, 0, true);
  CHECK(gemm_tile_kind(mi300, auto_k, 512) == GemmTileKind::Mfma && gemm_tile_kind(mi250, auto_k, 512) == GemmTileKind::Mfma);
  CHECK(choose_linear(mi300, 512, H, true) == LinearPath::Gemm && choose_linear(mi300, 512, H, false) == LinearPath::Gemm);
  CHECK(choose_linear(mi300, 1, H, true) == LinearPath::Gemv);
  CHECK(choose_linear(make_caps(0, "gfx1100", 1100, 0, 0, 65536, 48, 32, 0, true), 512, H, false) == LinearPath::Naive);
  // Q8_0 weights: the GEMV for decode, the dequantize-to-bf16 GEMM above where the tile runs, else
  // the GEMV kGemvMaxTokens tokens at a time.
  CHECK(choose_linear_q8(c, 1) == LinearPath::Gemv);
  CHECK(choose_linear_q8(c, kGemvWgmmaMaxTokens) == LinearPath::Gemv);
  CHECK(choose_linear_q8(c, kGemvWgmmaMaxTokens + 1) == LinearPath::Gemm);
  CHECK(choose_linear_q8(a100(800, kSm80), kGemvMaxTokens) == LinearPath::Gemv);
  CHECK(choose_linear_q8(h200(0, 0), 512) == LinearPath::Gemv);
  CHECK(choose_linear_q8(mi300, kGemvMaxTokens + 1) == LinearPath::Gemm);  // the MFMA tile
}

void test_attention() {
  const GpuCaps c = h200(900, kSm90a);
  CHECK(choose_attention(c, 1, 64, 8, 64) == AttentionPath::Decode);
  CHECK(choose_attention(c, kAttnDecodeMaxTokens, 64, 8, 64) == AttentionPath::Decode);
  CHECK(choose_attention(c, kAttnDecodeMaxTokens + 1, 64, 8, 64) == AttentionPath::Flash);
  CHECK(choose_attention(c, 1, 64, 2, 64) == AttentionPath::Flash);   // 32 query heads a kv head
  CHECK(choose_attention(c, 100, 64, 8, 128) == AttentionPath::Naive);
  const GpuCaps amd = make_caps(0, "MI300X", 940, 940, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(choose_attention(amd, 100, 64, 8, 64) == AttentionPath::FlashMfma);  // the MFMA flash kernel
  CHECK(choose_attention(amd, 100, 64, 8, 128) == AttentionPath::Naive);
  CHECK(flash_path(amd) == AttentionPath::FlashMfma && flash_path(c) == AttentionPath::Flash);
  CHECK(flash_path(h200(0, 0)) == AttentionPath::Naive);  // the paged step then takes the plain kernel
  // An AMD GPU the plugin has no code object for: nothing compiled, no MFMA path.
  CHECK(choose_attention(make_caps(0, "gfx1100", 1100, 0, 0, 65536, 48, 32, 0, true), 100, 64, 8, 64) ==
        AttentionPath::Naive);
  CHECK(choose_attention(amd, 1, 64, 8, 64) == AttentionPath::Decode);   // the SIMT kernel is shared

  const GpuKnobs k;
  CHECK(attention_decode_splits(k, 4096, 0) == 32);
  CHECK(attention_decode_splits(k, 512, 0) == 8);
  CHECK(attention_decode_splits(k, 100, 0) == 2);
  CHECK(attention_decode_splits(k, 4096, 128) == 1);  // a 128-key window: one split, no merge
  GpuKnobs k2;
  k2.attn_window_splits = 2;
  k2.attn_splits = 64;
  CHECK(attention_decode_splits(k2, 4096, 128) == 2);
  CHECK(attention_decode_splits(k2, 8192, 0) == 64);

  // The tensor-core decode kernel: on request (GPTOSS_CUDA_ATTN_DECODE=mma), or by default for a decode batch of
  // >= 64 sequences or one sequence over >= 4096 keys on Hopper; where mma.sync was compiled, G <= 8 and V is
  // 16-bit; its splits: one tile a split up to 32 (GPTOSS_CUDA_ATTN_MMA_SPLITS).
  CHECK(!attention_decode_uses_mma(c, k, 64, 8, false));  // one sequence: the SIMT kernel by default
  // a decode batch of >= 64 sequences on Hopper: the tensor-core kernel by default; =simt refuses it
  CHECK(attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 64));
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 63));
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, true, 128));  // f32 cache
  CHECK(!attention_decode_uses_mma(a100(800, kSm80), k, 64, 8, false, 128));  // measured on Hopper only
  // one sequence whose keys span a long cache (a full-attention layer): the tensor-core kernel on Hopper
  CHECK(attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 1, 8192));
  CHECK(attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 1, kDecodeMmaAutoMinSpan));
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 1, kDecodeMmaAutoMinSpan - 1));
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 1, 128));      // a window layer
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 1, 0));        // paged: no span
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, false, 8, 8192));     // a small batch
  CHECK(!attention_decode_uses_mma(h200(900, kSm90a), k, 64, 8, true, 1, 8192));      // f32 cache
  CHECK(!attention_decode_uses_mma(a100(800, kSm80), k, 64, 8, false, 1, 8192));      // measured on Hopper only
  {
    GpuKnobs ks;
    ks.attn_decode = GpuKnobs::AttnDecode::Simt;
    CHECK(!attention_decode_uses_mma(h200(900, kSm90a), ks, 64, 8, false, 128));
    setenv("GPTOSS_CUDA_ATTN_DECODE", "simt", 1);
    CHECK(knobs().attn_decode == GpuKnobs::AttnDecode::Simt);
    unsetenv("GPTOSS_CUDA_ATTN_DECODE");
    CHECK(knobs().attn_decode == GpuKnobs::AttnDecode::Auto);
  }
  GpuKnobs km;
  km.attn_decode = GpuKnobs::AttnDecode::Mma;
  CHECK(attention_decode_uses_mma(c, km, 64, 8, false));
  CHECK(attention_decode_uses_mma(h200(800, kSm80), km, 64, 8, false));   // mma.sync from sm_80
  CHECK(!attention_decode_uses_mma(h200(0, 0), km, 64, 8, false));        // no tensor-core image
  CHECK(!attention_decode_uses_mma(amd, km, 64, 8, false));               // MFMA: the SIMT kernel
  CHECK(!attention_decode_uses_mma(c, km, 64, 8, true));                  // the f32 cache's V is not 16-bit
  CHECK(!attention_decode_uses_mma(c, km, 64, 4, false));                 // 16 heads a kv head: over the MMA's N
  CHECK(attention_decode_uses_mma(c, km, 8, 2, false));                   // tiny-a: G = 4, padded
  CHECK(attention_decode_mma_splits(km, 8192 + 132, 0) == 32);
  CHECK(attention_decode_mma_splits(km, 1024, 0) == 16);
  CHECK(attention_decode_mma_splits(km, 100, 0) == 2);
  CHECK(attention_decode_mma_splits(km, 1, 0) == 1);
  CHECK(attention_decode_mma_splits(km, 8192, 128) == 1);   // a 128-key window: one split, no merge
  CHECK(attention_decode_mma_splits(km, 8192, 300) == 5);
  CHECK(attention_decode_mma_splits(km, 32768, 0) == 32);
  GpuKnobs km64 = km;
  km64.attn_mma_splits = 64;  // GPTOSS_CUDA_ATTN_MMA_SPLITS=64
  CHECK(attention_decode_mma_splits(km64, 8192, 0) == 64);
  CHECK(attention_decode_mma_splits(km64, 1024, 0) == 16);
  CHECK(attention_decode_mma_splits(km64, 8192, 128) == 1);
  CHECK(attention_decode_mma_splits(km64, 32768, 0) == kDecodeMmaMaxSplits);
}

void test_moe() {
  const GpuKnobs k;
  CHECK(moe_uses_decode(4, 4));
  CHECK(!moe_uses_decode(5, 4));
  // H200: the bf16 mma.sync kernels by default (FP8 is emulated there); FP8 on request.
  CHECK(choose_moe_decode(h200(900, kSm90a), k, 1, H, I) == MoeDecodeKind::Mma);
  GpuKnobs fp8 = k;
  fp8.moe_decode = GpuKnobs::MoeDecode::MmaFp8;
  CHECK(choose_moe_decode(h200(900, kSm90a), fp8, 1, H, I) == MoeDecodeKind::MmaFp8);
  // compute_80 PTX on the H200: the FP8 kernels were not compiled (they would trap): never chosen.
  CHECK(choose_moe_decode(h200(800, kSm80), fp8, 1, H, I) == MoeDecodeKind::Mma);
  // sm_89: FP8 by default where compiled; a build without 89 gets the bf16 kernels (the bug).
  CHECK(choose_moe_decode(l40s(890, kSm89), k, 1, H, I) == MoeDecodeKind::MmaFp8);
  CHECK(choose_moe_decode(l40s(800, kSm80), k, 1, H, I) == MoeDecodeKind::Mma);
  CHECK(moe_fp8_stages(l40s(890, kSm89), H, I) == 2);  // 99 KB a block: 2 stages
  CHECK(moe_fp8_stages(h200(900, kSm90a), H, I) == 3);
  GpuKnobs simt = k;
  simt.moe_decode = GpuKnobs::MoeDecode::Simt;
  CHECK(choose_moe_decode(h200(900, kSm90a), simt, 1, H, I) == MoeDecodeKind::Simt);
  GpuKnobs prmt = k;
  prmt.moe_decode = GpuKnobs::MoeDecode::MmaPrmt;
  CHECK(choose_moe_decode(h200(900, kSm90a), prmt, 1, H, I) == MoeDecodeKind::MmaPrmt);
  CHECK(choose_moe_decode(h200(0, 0), k, 1, H, I) == MoeDecodeKind::Simt);  // no tensor cores compiled
  CHECK(choose_moe_decode(h200(900, kSm90a), k, 16, 16 * 4097, I) == MoeDecodeKind::Simt);  // tile counters
  // Rows longer than 8 slices of 32 MX blocks do not fit the mma kernels.
  CHECK(choose_moe_decode(h200(900, kSm90a), k, 1, 32 * 32 * 9, I) == MoeDecodeKind::Simt);
  // Asking for the MFMA kernels on NVIDIA changes nothing (they are AMD-only): the device's default.
  GpuKnobs mfma = k;
  mfma.moe_decode = GpuKnobs::MoeDecode::Mfma;
  CHECK(choose_moe_decode(h200(900, kSm90a), mfma, 1, H, I) == MoeDecodeKind::Mma);
  CHECK(choose_moe_decode(l40s(890, kSm89), mfma, 1, H, I) == MoeDecodeKind::MmaFp8);
  // MmaMxf8 (the FP8 kernels on the block-scaled MMA): the default on an sm_120a image whose self-test passed, MmaFp8
  // where it failed or the image is sm_120 without 'a'; on request wherever e4m3 mma.sync is compiled (emulated)
  {
    const GpuCaps rtx_a = make_caps(0, "RTX PRO 6000", 1200, 1200, kSm90 | kFeatMmaBlockScale, 101376, 188, 32, 0);
    const GpuCaps rtx = make_caps(0, "RTX PRO 6000", 1200, 1200, kSm90, 101376, 188, 32, 0);
    GpuCaps rtx_failed = rtx_a;
    rtx_failed.mma_block_scale = false;
    CHECK(choose_moe_decode(rtx_a, k, 1, H, I) == MoeDecodeKind::MmaMxf8);
    CHECK(choose_moe_decode(rtx_failed, k, 1, H, I) == MoeDecodeKind::MmaFp8);
    CHECK(choose_moe_decode(rtx, k, 1, H, I) == MoeDecodeKind::MmaFp8);
    CHECK(choose_moe_decode(rtx_a, fp8, 1, H, I) == MoeDecodeKind::MmaFp8);  // an explicit choice stands
    CHECK(choose_moe_decode(rtx_a, k, 1, H, I, true) == MoeDecodeKind::MmaRelaid);
    CHECK(moe_mxf8_stages(rtx_a, H, I) == 2 && moe_mxf8_stages(h200(900, kSm90a), H, I) == 3);
    CHECK(mxf8_cta_smem(90, 2) == fp8_cta_smem(90, 2) + 8 * 12 * 16);
    GpuKnobs mx = k;
    mx.moe_decode = GpuKnobs::MoeDecode::MmaMxf8;
    CHECK(choose_moe_decode(h200(900, kSm90a), mx, 1, H, I) == MoeDecodeKind::MmaMxf8);  // emulated: the checks
    CHECK(choose_moe_decode(l40s(890, kSm89), mx, 1, H, I) == MoeDecodeKind::MmaMxf8);
    CHECK(choose_moe_decode(h200(800, kSm80), mx, 1, H, I) == MoeDecodeKind::Mma);  // nothing to run it on
    CHECK(choose_moe_decode(h200(900, kSm90a), k, 1, H, I) == MoeDecodeKind::Mma);  // never a default before sm_120a
    setenv("GPTOSS_CUDA_MOE_DECODE", "mma-mxf8", 1);
    CHECK(knobs().moe_decode == GpuKnobs::MoeDecode::MmaMxf8);
    unsetenv("GPTOSS_CUDA_MOE_DECODE");
  }

  // AMD: the SIMT decode kernels by default; the MFMA ones (not yet run on an AMD GPU) only on request,
  // where MFMA was compiled; never an NVIDIA variant.
  const GpuCaps mi300 = make_caps(0, "MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  const GpuCaps mi250 = make_caps(0, "MI250X", 900, 910, kFeatMfma, 65536, 110, 64, 0, true);
  const GpuCaps mi355 = make_caps(0, "MI355X", 950, 950, kFeatMfma, 163840, 256, 64, 0, true);  // 160 KB LDS
  CHECK(arch_label(mi355) == "gfx950" && mi355.tensor_cores == TensorCores::Mfma);
  for (const GpuCaps& c : {mi300, mi250, mi355}) {
    CHECK(choose_moe_decode(c, k, 1, H, I) == MoeDecodeKind::Simt);
    CHECK(choose_moe_decode(c, k, 4, H, I) == MoeDecodeKind::Simt);
    CHECK(choose_moe_decode(c, mfma, 1, H, I) == MoeDecodeKind::Mfma);
    CHECK(choose_moe_decode(c, mfma, 4, H, I) == MoeDecodeKind::Mfma);
    CHECK(choose_moe_decode(c, prmt, 1, H, I) == MoeDecodeKind::Simt);
    CHECK(choose_moe_decode(c, fp8, 1, H, I) == MoeDecodeKind::Simt);
    CHECK(choose_moe_decode(c, simt, 1, H, I) == MoeDecodeKind::Simt);
    CHECK(choose_moe_decode(c, mfma, 16, 16 * 4097, I) == MoeDecodeKind::Simt);  // the down kernel's tile counters
  }
  // 20b's rows: 90 MX blocks, 11.5 KB of activation fragments a CTA; rows whose fragments pass the
  // 64 KB of LDS a block take the SIMT kernels.
  CHECK(moe_mfma_smem_bytes(H / 32) == 90 * 128 + 4 * 16 * 4);
  CHECK(choose_moe_decode(mi300, mfma, 1, 32 * 500, I) == MoeDecodeKind::Mfma);
  CHECK(choose_moe_decode(mi300, mfma, 1, 32 * 520, I) == MoeDecodeKind::Simt);
  CHECK(choose_moe_decode(mi300, mfma, 1, H, 32 * 520) == MoeDecodeKind::Simt);
  const GpuCaps amd_no_code = make_caps(0, "MI300X", 940, 0, 0, 65536, 304, 64, 0, true);
  CHECK(choose_moe_decode(amd_no_code, mfma, 1, H, I) == MoeDecodeKind::Simt);  // no image: nothing MFMA
  // The decode layout (mma-relaid, opt-in): only on request, only where the relaid kernels take every
  // decode shape of the layer; experts in that layout always get the MmaRelaid kernels.
  GpuKnobs relaid = k;
  relaid.moe_decode = GpuKnobs::MoeDecode::MmaRelaid;
  CHECK(moe_decode_layout(h200(900, kSm90a), k, H, I));   // Hopper's default: the decode layout
  CHECK(!moe_decode_layout(l40s(890, kSm89), k, H, I));   // elsewhere the checkpoint layout by default
  CHECK(!moe_decode_layout(a100(800, kSm80), k, H, I));
  CHECK(moe_decode_layout(h200(800, kSm80), k, H, I));    // Hopper running compute_80 PTX: mma.sync is there
  CHECK(!moe_decode_layout(h200(0, 0), k, H, I));         // no tensor cores compiled
  {
    GpuKnobs plain = k;
    plain.moe_decode = GpuKnobs::MoeDecode::Mma;  // GPTOSS_CUDA_MOE_DECODE=mma: the checkpoint layout on Hopper
    CHECK(!moe_decode_layout(h200(900, kSm90a), plain, H, I));
    GpuKnobs stream = k;
    stream.moe_decode = GpuKnobs::MoeDecode::Stream;
    CHECK(!moe_decode_layout(h200(900, kSm90a), stream, H, I));
  }
  CHECK(moe_decode_layout(h200(900, kSm90a), relaid, H, I));
  CHECK(moe_decode_layout(h200(800, kSm80), relaid, H, I));   // compute_80 PTX: mma.sync is there
  CHECK(!moe_decode_layout(h200(0, 0), relaid, H, I));        // no tensor cores compiled
  CHECK(!moe_decode_layout(h200(900, kSm90a), relaid, 32 * 32 * 9, I));  // rows too long for the mma kernels
  CHECK(!moe_decode_layout(h200(900, kSm90a), relaid, H, 40));            // I not whole MX blocks
  CHECK(choose_moe_decode(h200(900, kSm90a), k, 1, 8192, 32) == MoeDecodeKind::Mma);  // fits the mma kernels,
  CHECK(!moe_decode_layout(h200(900, kSm90a), relaid, 8192, 32));  // but 16 tokens x 512 tiles > the counters
  CHECK(moe_decode_layout(h200(900, kSm90a), relaid, 32, 32));            // 16-row tiles: 2I = 64, H = 32
  CHECK(choose_moe_decode(h200(900, kSm90a), k, 1, H, I, true) == MoeDecodeKind::MmaRelaid);
  CHECK(choose_moe_decode(h200(900, kSm90a), relaid, 4, H, I, true) == MoeDecodeKind::MmaRelaid);
  CHECK(choose_moe_decode(h200(900, kSm90a), relaid, 1, H, I) == MoeDecodeKind::Mma);  // checkpoint layout
  // AMD never re-lays experts for the mma.sync kernels (none run there).
  const GpuCaps mi300_relaid = make_caps(0, "MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(!moe_decode_layout(mi300_relaid, relaid, H, I));
  CHECK(choose_moe_decode(mi300_relaid, relaid, 1, H, I) == MoeDecodeKind::Simt);

  CHECK(router_uses_split(h200(900, kSm90a), 1, 32));
  CHECK(!router_uses_split(h200(900, kSm90a), kRouterSplitMaxTokens + 1, 32));
  CHECK(!router_uses_split(h200(900, kSm90a), 1, 8));  // one block's warps cover 8 experts
  {  // the cluster hand-off: asked for, sm_90+ (PDL compiled and run), split, at most 8 blocks (64 experts)
    GpuKnobs kc;
    CHECK(!router_uses_cluster(h200(900, kSm90a), kc, 1, 32));  // off unless asked for
    kc.router_cluster = true;
    CHECK(router_uses_cluster(h200(900, kSm90a), kc, 1, 32));    // the 20b: 4 blocks
    CHECK(router_uses_cluster(h200(900, kSm90a), kc, 1, 64));    // 8 blocks
    CHECK(!router_uses_cluster(h200(900, kSm90a), kc, 1, 128));  // the 120b: 16 blocks, past the portable size
    CHECK(!router_uses_cluster(h200(900, kSm90a), kc, kRouterSplitMaxTokens + 1, 32));
    CHECK(!router_uses_cluster(h200(800, kSm80), kc, 1, 32));    // no clusters before sm_90
  }
  const GpuCaps amd = make_caps(0, "MI300X", 940, 940, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(!router_uses_split(amd, 1, 4) && router_uses_split(amd, 1, 8));  // 4 wave64s a block
}

// bf16 experts (loadModel's experts: 'bf16'): the SIMT GEMVs for few pairs and wherever no tile was
// compiled, the bf16 grouped tile above; the knob forces a path only where it can run.
void test_moe_bf16() {
  const GpuKnobs k;
  const GpuCaps hopper = h200(900, kSm90a);
  CHECK(choose_moe_bf16(hopper, k, 1, 4) == MoeBf16Path::Gemv);    // a decode step
  CHECK(choose_moe_bf16(hopper, k, 4, 4) == MoeBf16Path::Gemv);    // 16 pairs: the MXFP4 decode bound too
  CHECK(choose_moe_bf16(hopper, k, 5, 4) == MoeBf16Path::Grouped);
  CHECK(choose_moe_bf16(hopper, k, 2048, 4) == MoeBf16Path::Grouped);
  CHECK(choose_moe_bf16(a100(800, kSm80), k, 512, 4) == MoeBf16Path::Grouped);  // sm_80: mma.sync tile
  CHECK(choose_moe_bf16(h200(0, 0), k, 2048, 4) == MoeBf16Path::Gemv);          // no image with a tile
  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(choose_moe_bf16(mi300, k, 512, 4) == MoeBf16Path::Grouped);  // the MFMA tile
  GpuKnobs gemv = k, grouped = k;
  gemv.moe_bf16 = GpuKnobs::MoeBf16::Gemv;
  grouped.moe_bf16 = GpuKnobs::MoeBf16::Grouped;
  CHECK(choose_moe_bf16(hopper, gemv, 2048, 4) == MoeBf16Path::Gemv);
  CHECK(choose_moe_bf16(hopper, grouped, 1, 4) == MoeBf16Path::Grouped);
  CHECK(choose_moe_bf16(h200(0, 0), grouped, 1, 4) == MoeBf16Path::Gemv);  // nothing to run Grouped on
  // MXFP4 experts past the decode kernels' 16 pairs: the grouped decode kernels up to 4 pairs an expert
  // (n <= 32 on the 20b's 32 experts), the GEMM tile above; never on the decode layout or AMD.
  // On Hopper the streaming kernels take 3-128 an expert (17-1,024 tokens of the 20b; measured there).
  CHECK(choose_moe_batch(hopper, k, 5, 4, 32, H, H, false) == MoeBatchPath::GroupedMma);
  CHECK(choose_moe_batch(hopper, k, 16, 4, 32, H, H, false) == MoeBatchPath::GroupedMma);
  CHECK(choose_moe_batch(hopper, k, 17, 4, 32, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, k, 64, 4, 32, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, k, 128, 4, 32, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, k, 129, 4, 32, H, H, false) == MoeBatchPath::Stream);   // 256 streams
  CHECK(choose_moe_batch(hopper, k, 512, 4, 32, H, H, false) == MoeBatchPath::Stream);   // a 512-token chunk
  CHECK(choose_moe_batch(hopper, k, 1024, 4, 32, H, H, false) == MoeBatchPath::Stream);  // 128 an expert
  CHECK(choose_moe_batch(hopper, k, 1025, 4, 32, H, H, false) == MoeBatchPath::Gemm);
  CHECK(choose_moe_batch(hopper, k, 2048, 4, 32, H, H, false) == MoeBatchPath::Gemm);    // a 2,048-token prefill
  CHECK(choose_moe_batch(hopper, k, 2048, 4, 128, H, H, false) == MoeBatchPath::Stream);  // 120b: 64 an expert
  CHECK(choose_moe_batch(hopper, k, 64, 4, 128, H, H, false) == MoeBatchPath::GroupedMma);  // 120b: 2 an expert
  CHECK(choose_moe_batch(hopper, k, 128, 4, 128, H, H, false) == MoeBatchPath::Stream);     // 120b: 4 an expert
  // Elsewhere (not measured) the grouped decode kernels up to 4 an expert, the tile above.
  const GpuCaps ampere = a100(800, kSm80);
  CHECK(choose_moe_batch(ampere, k, 32, 4, 32, H, H, false) == MoeBatchPath::GroupedMma);
  CHECK(choose_moe_batch(ampere, k, 33, 4, 32, H, H, false) == MoeBatchPath::Gemm);
  CHECK(choose_moe_batch(ampere, k, 64, 4, 32, H, H, false) == MoeBatchPath::Gemm);
  CHECK(moe_group_tokens(hopper, k, 8, 4, 32, H, H) == 4);
  CHECK(moe_group_tokens(hopper, k, 128, 4, 32, H, H) == 4);  // 8 on request only
  GpuKnobs g8 = k;
  g8.moe_group = 8;
  CHECK(moe_group_tokens(hopper, g8, 8, 4, 32, H, H) == 8);
  CHECK(moe_group_tokens(l40s(890, kSm89), g8, 8, 4, 32, H, H) == 4);  // 8 tokens' fragments: 116 KB > 99
  CHECK(choose_moe_batch(hopper, k, 8, 4, 32, H, H, true) == MoeBatchPath::Stream);     // decode layout: no grouped mma
  CHECK(choose_moe_batch(hopper, k, 5, 4, 32, H, H, true) == MoeBatchPath::Stream);     // below the band too
  CHECK(choose_moe_batch(hopper, k, 16, 4, 32, H, H, true) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(mi300, k, 8, 4, 32, H, H, false) == MoeBatchPath::Gemm);
  CHECK(choose_moe_batch(l40s(890, kSm89), k, 8, 4, 32, H, H, false) == MoeBatchPath::GroupedMma);  // 71 KB of 99
  GpuKnobs force_mma = k, force_gemm = k;
  force_mma.moe_batch = GpuKnobs::MoeBatch::GroupedMma;
  force_gemm.moe_batch = GpuKnobs::MoeBatch::Gemm;
  CHECK(choose_moe_batch(hopper, force_mma, 1024, 4, 32, H, H, false) == MoeBatchPath::GroupedMma);
  CHECK(choose_moe_batch(hopper, force_gemm, 8, 4, 32, H, H, false) == MoeBatchPath::Gemm);
  CHECK(choose_moe_batch(hopper, force_mma, 8, 4, 32, H, H, true) == MoeBatchPath::Stream);  // cannot run there
  CHECK(choose_moe_batch(hopper, force_gemm, 8, 4, 32, H, H, true) == MoeBatchPath::Gemm);
  // The streaming kernels (moe_stream.cu) on request: every token count up to 128 an expert, never on the
  // decode layout or AMD; 3 stages where three 67 KB CTAs share an SM (sm_90) or where only one fits (sm_89's
  // 99 KB), 5 on request where one fits, none where even 3 does not fit.
  GpuKnobs force_stream = k;
  force_stream.moe_batch = GpuKnobs::MoeBatch::Stream;
  CHECK(choose_moe_batch(hopper, force_stream, 64, 4, 32, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, force_stream, 5, 4, 32, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, force_stream, 128, 4, 128, H, H, false) == MoeBatchPath::Stream);
  CHECK(choose_moe_batch(hopper, force_stream, 1024, 4, 32, H, H, false) == MoeBatchPath::Stream);  // 128 an expert
  CHECK(choose_moe_batch(hopper, force_stream, 1025, 4, 32, H, H, false) == MoeBatchPath::Gemm);    // past: the tile
  CHECK(choose_moe_batch(hopper, force_stream, 8192, 4, 32, H, H, false) == MoeBatchPath::Gemm);    // a prefill
  CHECK(choose_moe_batch(hopper, force_stream, 64, 4, 32, H, H, true) == MoeBatchPath::Stream); // the decode layout too
  CHECK(choose_moe_batch(hopper, force_stream, 1025, 4, 32, H, H, true) == MoeBatchPath::Gemm);
  CHECK(choose_moe_batch(mi300, force_stream, 64, 4, 32, H, H, false) == MoeBatchPath::Gemm);   // AMD
  CHECK(choose_moe_batch(hopper, k, 64, 4, 32, H, H, true) == MoeBatchPath::Stream);            // decode layout, in the band
  CHECK(choose_moe_batch(hopper, k, 512, 4, 32, H, H, true) == MoeBatchPath::Stream);           // decode layout, a 512-token chunk
  CHECK(choose_moe_batch(hopper, k, 1025, 4, 32, H, H, true) == MoeBatchPath::Gemm);            // past it: the tile
  CHECK(choose_moe_batch(ampere, k, 64, 4, 32, H, H, true) == MoeBatchPath::Gemm);              // no band off Hopper
  CHECK(moe_stream_stages(hopper, H / 32) == kMoeStreamShallowStages);  // three CTAs an SM
  CHECK(moe_stream_deep_stages(hopper, H / 32) == kMoeStreamDeepStages);
  CHECK(moe_stream_stages(ampere, H / 32) == kMoeStreamShallowStages);    // 164 KB: neither 3 x 67 nor 2 x 103
  CHECK(moe_stream_deep_stages(ampere, H / 32) == kMoeStreamDeepStages);
  CHECK(moe_stream_stages(l40s(890, kSm89), H / 32) == kMoeStreamShallowStages);
  CHECK(moe_stream_deep_stages(l40s(890, kSm89), H / 32) == 0);         // 104 KB > 99
  CHECK(moe_stream_stages(mi300, H / 32) == 0);
  CHECK(moe_stream_stages(h200(0, 0), H / 32) == 0);  // no mma.sync image
  CHECK(moe_stream_smem_bytes(kMoeStreamDeepStages, H / 32) == 5 * 18432 + 11520);
  // the wide kernel (32 rows a CTA): 3 x 28,672 + 11,520 = 97,536 bytes, two CTAs an SM where they fit
  CHECK(moe_stream_smem_bytes(kMoeStreamShallowStages, H / 32, kMoeStreamWideTokens) == 3 * 28672 + 11520);
  CHECK(moe_stream_wide_stages(hopper, H / 32) == kMoeStreamShallowStages);
  CHECK(moe_stream_wide_stages(ampere, H / 32) == 0);          // 164 KB: one only
  CHECK(moe_stream_wide_stages(l40s(890, kSm89), H / 32) == 0);
  CHECK(moe_stream_wide_stages(mi300, H / 32) == 0);
  // the TMA kernel (16th session): sm_90+ images on sm_90+ devices, as many CTAs an SM as the cp.async ring's with its
  // 1 KB of alignment (3 x 67,840 + 3 KB, 2 x 98,560 + 2 KB, 2 x 104,704 + 2 KB on sm_90); both widths by default
  // since the 17th session's packed activations, GPTOSS_CUDA_MOE_STREAM_TMA=0 neither
  CHECK(moe_stream_tma_smem_bytes(kMoeStreamShallowStages, H / 32) == 3 * 18432 + 11520 + 1024);
  CHECK(hopper.bulk_async && !ampere.bulk_async && !mi300.bulk_async);
  CHECK(!a100(800, kSm80 | kFeatBulkAsync).bulk_async);  // the feature bit without an sm_90 device
  CHECK(!h200(800, kSm80).bulk_async);                   // an sm_80 image on an H200: no TMA compiled
  CHECK(moe_stream_uses_tma(hopper, k, H / 32, kMoeStreamTokens, kMoeStreamShallowStages));
  CHECK(moe_stream_uses_tma(hopper, k, H / 32, kMoeStreamTokens, kMoeStreamDeepStages));  // two CTAs an SM
  CHECK(moe_stream_uses_tma(hopper, k, H / 32, kMoeStreamWideTokens, kMoeStreamShallowStages));  // both widths (17th session)
  CHECK(!moe_stream_uses_tma(ampere, k, H / 32, kMoeStreamTokens, kMoeStreamShallowStages));
  CHECK(!moe_stream_uses_tma(mi300, k, H / 32, kMoeStreamTokens, kMoeStreamShallowStages));
  {
    GpuKnobs off = k, on = k;
    off.moe_stream_tma = GpuKnobs::MoeStreamTma::Off;
    on.moe_stream_tma = GpuKnobs::MoeStreamTma::On;
    CHECK(!moe_stream_uses_tma(hopper, off, H / 32, kMoeStreamTokens, kMoeStreamShallowStages));
    CHECK(moe_stream_uses_tma(hopper, on, H / 32, kMoeStreamWideTokens, kMoeStreamShallowStages));
    CHECK(!moe_stream_uses_tma(hopper, on, H / 32, kMoeStreamWideTokens, kMoeStreamDeepStages));  // not compiled
    CHECK(!moe_stream_uses_tma(l40s(890, kSm89), on, H / 32, kMoeStreamTokens, kMoeStreamShallowStages));
    setenv("GPTOSS_CUDA_MOE_STREAM_TMA", "0", 1);
    CHECK(knobs().moe_stream_tma == GpuKnobs::MoeStreamTma::Off);
    setenv("GPTOSS_CUDA_MOE_STREAM_TMA", "1", 1);
    CHECK(knobs().moe_stream_tma == GpuKnobs::MoeStreamTma::On);
    unsetenv("GPTOSS_CUDA_MOE_STREAM_TMA");
    CHECK(knobs().moe_stream_tma == GpuKnobs::MoeStreamTma::Auto);
  }
  {  // GPTOSS_CUDA_MOE_STREAM_MAX: the band's top for an A/B (16: the policy before the twentieth session)
    setenv("GPTOSS_CUDA_MOE_STREAM_MAX", "16", 1);
    const GpuKnobs m16 = knobs();
    CHECK(m16.moe_stream_max == 16);
    CHECK(choose_moe_batch(hopper, m16, 128, 4, 32, H, H, false) == MoeBatchPath::Stream);
    CHECK(choose_moe_batch(hopper, m16, 129, 4, 32, H, H, false) == MoeBatchPath::Gemm);
    CHECK(choose_moe_batch(hopper, m16, 129, 4, 32, H, H, true) == MoeBatchPath::Gemm);
    setenv("GPTOSS_CUDA_MOE_STREAM_MAX", "500", 1);  // past kMoeStreamMaxPerExpert: ignored
    CHECK(knobs().moe_stream_max == 0);
    unsetenv("GPTOSS_CUDA_MOE_STREAM_MAX");
    CHECK(knobs().moe_stream_max == 0);
  }
  {  // GPTOSS_CUDA_MOE_ACT=bf16: the grouped MoE's wgmma tile on the activations' bf16 hi half alone (probe)
    CHECK(!knobs().moe_act_bf16);
    setenv("GPTOSS_CUDA_MOE_ACT", "bf16", 1);
    CHECK(knobs().moe_act_bf16);
    setenv("GPTOSS_CUDA_MOE_ACT", "fp8", 1);  // not a value: the default
    CHECK(!knobs().moe_act_bf16);
    unsetenv("GPTOSS_CUDA_MOE_ACT");
  }
  {  // the A/B knobs, read at each call: the router's one pass on by default (31st session); cluster and frags off
    CHECK(knobs().router_rank && !knobs().moe_act_frags && !knobs().router_cluster);
    setenv("GPTOSS_CUDA_ROUTER_RANK", "0", 1);
    setenv("GPTOSS_CUDA_ROUTER_CLUSTER", "1", 1);
    setenv("GPTOSS_CUDA_MOE_ACT_FRAGS", "1", 1);
    CHECK(!knobs().router_rank && knobs().router_cluster && knobs().moe_act_frags);
    unsetenv("GPTOSS_CUDA_ROUTER_RANK");
    unsetenv("GPTOSS_CUDA_ROUTER_CLUSTER");
    unsetenv("GPTOSS_CUDA_MOE_ACT_FRAGS");
    CHECK(knobs().router_rank && !knobs().router_cluster && !knobs().moe_act_frags);
    // logprobs' row statistics: on the host unless GPTOSS_CUDA_LOGPROBS=device
    CHECK(!knobs().logprobs_device);
    setenv("GPTOSS_CUDA_LOGPROBS", "device", 1);
    CHECK(knobs().logprobs_device);
    setenv("GPTOSS_CUDA_LOGPROBS", "host", 1);
    CHECK(!knobs().logprobs_device);
    unsetenv("GPTOSS_CUDA_LOGPROBS");
    // the staged ring (slots a warp, 1..3) and its grid cap; the slice target, now also read at each call
    CHECK(knobs().moe_staged == 0 && knobs().moe_staged_ctas == 0 && knobs().moe_slice == kMoeSliceDefault);
    setenv("GPTOSS_CUDA_MOE_STAGED", "3", 1);
    setenv("GPTOSS_CUDA_MOE_STAGED_CTAS", "3", 1);
    setenv("GPTOSS_CUDA_MOE_SLICE", "12", 1);
    CHECK(knobs().moe_staged == 3 && knobs().moe_staged_ctas == 3 && knobs().moe_slice == 12);
    setenv("GPTOSS_CUDA_MOE_STAGED", "4", 1);  // not a slot count: off
    CHECK(knobs().moe_staged == 0);
    unsetenv("GPTOSS_CUDA_MOE_STAGED");
    unsetenv("GPTOSS_CUDA_MOE_STAGED_CTAS");
    unsetenv("GPTOSS_CUDA_MOE_SLICE");
    CHECK(knobs().moe_staged == 0 && knobs().moe_slice == kMoeSliceDefault);
    // its shapes: the 20b's 90 MX blocks as 8 warps of 12 (2 CTAs of 2 slots: 140 KB), nothing past 96
    CHECK(slice_shape(90, kMoeStagedPer).slices == 8 && slice_shape(90, kMoeStagedPer).per == 12);
    CHECK(moe_staged_fits(90) && moe_staged_fits(96) && !moe_staged_fits(97) && moe_staged_fits(2));
    CHECK(staged_cta_smem(90, 2) == 8 * (2 * (16 * 208 + 192) + 192 + 12 * 128));
  }
  // the wide kernel by default on Hopper from 14 rows an expert on average (20b: 112 streams x top-4 / 32)
  CHECK(moe_stream_tokens(hopper, k, 64 * 4, 32, H, H) == kMoeStreamTokens);
  CHECK(moe_stream_tokens(hopper, k, 111 * 4, 32, H, H) == kMoeStreamTokens);
  CHECK(moe_stream_tokens(hopper, k, 112 * 4, 32, H, H) == kMoeStreamWideTokens);
  CHECK(moe_stream_tokens(hopper, k, 128 * 4, 32, H, H) == kMoeStreamWideTokens);
  CHECK(moe_stream_tokens(hopper, k, 128 * 4, 128, H, H) == kMoeStreamTokens);  // 120b: 4 an expert
  CHECK(moe_stream_tokens(ampere, k, 128 * 4, 32, H, H) == kMoeStreamTokens);   // measured on Hopper only
  {
    GpuKnobs narrow = k;
    narrow.moe_stream_tokens = kMoeStreamTokens;
    CHECK(moe_stream_tokens(hopper, narrow, 128 * 4, 32, H, H) == kMoeStreamTokens);
    GpuKnobs wide = k;
    wide.moe_stream_tokens = kMoeStreamWideTokens;
    CHECK(moe_stream_tokens(hopper, wide, 16, 32, H, H) == kMoeStreamWideTokens);
    CHECK(moe_stream_tokens(ampere, wide, 16, 32, H, H) == kMoeStreamTokens);  // does not fit twice: narrow
    CHECK(moe_stream_tokens(hopper, wide, 16, 32, H, 40) == kMoeStreamTokens);  // I not whole MX blocks
    setenv("GPTOSS_CUDA_MOE_STREAM_TOKENS", "32", 1);
    CHECK(knobs().moe_stream_tokens == 32);
    setenv("GPTOSS_CUDA_MOE_STREAM_TOKENS", "24", 1);
    CHECK(knobs().moe_stream_tokens == 0);
    unsetenv("GPTOSS_CUDA_MOE_STREAM_TOKENS");
  }
  // ... and the decode-sized calls on request (GPTOSS_CUDA_MOE_DECODE=stream)
  GpuKnobs dec_stream = k;
  dec_stream.moe_decode = GpuKnobs::MoeDecode::Stream;
  CHECK(moe_decode_uses_stream(hopper, dec_stream, 32, H, H));  // either expert layout (the kernels read both)
  CHECK(!moe_decode_uses_stream(hopper, k, 32, H, H));           // not the default
  CHECK(!moe_decode_uses_stream(mi300, dec_stream, 32, H, H));
  CHECK(choose_moe_decode(hopper, dec_stream, 1, H, H) == MoeDecodeKind::Mma);  // what runs where stream cannot
  // The bf16 tile keeps no scales in shared memory: 128 rows (96.5 KB) for any K, on sm_89's 99 KB too
  // (the MXFP4 tile takes 64 there).
  CHECK(gemm_tile_rows(hopper, 256, false, 8192) == 128);
  CHECK(gemm_tile_rows(l40s(890, kSm89), 256, false, H) == 128);
}

// The wgmma tile (issue 12 item 4; since the H100 run at 98332a8, per problem): only on an sm_90a image
// with the shared memory (an sm_90 image, compute_80 PTX on an H200, Blackwell's images, AMD and a
// lowered shared-memory limit keep their tile, under any knob). Without the knob a dense problem of at
// more rows than the GEMV's (gemv_max_tokens) takes it, the grouped MoE only from kWgmmaMoeMinRowsPerExpert routed rows
// an expert on average (n k >= 128 E); GPTOSS_CUDA_GEMM=mma|wgmma forces one tile for every problem. Its
// rows are 64 or 128 (one m64 accumulator a warpgroup); the 128-row tile fits the H200 at every K.
void test_gemm_wgmma() {
  using G = GemmTileKind;
  GpuKnobs want, mma, none;  // none: no tile forced (GPTOSS_CUDA_GEMM=auto; the default, policy.h)
  want.gemm = GpuKnobs::Gemm::Wgmma;
  mma.gemm = GpuKnobs::Gemm::Mma;
  none.gemm = GpuKnobs::Gemm::Auto;
  const GpuCaps c = h200(900, kSm90a);
  const GpuCaps h100 = make_caps(0, "NVIDIA H100 80GB HBM3", 900, 900, kSm90a, 232448, 132, 32, size_t(80) << 30);
  CHECK(wgmma_tile_runs(c) && wgmma_tile_runs(h100));
  // dense problems (q/k/v, o, Q8_0 chunks, the LM head over a step's rows), no knob: wgmma past the GEMV's rows
  for (const GpuCaps& d : {c, h100}) {
    CHECK(gemm_tile_kind(d, none, 512) == G::Wgmma);    // prefill 512: qkv 1.45x, o 1.85x (H100)
    CHECK(gemm_tile_kind(d, none, 2048) == G::Wgmma);   // prefill 2048: qkv 1.51x, o 1.61x
    CHECK(gemm_tile_kind(d, none, gemv_max_tokens(d, none) + 1) == G::Wgmma);
    CHECK(gemm_tile_kind(d, none, gemv_max_tokens(d, none)) == G::MmaSync);
    CHECK(gemm_tile_kind(d, none, 63) == G::Wgmma);  // a batch step of 63 rows
    CHECK(gemm_tile_kind(d, none, kGemvMaxTokens + 1) == G::Wgmma);  // 9 rows: 16-48 streams ran 16-19% faster
    CHECK(gemm_tile_kind(d, none, kGemvWgmmaMaxTokens + 1) == G::Wgmma);  // 5 rows: 6-8 streams 13-17% faster
    CHECK(gemm_tile_kind(d, mma, 64) == G::MmaSync);
    CHECK(gemv_max_tokens(d, none) == kGemvWgmmaMaxTokens);
    CHECK(choose_linear(d, 4, 2880, false) == LinearPath::Gemv && choose_linear(d, 5, 2880, false) == LinearPath::Gemm);
  }
  CHECK(kGemvWgmmaMaxTokens == 4);
  CHECK(moe_stream_ctas_per_sm(kMoeStreamShallowStages, kMoeStreamTokens) == 3);
  CHECK(moe_stream_ctas_per_sm(kMoeStreamDeepStages, kMoeStreamTokens) == 2 &&
        moe_stream_ctas_per_sm(kMoeStreamShallowStages, kMoeStreamWideTokens) == 2);
  CHECK(gemv_max_tokens(h200(900, kSm90), none) == kGemvMaxTokens);  // no wgmma image: the GEMV up to 8
  CHECK(choose_linear(h200(900, kSm90), 8, 2880, false) == LinearPath::Gemv);
  CHECK(gemm_tile_kind(h200(900, kSm90), none, 9) == G::MmaSync);
  {  // GPTOSS_CUDA_GEMV_MAX_TOKENS: fewer or more rows on the GEMV, the rest on the tile
    GpuKnobs g2 = none;
    g2.gemv_max_tokens = 2;
    CHECK(gemm_tile_kind(c, g2, 3) == G::Wgmma && gemm_tile_kind(c, g2, 2) == G::MmaSync);
    setenv("GPTOSS_CUDA_GEMV_MAX_TOKENS", "8", 1);
    CHECK(knobs().gemv_max_tokens == 8 && choose_linear(c, 8, 2880, false) == LinearPath::Gemv &&
          choose_linear(c, 9, 2880, false) == LinearPath::Gemm);
    unsetenv("GPTOSS_CUDA_GEMV_MAX_TOKENS");
    CHECK(knobs().gemv_max_tokens == 0 && choose_linear(c, 4, 2880, false) == LinearPath::Gemv);
  }
  // the grouped MoE, no knob: wgmma only from 128 routed rows an expert on average
  CHECK(kWgmmaMoeMinRowsPerExpert == 128);
  CHECK(moe_gemm_tile_kind(c, none, 2048, 4, 32) == G::Wgmma);     // 20b prefill 2048: 256 an expert (0.90x the time)
  CHECK(moe_gemm_tile_kind(c, none, 1024, 4, 32) == G::Wgmma);     // 128 an expert: the edge
  CHECK(moe_gemm_tile_kind(c, none, 1023, 4, 32) == G::MmaSync);   // 127.9
  CHECK(moe_gemm_tile_kind(c, none, 512, 4, 32) == G::MmaSync);    // 20b prefill 512: 64 an expert (wgmma 1.04-1.17x)
  CHECK(moe_gemm_tile_kind(c, none, 2048, 4, 128) == G::MmaSync);  // 120b prefill 2048: 64 an expert (wgmma 1.19x)
  CHECK(moe_gemm_tile_kind(c, none, 512, 4, 128) == G::MmaSync);   // 120b prefill 512: 16 an expert (wgmma 1.7x)
  CHECK(moe_gemm_tile_kind(c, none, 4096, 4, 128) == G::Wgmma);    // 120b prefill 4096: 128 an expert
  CHECK(moe_gemm_tile_kind(c, none, 4095, 4, 128) == G::MmaSync);
  CHECK(moe_gemm_tile_kind(c, none, 256, 4, 32) == G::MmaSync);    // a batch bucket of 256: 32 an expert
  CHECK(moe_gemm_tile_kind(c, none, 256, 2, 4) == G::Wgmma);       // 128 an expert of 4 (k 2)
  CHECK(moe_gemm_tile_kind(c, none, 255, 2, 4) == G::MmaSync);
  CHECK(moe_gemm_tile_kind(c, none, 1 << 20, 4, 0) == G::MmaSync);  // no experts: never divides
  CHECK(moe_gemm_tile_kind(c, none, 1 << 29, 4, 32) == G::Wgmma);   // n k past 2^31 (int64)
  // the knob: one tile for every problem (A/B)
  CHECK(gemm_tile_kind(c, want, 9) == G::Wgmma && moe_gemm_tile_kind(c, want, 512, 4, 128) == G::Wgmma);
  CHECK(gemm_tile_kind(c, mma, 2048) == G::MmaSync && moe_gemm_tile_kind(c, mma, 2048, 4, 32) == G::MmaSync);
  // not sm_90a, or not the shared memory: the knob and the shape change nothing
  const GpuCaps b200 = make_caps(0, "B200", 1000, 1000, kSm100a, 232448, 148, 32, 0);
  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  const GpuCaps low_smem = make_caps(0, "NVIDIA H200", 900, 900, kSm90a, 101376, 132, 32, 0);  // GPTOSS_CUDA_SMEM_LIMIT
  CHECK(!wgmma_tile_runs(h200(900, kSm90)) && !wgmma_tile_runs(b200) && !wgmma_tile_runs(mi300) && !wgmma_tile_runs(low_smem));
  for (const GpuKnobs& k : {none, want, mma}) {
    CHECK(gemm_tile_kind(h200(900, kSm90), k, 2048) == G::MmaSync);  // sm_90 image: no wgmma
    CHECK(gemm_tile_kind(h200(800, kSm80), k, 2048) == G::MmaSync);  // compute_80 PTX JIT-ed on an H200
    CHECK(moe_gemm_tile_kind(h200(800, kSm80), k, 2048, 4, 32) == G::MmaSync);
    CHECK(gemm_tile_kind(h200(0, 0), k, 2048) == G::None && moe_gemm_tile_kind(h200(0, 0), k, 2048, 4, 32) == G::None);
    CHECK(gemm_tile_kind(b200, k, 2048) == G::MmaSync && moe_gemm_tile_kind(b200, k, 2048, 4, 32) == G::MmaSync);
    CHECK(gemm_tile_kind(mi300, k, 2048) == G::Mfma && moe_gemm_tile_kind(mi300, k, 2048, 4, 32) == G::Mfma);
    CHECK(gemm_tile_kind(low_smem, k, 2048) == G::MmaSync && moe_gemm_tile_kind(low_smem, k, 2048, 4, 32) == G::MmaSync);
  }
  // the paths above the tile do not move: a dense problem past the GEMVs takes a tile either way
  CHECK(choose_linear(c, kGemvMaxTokens + 1, H, false) == LinearPath::Gemm && choose_linear(c, 2048, H, true) == LinearPath::Gemm);
  CHECK(choose_linear_q8(c, kGemvMaxTokens + 1) == LinearPath::Gemm);
  // rows of each kind's tile
  CHECK(gemm_tile_rows(c, G::Wgmma, 256, true, H) == 128);   // 20b prefill 2048: 256 rows an expert
  CHECK(gemm_tile_rows(c, G::Wgmma, 64, true, H) == 64);     // 120b prefill 2048: 64 an expert
  CHECK(gemm_tile_rows(c, G::Wgmma, 10, true, H) == 64);     // never 32
  CHECK(gemm_tile_rows(c, G::Wgmma, 2048, false, 8192) == 128);
  CHECK(gemm_tile_rows(c, G::Wgmma, 2048, true, 32 * kGemmMaxKBlocks) == 128);
  CHECK(gemm_tile_rows(c, G::Wgmma, kWgmmaMoeMinRowsPerExpert, true, H) == 128);  // the MoE edge: 128-row blocks
  // the knob-reading overloads (GPTOSS_CUDA_GEMM read at each knobs() call): auto, mma, wgmma; unset or
  // anything else: GpuKnobs' default
  const char* saved = std::getenv("GPTOSS_CUDA_GEMM");
  const std::string keep = saved ? saved : "";
  setenv("GPTOSS_CUDA_GEMM", "auto", 1);
  CHECK(knobs().gemm == GpuKnobs::Gemm::Auto);
  CHECK(gemm_tile_kind(c, 512) == G::Wgmma && gemm_tile_kind(c, 63) == G::Wgmma && gemm_tile_kind(c, 4) == G::MmaSync);
  CHECK(moe_gemm_tile_kind(c, 512, 4, 32) == G::MmaSync && moe_gemm_tile_kind(c, 2048, 4, 32) == G::Wgmma);
  CHECK(gemm_tile_rows(c, G::Wgmma, 10, true, H) == gemm_tile_rows(c, 10, true, H));
  CHECK(gemm_tile_rows(c, G::MmaSync, 4, true, H) == gemm_tile_rows(c, 4, true, H));
  CHECK(gemm_tile_rows(c, G::Wgmma, 512, true, H) == gemm_tile_rows(c, 512, true, H));
  setenv("GPTOSS_CUDA_GEMM", "mma", 1);
  CHECK(knobs().gemm == GpuKnobs::Gemm::Mma && gemm_tile_kind(c, 2048) == G::MmaSync);
  setenv("GPTOSS_CUDA_GEMM", "wgmma", 1);
  CHECK(knobs().gemm == GpuKnobs::Gemm::Wgmma && moe_gemm_tile_kind(c, 512, 4, 128) == G::Wgmma);
  setenv("GPTOSS_CUDA_GEMM", "mma.sync", 1);
  CHECK(knobs().gemm == GpuKnobs{}.gemm);
  unsetenv("GPTOSS_CUDA_GEMM");
  CHECK(knobs().gemm == GpuKnobs{}.gemm);
  if (saved) setenv("GPTOSS_CUDA_GEMM", keep.c_str(), 1);
}

void test_gemm_rows() {
  CHECK(gemm_tile_rows(h200(900, kSm90a), 512, true, H) == 128);
  CHECK(gemm_tile_rows(l40s(890, kSm89), 512, true, H) == 64);  // the 128-row MXFP4 tile needs ~102 KB
  CHECK(gemm_tile_rows(h200(900, kSm90a), 50, false, H) == 64);
  CHECK(gemm_tile_rows(h200(900, kSm90a), 10, true, H) == 64);  // dense from 9 rows: the wgmma tile's 64
  CHECK(gemm_tile_rows(h200(900, kSm90), 10, true, H) == 32);   // no wgmma image: the mma.sync tile's 32
  CHECK(gemm_smem_bytes(true, 32, 8192 / kGemmBK) + 32 * 4 <= 101376);  // the 32-row tile fits every sm_80+ part
  // The MFMA tile's LDS does not depend on K or the weight format: 128 rows fit a CDNA CU's 64 KB.
  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  CHECK(gemm_mfma_smem_bytes(128) == 31232);
  CHECK(gemm_tile_rows(mi300, 512, true, H) == 128 && gemm_tile_rows(mi300, 512, false, 8192) == 128);
  CHECK(gemm_tile_rows(mi300, 50, true, H) == 64 && gemm_tile_rows(mi300, 10, true, H) == 32);
}

// The decode GEMV kernels (issue 12 item 2, issue 15): Xs by default (since the H200 run at 076961b) on
// NVIDIA, for bf16 at 2..8 tokens and Q8_0 at 1..8, K within kGemvXsMaxK, x aligned, the tokens' x within
// a block's shared memory; GPTOSS_CUDA_GEMV=warp opts out to the Warp/Row1 kernels; AMD never takes Xs.
void test_gemv() {
  const GpuCaps c = h200(900, kSm90a), l = l40s(890, kSm89);
  const GpuCaps mi300 = make_caps(0, "AMD Instinct MI300X", 940, 942, kFeatMfma, 65536, 304, 64, 0, true);
  GpuKnobs k;
  k.gemv = GpuKnobs::Gemv::Warp;  // the opt-out: the kernels before Xs
  CHECK(choose_gemv(c, k, GemvFormat::BF16, 1, H, true) == GemvKernel::Row1);
  CHECK(choose_gemv(c, k, GemvFormat::BF16, 1, 4096, true) == GemvKernel::Row1);
  CHECK(choose_gemv(c, k, GemvFormat::BF16, 1, 4096 + 8, true) == GemvKernel::Warp);  // > 16 chunks a lane
  CHECK(choose_gemv(c, k, GemvFormat::BF16, 1, H, false) == GemvKernel::Warp);
  CHECK(choose_gemv(c, k, GemvFormat::BF16, 4, H, true) == GemvKernel::Warp);
  CHECK(choose_gemv(c, k, GemvFormat::Q8, 1, H, true) == GemvKernel::Warp);
  CHECK(choose_gemv(c, k, GemvFormat::Q8, 8, H, true) == GemvKernel::Warp);
  CHECK(choose_gemv(c, k, GemvFormat::MXFP4, 1, H, true) == GemvKernel::Warp);
  for (GpuKnobs::Gemv g : {GpuKnobs::Gemv::Warp, GpuKnobs::Gemv::Auto, GpuKnobs::Gemv::Xs}) {
    k.gemv = g;  // AMD: the same kernels under every value
    CHECK(choose_gemv(mi300, k, GemvFormat::BF16, 1, H, true) == GemvKernel::Row1);  // 64-lane rows: up to 8192
    CHECK(choose_gemv(mi300, k, GemvFormat::BF16, 1, 8192, true) == GemvKernel::Row1);
  }
  for (GpuKnobs::Gemv g : {GpuKnobs::Gemv::Auto, GpuKnobs::Gemv::Xs}) {  // the default, and "xs" named
    k.gemv = g;
    CHECK(choose_gemv(c, k, GemvFormat::BF16, 1, H, true) == GemvKernel::Row1);  // bf16 at one token stays Row1
    for (int n : {2, 4, 5, 8}) {
      CHECK(choose_gemv(c, k, GemvFormat::BF16, n, H, true) == GemvKernel::Xs);
      CHECK(choose_gemv(c, k, GemvFormat::BF16, n, 4096, true) == GemvKernel::Xs);
      CHECK(choose_gemv(c, k, GemvFormat::Q8, n, 4096, true) == GemvKernel::Xs);
      CHECK(choose_gemv(c, k, GemvFormat::MXFP4, n, H, true) == GemvKernel::Warp);
      CHECK(choose_gemv(mi300, k, GemvFormat::Q8, n, H, true) == GemvKernel::Warp);  // NVIDIA only
      CHECK(choose_gemv(mi300, k, GemvFormat::BF16, n, H, true) == GemvKernel::Warp);
  }
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 1, H, true) == GemvKernel::Xs);
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 1, 64, true) == GemvKernel::Xs);
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 1, 8192, true) == GemvKernel::Warp);   // past kGemvXsMaxK
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 1, 48, true) == GemvKernel::Warp);     // K % 32
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 2, H, false) == GemvKernel::Warp);     // x not 16-byte aligned
    CHECK(choose_gemv(c, k, GemvFormat::BF16, 2, 8 * 1000 + 4, true) == GemvKernel::Warp);
    CHECK(choose_gemv(c, k, GemvFormat::Q8, kGemvMaxTokens + 1, H, true) == GemvKernel::Warp);
    // 8 tokens of x at K 4096 are 128 KB: an H200 block takes them, a 99 KB sm_89 block does not
    CHECK(choose_gemv(c, k, GemvFormat::Q8, 8, 4096, true) == GemvKernel::Xs);
    CHECK(choose_gemv(l, k, GemvFormat::Q8, 8, 4096, true) == GemvKernel::Warp);
    CHECK(choose_gemv(l, k, GemvFormat::Q8, 8, H, true) == GemvKernel::Xs);  // 92 KB
  }
  CHECK(GpuKnobs{}.gemv == GpuKnobs::Gemv::Auto);
  // GPTOSS_CUDA_GEMV (read at each knobs() call): warp opts out, xs names the default, anything else is the default
  const char* saved = std::getenv("GPTOSS_CUDA_GEMV");
  const std::string keep = saved ? saved : "";
  setenv("GPTOSS_CUDA_GEMV", "warp", 1);
  CHECK(knobs().gemv == GpuKnobs::Gemv::Warp);
  setenv("GPTOSS_CUDA_GEMV", "xs", 1);
  CHECK(knobs().gemv == GpuKnobs::Gemv::Xs);
  setenv("GPTOSS_CUDA_GEMV", "Warp ", 1);
  CHECK(knobs().gemv == GpuKnobs::Gemv::Auto);
  unsetenv("GPTOSS_CUDA_GEMV");
  CHECK(knobs().gemv == GpuKnobs::Gemv::Auto);
  if (saved) setenv("GPTOSS_CUDA_GEMV", keep.c_str(), 1);
  // the other enumerated knobs go through the same reader: a named value, else the fallback
  if (!std::getenv("GPTOSS_CUDA_MOE_DECODE") && !std::getenv("GPTOSS_CUDA_MOE_GROUP")) {
    setenv("GPTOSS_CUDA_MOE_DECODE", "mma-relaid", 1);
    setenv("GPTOSS_CUDA_MOE_GROUP", "8", 1);
    CHECK(knobs().moe_decode == GpuKnobs::MoeDecode::MmaRelaid && knobs().moe_group == 8);
    setenv("GPTOSS_CUDA_MOE_DECODE", "mma-relaid2", 1);
    setenv("GPTOSS_CUDA_MOE_GROUP", "6", 1);
    CHECK(knobs().moe_decode == GpuKnobs::MoeDecode::Auto && knobs().moe_group == 0);
    unsetenv("GPTOSS_CUDA_MOE_DECODE");
    unsetenv("GPTOSS_CUDA_MOE_GROUP");
  }
  CHECK(gemv_ctas_per_sm(GpuKnobs{}, 3) == 3 && gemv_ctas_per_sm(GpuKnobs{}, 0) == 1);
  GpuKnobs one;
  one.gemv_ctas = 1;
  CHECK(gemv_ctas_per_sm(one, 3) == 1);
  one.gemv_ctas = 4;
  CHECK(gemv_ctas_per_sm(one, 3) == 3);  // never more than fit
}

void test_pdl() {
  GpuKnobs k;
  CHECK(use_pdl(h200(900, kSm90a), k));
  CHECK(!use_pdl(h200(800, kSm80), k));
  CHECK(!use_pdl(a100(800, kSm80), k));
  k.pdl = false;
  CHECK(!use_pdl(h200(900, kSm90a), k));
}

}  // namespace

// Split-K of dense bf16 problems on the wgmma tile (gemm_wgmma.cu): the 20b's decode-batch q/k/v (40 column
// tiles, 45 K steps) and o (23, 64) fill an H100/H200's 132 SMs once; the LM head and prefill are left whole.
void test_splitk() {
  GpuKnobs k;
  const GpuCaps h = h200(900, kSm90a);
  CHECK(wgmma_dense_splits(h, k, 40, 45) == 3);    // q/k/v at 64-128 rows: 120 blocks
  CHECK(wgmma_dense_splits(h, k, 23, 64) == 5);    // o: 115 blocks
  CHECK(wgmma_dense_splits(h, k, 1571, 45) == 1);  // the LM head
  CHECK(wgmma_dense_splits(h, k, 40 * 16, 45) == 1);  // prefill, 2048 rows
  CHECK(wgmma_dense_splits(h, k, 66, 45) == 2);
  CHECK(wgmma_dense_splits(h, k, 1, 4000) == wgmma::kMaxSplits);  // at most a portable cluster
  CHECK(wgmma_dense_splits(h, k, 1, 12) == 1);     // fewer than 2 x kSplitMinSteps K steps: whole
  CHECK(wgmma_dense_splits(h, k, 1, 16) == 2);
  CHECK(wgmma_dense_splits(h, k, 0, 45) == 1);
  // one wave: the H100's resident clusters (gpu_bench --dense-batch, 15th session) take q/k/v to 2 and o to 4
  const auto h100 = [](int s) { return s == 2 ? 66 : s == 3 ? 39 : s == 4 ? 30 : s == 5 ? 22 : s <= 6 ? 17 : 15; };
  CHECK(wgmma_dense_splits(h, k, 40, 45, h100) == 2);
  CHECK(wgmma_dense_splits(h, k, 23, 64, h100) == 4);
  CHECK(wgmma_dense_splits(h, k, 22, 64, h100) == 5);  // 22 clusters of 5 fit at once
  CHECK(wgmma_dense_splits(h, k, 66, 45, h100) == 2);
  CHECK(wgmma_dense_splits(h, k, 67, 45, [](int) { return 66; }) == 1);
  CHECK(wgmma_dense_splits(h, k, 40, 45, [](int) { return -1; }) == 3);  // unknown: the rule alone
  GpuKnobs forced = k;
  forced.gemm_splitk = 8;
  CHECK(wgmma_dense_splits(h, forced, 40, 45, h100) == 8);  // forced: not reduced
  CHECK(wgmma_dense_splits(h, forced, 1571, 45) == 8);  // forced: any tile count
  CHECK(wgmma_dense_splits(h, forced, 3, 4) == 4);      // at most the K steps: no empty split
  CHECK(wgmma_dense_splits(h, forced, 3, 1) == 1);
  GpuKnobs off = k;
  off.gemm_splitk = 1;
  CHECK(wgmma_dense_splits(h, off, 23, 64) == 1);
  // the knob's range: 1..8, else the policy
  setenv("GPTOSS_CUDA_GEMM_SPLITK", "5", 1);
  CHECK(knobs().gemm_splitk == 5);
  setenv("GPTOSS_CUDA_GEMM_SPLITK", "9", 1);
  CHECK(knobs().gemm_splitk == 0);
  unsetenv("GPTOSS_CUDA_GEMM_SPLITK");
  CHECK(knobs().gemm_splitk == 0);
}

// The grouped MXFP4 problems on the wgmma tile take its warp-specialized kernel where a block gets the ring of whole
// stages and the scales (policy.h wgmma_grouped_ws) when the knob asks (kGemmWsDefault: on since the 24th session's
// H100 A/B): the 20b/120b (K = 2,880) on the H100 and H200 at both tile rows, not at K past what the 227 KB hold,
// not where the tile does not run, not under GPTOSS_CUDA_GEMM_WS=0.
void test_gemm_ws() {
  GpuKnobs k;
  k.gemm_ws = true;
  const GpuCaps h100 = make_caps(0, "NVIDIA H100 80GB HBM3", 900, 900, kSm90a, 232448, 132, 32, size_t(80) << 30);
  for (const GpuCaps& d : {h200(900, kSm90a), h100}) {
    CHECK(wgmma_grouped_ws(d, k, 128, 2880) && wgmma_grouped_ws(d, k, 64, 2880));
    CHECK(wgmma_grouped_ws(d, k, 128, 4448) && !wgmma_grouped_ws(d, k, 128, 4480));  // 139 MX blocks a row fit, 140 do not
    CHECK(wgmma_grouped_ws(d, k, 64, 64) && !wgmma_grouped_ws(d, k, 96, 2880) && !wgmma_grouped_ws(d, k, 128, 0));
  }
  CHECK(wgmma::ws_smem_bytes(128, 90) + wgmma::static_smem_bytes(128) == 226112);  // the 20b's gate_up and down
  CHECK(!wgmma_grouped_ws(h200(900, kSm90), k, 128, 2880));  // no sm_90a image
  CHECK(!wgmma_grouped_ws(make_caps(0, "NVIDIA H200", 900, 900, kSm90a, 101376, 132, 32, 0), k, 64, 2880));  // lowered smem
  GpuKnobs off = k;
  off.gemm_ws = false;
  CHECK(!wgmma_grouped_ws(h100, off, 128, 2880));
  setenv("GPTOSS_CUDA_GEMM_WS", "0", 1);
  CHECK(!knobs().gemm_ws);
  setenv("GPTOSS_CUDA_GEMM_WS", "1", 1);
  CHECK(knobs().gemm_ws);
  unsetenv("GPTOSS_CUDA_GEMM_WS");
  CHECK(knobs().gemm_ws == kGemmWsDefault && GpuKnobs{}.gemm_ws == kGemmWsDefault);
  CHECK(wgmma_grouped_ws(h100, GpuKnobs{}, 128, 2880) == kGemmWsDefault);  // the default follows the constant
}

// The decode MoE's warp slices (shapes.h slice_shape): the default target of 24 MX blocks, raised for long rows.
void test_moe_slices() {
  GpuKnobs k;
  CHECK(k.moe_slice == kMoeSliceDefault && GpuKnobs::from_env().moe_slice == 24);  // GPTOSS_CUDA_MOE_SLICE unset here
  SliceShape s = slice_shape(90, 24);  // the 20b's rows: 4 warps of 23 (was 3 of 30 at 32)
  CHECK(s.slices == 4 && s.per == 23);
  s = slice_shape(90, 32);
  CHECK(s.slices == 3 && s.per == 30);
  s = slice_shape(200, 24);  // 200 blocks need 25 a warp within 8 warps
  CHECK(s.slices == 8 && s.per == 25);
  s = slice_shape(256, 4);   // any target keeps rows of 256 blocks within 8 warps of 32
  CHECK(s.slices == 8 && s.per == 32);
  s = slice_shape(300, 24);  // past 256 blocks: more than 8 warps, so moe_mma_fits refuses
  CHECK(s.slices == 10 && s.per == 30);
  CHECK(mma_cta_smem(90, 24) == 36800 && mma_cta_smem(90, 32) == 36768);  // ~the same shared memory a CTA
}

int main() {
  test_moe_slices();
  test_splitk();
  test_gemm_ws();
  test_caps();
  test_linear();
  test_attention();
  test_moe();
  test_moe_bf16();
  test_gemm_rows();
  test_gemm_wgmma();
  test_pdl();
  test_gemv();
  return checks_passed("policy");
}
