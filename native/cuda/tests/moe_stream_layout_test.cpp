// Host test of the streaming MoE kernel's layout and fragment maps (native/cuda/moe_stream_layout.h, the
// functions moe_stream.cu computes its addresses with; issue 11). No GPU: whole CTAs are run through those
// functions with ldmatrix.x4 and mma.sync m16n8k16 emulated from the PTX ISA's fragment tables (written out
// here, independently of the header), and every output compared with a dense reference: the expert, token
// and row of each result, the k order shared by the A and B fragments, the stage copies, partial stages,
// partial row blocks and the (expert, 16 rows) tiles, for experts in the checkpoint's layout and in the decode
// layout (the kRelaid variant: re-laid words and scales, scale_offset, the bit-placed operands and their
// multipliers). Then the shared-memory bank pattern of the ldmatrix
// and B-fragment loads (conflict-free), and the tile -> expert search. test/moe-stream-layout.test.ts runs it.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/tests/check.h"
#include "cuda/moe_stream_layout.h"
#include "cuda/mxfp4_layout.h"

namespace ms = gptoss::cuda::mstream;
namespace mxlayout = gptoss::cuda::mxlayout;
using gptoss::test::check;

namespace {

double e2m1(int code) {
  static const double mag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  return (code & 8 ? -1 : 1) * mag[code & 7];
}
double bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t to_bf16(float f) {  // exact for the small dyadic values used here
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t(u >> 16);
}

// One streaming GEMM (the kernel's Store epilogue) on random data; returns the largest relative error.
// relaid: the experts in the decode layout (mxfp4_layout.h, as prepare_experts re-lays them), read as the
// kernel's kRelaid variant does: the CTA's scale bytes copied as they lie and indexed by scale_offset, the
// operands by decode_word (placed codes, natural pairs) times 2^(s-1), or where a scale of the CTA is above
// kPlacedScaleMax, times 2^126 and then 2^(s-127). scale_hi: the largest scale byte drawn.
// tokens: the CTA's routed rows (16, or the wide kernel's 32: its K loop runs an even number of n-tiles, the
// extra one over zero-filled tokens).
void run_problem(std::mt19937& rng, int E, int N, int K, const std::vector<int>& counts, const std::string& what,
                 bool relaid = false, int scale_hi = 122, int tokens = ms::kTok, bool tma = false) {
  constexpr int kMaxTok = gptoss::cuda::kMoeStreamWideTokens;
  const int nch = K / 32;
  std::uniform_int_distribution<int> byte(0, 255), sc(118, scale_hi), small(-8, 8);
  std::vector<uint8_t> blocks(size_t(E) * N * nch * 16), scales(size_t(E) * N * nch);
  for (auto& b : blocks) b = uint8_t(byte(rng));
  for (auto& s : scales) s = uint8_t(sc(rng));
  std::vector<double> bias(size_t(E) * N);
  for (auto& b : bias) b = small(rng) / 4.0;
  int P = 0;
  for (int c : counts) P += c;
  const int T = P + 3;  // rows of A (tokens), gathered through perm
  std::vector<uint16_t> hi(size_t(T) * K), lo(size_t(T) * K);
  for (size_t i = 0; i < hi.size(); ++i) hi[i] = to_bf16(small(rng) / 8.f), lo[i] = to_bf16(small(rng) / 1024.f);
  std::vector<int> group_start(E + 1, 0), tile_start(E + 1, 0), perm(P);
  for (int e = 0; e < E; ++e) {
    group_start[e + 1] = group_start[e] + counts[e];
    tile_start[e + 1] = tile_start[e] + (counts[e] + tokens - 1) / tokens;
  }
  std::uniform_int_distribution<int> tok(0, T - 1);
  for (int& s : perm) s = tok(rng);
  auto weight = [&](int e, int n, int k) {
    const uint8_t byte_ = blocks[((size_t(e) * N + n) * nch + k / 32) * 16 + (k % 32) / 2];
    return e2m1(k % 2 ? byte_ >> 4 : byte_ & 15) * std::ldexp(1.0, int(scales[(size_t(e) * N + n) * nch + k / 32]) - 127);
  };
  // what the kernel reads: the checkpoint's bytes, or their re-layout (the reference keeps the checkpoint's)
  std::vector<uint8_t> wb = blocks, ws = scales;
  if (relaid) mxlayout::to_decode_layout(blocks.data(), scales.data(), E, N, nch, wb.data(), ws.data());
  std::vector<double> ref(size_t(P) * N, 0.0), out(size_t(P) * N, NAN);
  for (int e = 0; e < E; ++e)
    for (int s = group_start[e]; s < group_start[e + 1]; ++s)
      for (int n = 0; n < N; ++n) {
        double acc = bias[size_t(e) * N + n];
        for (int k = 0; k < K; ++k) acc += weight(e, n, k) * (bf16(hi[size_t(perm[s]) * K + k]) + bf16(lo[size_t(perm[s]) * K + k]));
        ref[size_t(s) * N + n] = acc;
      }

  const int max_tiles = P / tokens + E, blocks_x = (N + ms::kRows - 1) / ms::kRows, nkt = (nch + ms::kKc - 1) / ms::kKc;
  // A packed by tile and stage as launch_moe_stream_pack writes it (slot s: row s - c0 of its expert's tile), every
  // byte it does not write a bf16 NaN (0xFFFF): the row padding, columns past K, rows of absent slots
  check(ms::packed_stages(K) == nkt, "a packed stage is a ring stage (kKc x 32 columns)");
  std::vector<uint8_t> packed(size_t(ms::packed_stage_offset(max_tiles, 0, K, tokens)), 0xFF);
  bool slot_expert = true;
  for (int e = 0; e < E; ++e)
    for (int s = group_start[e]; s < group_start[e + 1]; ++s) {
      slot_expert &= ms::tile_expert(group_start.data(), E, s) == e;  // the pack kernel's search for the slot's expert
      const int tile = tile_start[e] + (s - group_start[e]) / tokens, r = (s - group_start[e]) % tokens;
      for (int col = 0; col < K; ++col)
        for (int h = 0; h < 2; ++h)
          std::memcpy(packed.data() + ms::packed_col_offset(tile, r, h, col, K, tokens), &(h ? lo : hi)[size_t(perm[s]) * K + col], 2);
    }
  check(slot_expert, what + ": tile_expert over group_start gives each slot its expert (the pack kernel's search)");
  std::vector<uint8_t> st(size_t(gptoss::cuda::moe_stream_stage_bytes(tokens)));
  auto word = [&](int off) { uint32_t w; std::memcpy(&w, st.data() + off, 4); return w; };
  for (int tile = 0; tile < max_tiles; ++tile) {
    if (tile >= tile_start[E]) continue;
    const int e = ms::tile_expert(tile_start.data(), E, tile);
    const int c0 = group_start[e] + (tile - tile_start[e]) * tokens, s1 = group_start[e + 1];
    for (int bx = 0; bx < blocks_x; ++bx) {
      const int n0 = bx * ms::kRows;
      if (c0 >= s1 || n0 >= N) continue;
      const int rows_here = std::min(ms::kRows, N - n0), ntok = std::min(tokens, s1 - c0), ntiles = (ntok + 3) / 4;
      const int nt_run = tokens == ms::kTok ? ntiles : (ntiles + 1) & ~1;  // the kernel's loop count
      // the CTA's scale bytes: rows n0 .. n0 + rows_here as they lie in memory, 127 past them
      std::vector<uint8_t> csc(size_t(ms::kRows) * nch, 127);
      bool big = false;
      for (int i = 0; i < rows_here * nch; ++i) {
        csc[size_t(i)] = ws[(size_t(e) * N + n0) * nch + size_t(i)];
        big |= csc[size_t(i)] > mxlayout::kPlacedScaleMax;
      }
      static double acc[8][32][kMaxTok / 4][4];
      std::memset(acc, 0, sizeof acc);
      for (int kt = 0; kt < nkt; ++kt) {
        std::fill(st.begin(), st.end(), uint8_t(0xA5));  // stale bytes: only zero-filled or copied ones may count
        const int b0 = kt * ms::kKc;
        if (!tma) {
          for (int c = 0; c < ms::kKc * ms::kRows; ++c) {  // the weight copies (cp.async zfill)
            const int row = ms::weight_chunk_row(c), b = ms::weight_chunk_block(c);
            const bool ok = row < rows_here && b0 + b < nch;
            for (int i = 0; i < 16; ++i)
              st[ms::weight_offset(row, b) + i] = ok ? wb[((size_t(e) * N + n0 + row) * nch + b0 + b) * 16 + i] : 0;
          }
        } else {
          // the tensor map's box (bytes [b0 16, + 64) of rows n0 .. n0 + 127; zeros outside the tensor), as the TMA
          // unit lands it with CU_TENSOR_MAP_SWIZZLE_64B: dense row-major, then address bits 4-5 ^= bits 7-8
          for (int row = 0; row < ms::kRows; ++row)
            for (int i = 0; i < 64; ++i) {
              const int col = b0 * 16 + i;
              const bool ok = n0 + row < N && col < nch * 16;
              const int dense = row * 64 + i, at = dense ^ (((dense >> 7) & 3) << 4);
              st[size_t(at)] = ok ? wb[(size_t(e) * N + n0 + row) * nch * 16 + size_t(col)] : 0;
            }
        }
        // the activation copy: the stage's first 2 x ntok packed rows as one piece (both kernels); the rest of
        // the slot keeps stale bytes
        std::memcpy(st.data() + ms::act_offset(0, 0), packed.data() + ms::packed_stage_offset(tile, kt, K, tokens),
                    size_t(2 * ntok * ms::kActRow));
        const int nb = std::min(ms::kKc, nch - kt * ms::kKc);
        for (int warp = 0; warp < 8; ++warp)
          for (int bp = 0; bp < ms::kKc && bp < nb; bp += 2) {
            uint32_t R[32][4];  // ldmatrix.x4: lanes 8m..8m+7 address matrix m; lane l gets word l%4 of row l/4
            for (int l = 0; l < 32; ++l)
              for (int m = 0; m < 4; ++m) R[l][m] = word((tma ? ms::tma_ldsm_offset(warp, bp, 8 * m + l / 4) : ms::ldsm_offset(warp, bp, 8 * m + l / 4)) + 4 * (l % 4));
            for (int h = 0; h < 2 && bp + h < nb; ++h) {
              const int b = bp + h, kb = kt * ms::kKc + b;
              double A[2][16][16] = {};
              for (int l = 0; l < 32; ++l) {
                const int g = l / 4, t = l % 4, rl = warp * 16 + g;
                double v[2][8];  // row g, row g + 8: the word's 8 values, scaled
                for (int q = 0; q < 2; ++q) {
                  const int sbyte = csc[size_t(ms::scale_offset(rl + 8 * q, kb, nch, relaid))];
                  if (!relaid) {
                    const double s = std::ldexp(1.0, sbyte - 127);
                    for (int i = 0; i < 8; ++i) v[q][i] = e2m1((R[l][2 * h + q] >> (4 * i)) & 15) * s;
                  } else {
                    uint32_t op[4];
                    mxlayout::decode_word(R[l][2 * h + q], op);
                    const double mult = big ? 0x1p126 * std::ldexp(1.0, sbyte - 127) : bf16(uint16_t(mxlayout::placed_scale_bits(uint32_t(sbyte))));
                    for (int i = 0; i < 4; ++i) {
                      v[q][2 * i] = bf16(uint16_t(op[i] & 0xffffu)) * mult;
                      v[q][2 * i + 1] = bf16(uint16_t(op[i] >> 16)) * mult;
                    }
                  }
                }
                for (int ks = 0; ks < 2; ++ks)
                  for (int i = 0; i < 4; ++i) {  // PTX: a_i at row g + 8 (i & 1), columns 2t + 8 (i >> 1) + 0, 1
                    const double* src = v[ms::a_row8(i)] + 2 * ms::a_pair(ks, i);
                    A[ks][g + 8 * (i & 1)][2 * t + 8 * (i >> 1)] = src[0];
                    A[ks][g + 8 * (i & 1)][2 * t + 8 * (i >> 1) + 1] = src[1];
                  }
              }
              for (int j = 0; j < nt_run; ++j) {
                double B[2][16][8] = {};
                for (int l = 0; l < 32; ++l) {
                  const int g = l / 4, t = l % 4, off = ms::bfrag_offset(j, g, t, b);
                  for (int ks = 0; ks < 2; ++ks)
                    for (int r = 0; r < 2; ++r) {  // PTX: b_r at rows 2t + 8r + 0, 1 of column g; word 2ks + r
                      uint16_t x0, x1;
                      std::memcpy(&x0, st.data() + off + 4 * (2 * ks + r), 2);
                      std::memcpy(&x1, st.data() + off + 4 * (2 * ks + r) + 2, 2);
                      B[ks][2 * t + 8 * r][g] = bf16(x0);
                      B[ks][2 * t + 8 * r + 1][g] = bf16(x1);
                    }
                }
                for (int l = 0; l < 32; ++l) {
                  const int g = l / 4, t = l % 4;
                  for (int c = 0; c < 4; ++c) {  // PTX: c_c at row g + 8 (c >> 1), column 2t + (c & 1)
                    double d = 0;
                    for (int ks = 0; ks < 2; ++ks)
                      for (int k = 0; k < 16; ++k) d += A[ks][g + 8 * (c >> 1)][k] * B[ks][k][2 * t + (c & 1)];
                    acc[warp][l][j][c] += d;
                  }
                }
              }
            }
          }
      }
      for (int warp = 0; warp < 8; ++warp)
        for (int l = 0; l < 32; ++l)
          for (int j = 0; j < ntiles; ++j) {
            const int g = l / 4, t = l % 4, token = ms::c_token(j, t);
            if (token >= ntok) continue;
            const int slot = c0 + token, na = n0 + warp * 16 + g;
            if (na < N) out[size_t(slot) * N + na] = acc[warp][l][j][0] + acc[warp][l][j][1] + bias[size_t(e) * N + na];
            if (na + 8 < N) out[size_t(slot) * N + na + 8] = acc[warp][l][j][2] + acc[warp][l][j][3] + bias[size_t(e) * N + na + 8];
          }
    }
  }
  double worst = 0, scale = 0;
  int unwritten = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    if (std::isnan(out[i])) ++unwritten;
    else worst = std::max(worst, std::fabs(out[i] - ref[i]));
  }
  char detail[160];
  std::snprintf(detail, sizeof detail, "max error %.3g of %.3g, unwritten %d", worst, scale, unwritten);
  check(unwritten == 0 && worst <= 1e-9 * std::max(scale, 1.0), "emulated CTAs == dense reference: " + what, detail);
  std::printf("ok %s: %s\n", what.c_str(), detail);
}

}  // namespace

int main() {
  // stage bookkeeping
  check(ms::kWStage + 2 * ms::kTok * ms::kActRow == gptoss::cuda::moe_stream_stage_bytes(), "stage bytes");
  {
    std::vector<int> seen(size_t(ms::kKc) * ms::kRows, 0);
    for (int c = 0; c < ms::kKc * ms::kRows; ++c) ++seen[size_t(ms::weight_offset(ms::weight_chunk_row(c), ms::weight_chunk_block(c))) / 16];
    bool once = true;
    for (int s : seen) once &= s == 1;
    check(once, "weight chunks fill the stage's weight part once each");
    bool rows = true;
    for (int j = 0; j < ms::kTok / 4; ++j)
      for (int g = 0; g < 8; ++g) rows &= ms::act_row(4 * j + g / 2, g & 1) == 8 * j + g;
    check(rows, "B column g of n-tile j is act_row(4j + g/2, g % 2) = 8j + g");
    // the kernel's hoisted scale addressing: scale_offset(rl, kb) = scale_offset(rl, 0) + kb x step, and row
    // rl + 8's = row rl's + a constant, for every lane row rl = 16 warp + g (g < 8), both layouts
    bool affine = true;
    for (bool dl : {false, true})
      for (int nch : {1, 5, 90, 128}) {
        for (int warp = 0; warp < ms::kRows / 16; ++warp)
          for (int g = 0; g < 8; ++g) {
            const int rl = 16 * warp + g;
            const int o0 = ms::scale_offset(rl, 0, nch, dl), step = ms::scale_offset(rl, 1, nch, dl) - o0;
            const int d8 = ms::scale_offset(rl + 8, 0, nch, dl) - o0;
            for (int kb = 0; kb < nch; ++kb)
              affine &= ms::scale_offset(rl, kb, nch, dl) == o0 + kb * step &&
                        ms::scale_offset(rl + 8, kb, nch, dl) == o0 + kb * step + d8;
          }
      }
    check(affine, "scale_offset is affine in kb with a constant row-8 offset (the kernel's hoisted addressing)");
    check(ms::act_offset(2 * ms::kTok - 1, ms::kActChunks - 1) + 16 <= gptoss::cuda::moe_stream_stage_bytes(), "activation rows inside the stage");
  }
  // bank conflicts: ldmatrix phases (the 8 row addresses of a matrix) and the B loads' quarter-warp phases
  // each cover 8 distinct 16-byte bank groups
  {
    bool ldsm = true, bload = true;
    for (int warp = 0; warp < 8; ++warp)
      for (int bp = 0; bp < ms::kKc; bp += 2)
        for (int m = 0; m < 4; ++m) {
          int mask = 0;
          int tmask = 0;
          for (int i = 0; i < 8; ++i) mask |= 1 << ((ms::ldsm_offset(warp, bp, 8 * m + i) / 16) % 8);
          for (int i = 0; i < 8; ++i) tmask |= 1 << ((ms::tma_ldsm_offset(warp, bp, 8 * m + i) / 16) % 8);
          ldsm &= mask == 0xFF && tmask == 0xFF;
        }
    for (int j = 0; j < ms::kTok / 4; ++j)
      for (int b = 0; b < ms::kKc; ++b)
        for (int q = 0; q < 4; ++q) {
          int mask = 0;
          for (int l = 8 * q; l < 8 * q + 8; ++l) mask |= 1 << ((ms::bfrag_offset(j, l / 4, l % 4, b) / 16) % 8);
          bload &= mask == 0xFF;
        }
    check(ldsm, "ldmatrix.x4 phases conflict-free (the cp.async ring's layout and the TMA box's swizzled one)");
    std::vector<int> seen(size_t(ms::kKc) * ms::kRows, 0);
    for (int row = 0; row < ms::kRows; ++row)
      for (int b = 0; b < ms::kKc; ++b) ++seen[size_t(ms::tma_weight_offset(row, b)) / 16];
    bool once = true;
    for (int v : seen) once &= v == 1;
    check(once, "the TMA box's swizzled chunks fill the stage's weight part once each");
    check(bload, "B fragment loads (16 bytes a lane) conflict-free");
  }
  // tile -> expert
  {
    const std::vector<int> ts = {0, 0, 2, 2, 2, 3, 5};  // 6 experts: counts 0, 2 tiles, 0, 0, 1 tile, 2 tiles
    const int want[5] = {1, 1, 4, 5, 5};
    bool ok = true;
    for (int tile = 0; tile < 5; ++tile) ok &= ms::tile_expert(ts.data(), 6, tile) == want[tile];
    check(ok, "tile_expert skips empty experts");
  }
  std::mt19937 rng(20261205);
  run_problem(rng, 3, 192, 320, {5, 0, 19}, "E3 N192 K320 (partial stage, partial row block, two tiles)");
  run_problem(rng, 2, 64, 64, {1, 16}, "E2 N64 K64 (one block pair)");
  run_problem(rng, 4, 136, 96, {0, 33, 2, 0}, "E4 N136 K96 (odd block count, three tiles, empty experts)");
  run_problem(rng, 2, 256, 128, {8, 4}, "E2 N256 K128 (two full row blocks, whole stages)");
  // the decode layout (kRelaid): rows a multiple of 16, as moe_decode_layout() requires
  run_problem(rng, 3, 192, 320, {5, 0, 19}, "E3 N192 K320, decode layout", true);
  run_problem(rng, 2, 256, 128, {8, 4}, "E2 N256 K128, decode layout", true);
  run_problem(rng, 4, 144, 96, {0, 33, 2, 0}, "E4 N144 K96 (partial row block), decode layout", true);
  run_problem(rng, 2, 192, 160, {7, 17}, "E2 N192 K160, decode layout, scales to 131 (two multiplies)", true, 131);
  // the wide kernel (32 rows a CTA): n-tiles 1 (run as 2), 5 (as 6), 8, two tiles (33 rows), empty experts
  const int w = gptoss::cuda::kMoeStreamWideTokens;
  run_problem(rng, 4, 192, 320, {3, 0, 19, 33}, "wide: E4 N192 K320 (n-tiles 1, 5, 8 + 1)", false, 122, w);
  run_problem(rng, 3, 144, 96, {32, 17, 0}, "wide: E3 N144 K96, decode layout", true, 122, w);
  run_problem(rng, 2, 192, 160, {29, 2}, "wide: E2 N192 K160, decode layout, scales to 131", true, 131, w);
  // the TMA kernel (the weights as the tensor map's swizzled box, activation rows of absent tokens not copied)
  run_problem(rng, 3, 192, 320, {5, 0, 19}, "TMA: E3 N192 K320 (partial stage, partial row block, two tiles)", false, 122, ms::kTok, true);
  run_problem(rng, 4, 144, 96, {0, 33, 2, 0}, "TMA: E4 N144 K96, decode layout", true, 122, ms::kTok, true);
  run_problem(rng, 2, 192, 160, {7, 17}, "TMA: E2 N192 K160, decode layout, scales to 131", true, 131, ms::kTok, true);
  run_problem(rng, 4, 192, 320, {3, 0, 19, 33}, "TMA wide: E4 N192 K320 (n-tiles 1, 5, 8 + 1)", false, 122, w, true);
  run_problem(rng, 3, 144, 96, {32, 17, 0}, "TMA wide: E3 N144 K96, decode layout", true, 122, w, true);
  return gptoss::test::checks_passed("moe stream layout");
}
