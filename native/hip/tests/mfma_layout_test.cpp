// Host check of the MFMA index math the HIP kernels are built on (native/hip/mfma.h), since no AMD GPU
// runs them here. The reference is the layout as AMD documents it, written FORWARD (element -> lane,
// item; mfma.h's header comment quotes it), while mfma.h gives the kernels the INVERSE maps
// (lane, item -> element). Checks:
//  1. every (lane, item) of each operand is one element and every element one (lane, item), and the
//     inverse maps agree with the documented forward maps (32x32x8 and 16x16x16 bf16_1k);
//  2. the 4 values of an A/B lane are consecutive in k (the kernels read them with one 8-byte load);
//  3. flash attention's reuse of an S^T accumulator as the next B operand (d_item_as_b);
//  4. a simulation of gemm_tile_mfma's fragment loads (GemmTileMap offsets into LDS images with the
//     kernel's row padding), the documented MFMA semantics over those registers, and its epilogue
//     mapping, against a plain matrix product, for every M tile and wave of a 128 x 128 x 32 tile;
//  5. the decode MoE's pieces (moe_decode_mfma.hip): v_perm_b32's host form, the E2M1 word decode
//     for every byte value in every position, MoeDecodeMap's operand maps (A and B agree on each k,
//     every block value once per block), and a simulation of a 16-row tile over an odd count of MX
//     blocks split among 4 waves, rows past the end clamped, against a scalar MXFP4 reference.
// Prints one line per check; exit status 1 on the first mismatch. Run by test/hip-kernels.test.ts.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hip/mfma.h"

namespace {

using namespace gptoss::mfma;

int failures = 0;
void expect(bool ok, const char* what, int a = 0, int b = 0, int c = 0) {
  if (ok) return;
  if (failures++ < 10) std::printf("FAIL %s (%d, %d, %d)\n", what, a, b, c);
}

struct LaneItem {
  int lane, item;
};
// Documented forward maps (AMD matrix instruction calculator, CDNA3 ISA "MFMA" section).
LaneItem doc32_a(int i, int k) { return {i + 32 * (k / 4), k % 4}; }
LaneItem doc32_b(int k, int j) { return {j + 32 * (k / 4), k % 4}; }
LaneItem doc32_d(int i, int j) { return {j + 32 * ((i / 4) % 2), (i % 4) + 4 * (i / 8)}; }
LaneItem doc16_a(int i, int k) { return {i + 16 * (k / 4), k % 4}; }
LaneItem doc16_b(int k, int j) { return {j + 16 * (k / 4), k % 4}; }
LaneItem doc16_d(int i, int j) { return {j + 16 * (i / 4), i % 4}; }

template <typename L>
void check_layout(const char* name, LaneItem (*da)(int, int), LaneItem (*db)(int, int), LaneItem (*dd)(int, int)) {
  const int before = failures;
  std::vector<int> seen_a(L::kM * L::kK, 0), seen_b(L::kK * L::kN, 0), seen_d(L::kM * L::kN, 0);
  for (int lane = 0; lane < 64; ++lane) {
    for (int item = 0; item < L::kItemsAB; ++item) {
      const int i = L::a_row(lane), k = L::a_k(lane, item);
      expect(i >= 0 && i < L::kM && k >= 0 && k < L::kK, "A element in range", lane, item);
      if (i >= 0 && i < L::kM && k >= 0 && k < L::kK) ++seen_a[i * L::kK + k];
      const LaneItem f = da(i, k);
      expect(f.lane == lane && f.item == item, "A inverse = documented forward", lane, item);
      expect(L::a_k(lane, item) == L::a_k(lane, 0) + item, "A lane's k consecutive", lane, item);
      const int kb = L::b_k(lane, item), j = L::b_col(lane);
      if (kb >= 0 && kb < L::kK && j >= 0 && j < L::kN) ++seen_b[kb * L::kN + j];
      const LaneItem fb = db(kb, j);
      expect(fb.lane == lane && fb.item == item, "B inverse = documented forward", lane, item);
      expect(L::b_k(lane, item) == L::b_k(lane, 0) + item, "B lane's k consecutive", lane, item);
    }
    for (int item = 0; item < L::kItemsD; ++item) {
      const int i = L::d_row(lane, item), j = L::d_col(lane);
      expect(i >= 0 && i < L::kM && j >= 0 && j < L::kN, "D element in range", lane, item);
      if (i >= 0 && i < L::kM && j >= 0 && j < L::kN) ++seen_d[i * L::kN + j];
      const LaneItem f = dd(i, j);
      expect(f.lane == lane && f.item == item, "D inverse = documented forward", lane, item);
    }
  }
  for (int c : seen_a) expect(c == 1, "A: each element in exactly one (lane, item)", c);
  for (int c : seen_b) expect(c == 1, "B: each element in exactly one (lane, item)", c);
  for (int c : seen_d) expect(c == 1, "D: each element in exactly one (lane, item)", c);
  std::printf("%s %s: A, B, D layouts (64 lanes)\n", failures == before ? "ok" : "FAIL", name);
}

void check_d_as_b() {
  const int before = failures;
  // S^T[key][query] accumulator (32x32x8 D) -> B operand of O^T += V^T P^T, k-step t covers keys 8t..8t+7.
  for (int t = 0; t < 4; ++t)
    for (int lane = 0; lane < 64; ++lane)
      for (int item = 0; item < 4; ++item) {
        const int key = 8 * t + M32x32x8::b_k(lane, item), query = M32x32x8::b_col(lane);
        const LaneItem where = doc32_d(key, query);  // where S^T[key][query] lives
        expect(where.lane == lane && where.item == d_item_as_b(t, item), "S^T item reused as B", t, lane, item);
      }
  // The output store writes items 4g .. 4g + 3 of a lane as one float4: consecutive rows (dims).
  for (int lane = 0; lane < 64; ++lane)
    for (int g = 0; g < 4; ++g)
      for (int i = 0; i < 4; ++i)
        expect(M32x32x8::d_row(lane, 4 * g + i) == M32x32x8::d_row(lane, 4 * g) + i && M32x32x8::d_row(lane, 4 * g) % 4 == 0,
               "D items 4g..4g+3 are 4 aligned consecutive rows", lane, g, i);
  std::printf("%s flash: a 32x32x8 accumulator's items 4t..4t+3 are k-step t's B operand, and 4 consecutive rows\n",
              failures == before ? "ok" : "FAIL");
}

// One v_mfma_f32_32x32x8bf16_1k on register files a[64][4], b[64][4], d[64][16], as documented.
void mfma32(const float (&a)[64][4], const float (&b)[64][4], float (&d)[64][16]) {
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 32; ++j) {
      double s = 0;
      for (int k = 0; k < 8; ++k) {
        const LaneItem ai = doc32_a(i, k), bi = doc32_b(k, j);
        s += double(a[ai.lane][ai.item]) * b[bi.lane][bi.item];
      }
      const LaneItem di = doc32_d(i, j);
      d[di.lane][di.item] += float(s);
    }
}

void check_gemm_tile() {
  const int before = failures;
  constexpr int BM = 128, BN = 128, BK = kTileK;
  // LDS images with the kernel's padded rows; the pad holds garbage a wrong offset would pick up.
  std::vector<float> a_lds(BM * kTileRow, 1e6f), w_lds(BN * kTileRow, -1e6f);
  std::vector<float> A(BM * BK), W(BN * BK);
  unsigned seed = 12345;
  auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return float(int(seed >> 9) % 2001 - 1000) / 256.f; };
  for (int r = 0; r < BM; ++r)
    for (int k = 0; k < BK; ++k) a_lds[tile_offset(r, k)] = A[r * BK + k] = rnd();
  for (int n = 0; n < BN; ++n)
    for (int k = 0; k < BK; ++k) w_lds[tile_offset(n, k)] = W[n * BK + k] = rnd();
  std::vector<float> out(BM * BN, NAN);
  for (int wave = 0; wave < 4; ++wave)
    for (int mt = 0; mt < BM / 32; ++mt) {
      static float d[64][16];
      for (auto& l : d)
        for (float& v : l) v = 0.f;
      for (int kk = 0; kk < BK; kk += M32x32x8::kK) {
        float a[64][4], b[64][4];
        for (int lane = 0; lane < 64; ++lane)
          for (int item = 0; item < 4; ++item) {  // one 8-byte load: 4 consecutive values
            a[lane][item] = a_lds[GemmTileMap::a_offset(mt, lane, kk) + item];
            b[lane][item] = w_lds[GemmTileMap::b_offset(wave, lane, kk) + item];
          }
        mfma32(a, b, d);
      }
      for (int lane = 0; lane < 64; ++lane)
        for (int item = 0; item < 16; ++item)
          out[GemmTileMap::d_row(mt, lane, item) * BN + GemmTileMap::d_col(wave, lane)] = d[lane][item];
    }
  for (int r = 0; r < BM; ++r)
    for (int n = 0; n < BN; ++n) {
      double ref = 0;
      for (int k = 0; k < BK; ++k) ref += double(A[r * BK + k]) * W[n * BK + k];
      expect(std::fabs(out[r * BN + n] - ref) <= 1e-3 * (1 + std::fabs(ref)), "GEMM tile element", r, n);
    }
  std::printf("%s gemm tile: 4 waves x 4 M tiles of 32x32x8 MFMAs reproduce A W^T (128x128x32)\n",
              failures == before ? "ok" : "FAIL");
}

// ---- 5. the decode MoE ----
float bf16_to_f32(uint32_t h) {
  const uint32_t u = h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
uint32_t bf16_rn(float f) {  // round to nearest even, as __floats2bfloat162_rn (finite inputs)
  const uint32_t u = f32_bits(f);
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
float e2m1_value(uint32_t code) {  // the E2M1 table: 0, 0.5, 1, 1.5, 2, 3, 4, 6, sign bit 3
  static const float mag[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
  return (code & 8u) ? -mag[code & 7u] : mag[code & 7u];
}
float e8m0_value(uint32_t s) { return s == 0 ? std::ldexp(1.f, -127) : std::ldexp(1.f, int(s) - 127); }

void check_perm() {
  const int before = failures;
  // LLVM's constant folding of llvm.amdgcn.perm (clang-19, quoted in mfma.h)
  expect(perm_b32(0x07060504u, 0x03020100u, 0x07050301u) == 0x07050301u, "perm: bytes 0-3 from lo, 4-7 from hi");
  expect(perm_b32(0xA0B0C0D0u, 0x11223344u, 0x0c0d0400u) == 0x00ffd044u, "perm: 12 -> 0x00, 13 -> 0xff");
  std::printf("%s v_perm_b32: host form agrees with LLVM's folding of llvm.amdgcn.perm\n", failures == before ? "ok" : "FAIL");
}

void check_e2m1_decode() {
  const int before = failures;
  for (uint32_t byte = 0; byte < 256; ++byte)
    for (int pos = 0; pos < 4; ++pos) {
      // the byte at position pos, the other bytes a pattern the decode must keep apart
      const uint32_t w = (0x9c5a3e71u & ~(0xffu << (8 * pos))) | (byte << (8 * pos));
      uint32_t st0[2], st1[2];
      e2m1_word_to_bf16_steps(w, st0, st1);
      for (int v = 0; v < 8; ++v) {  // value v of the word: byte v / 2, low nibble for even v
        const uint32_t code = (w >> (8 * (v / 2) + 4 * (v % 2))) & 15u;
        // k-step s = v % 2 holds it as item v / 2: dword item / 2, half item % 2
        const uint32_t* st = v % 2 ? st1 : st0;
        const int item = v / 2;
        const uint32_t bits = (st[item / 2] >> (16 * (item % 2))) & 0xffffu;
        const float got = bf16_to_f32(bits), want = e2m1_value(code);
        expect(got == want && std::signbit(got) == std::signbit(want), "E2M1 word decode", int(byte), pos, v);
      }
    }
  std::printf("%s e2m1 word decode: every byte value in every position, both k-steps, exact bf16\n",
              failures == before ? "ok" : "FAIL");
}

void check_moe_decode_map() {
  const int before = failures;
  using Map = MoeDecodeMap;
  using M = M16x16x16;
  for (int s = 0; s < Map::kSteps; ++s) {
    std::vector<int> seen(32 * 16, 0);  // (value, row)
    for (int lane = 0; lane < 64; ++lane)
      for (int item = 0; item < 4; ++item) {
        const int kb = M::b_k(lane, item), ka = M::a_k(lane, item);
        // lane (j, q)'s B item is a value of its own word; its A item (same k) the same value
        const int v = Map::value(s, kb);
        expect(v / 8 == Map::w_word(lane), "B value in the lane's word", s, lane, item);
        expect(ka == kb, "A and B of a lane carry the same k (and so the same value)", s, lane, item);
        expect(v % 2 == s && (v % 8) / 2 == item, "step s = nibble, item = byte of the word", s, lane, item);
        ++seen[v * 16 + Map::w_row(lane)];
      }
    for (int v = 0; v < 32; ++v)
      for (int row = 0; row < 16; ++row)
        expect(seen[v * 16 + row] == (v % 2 == s ? 1 : 0), "each (value, row) of the block once in its step", s, v, row);
  }
  for (int lane = 0; lane < 16; ++lane)
    for (int h = 0; h < 2; ++h) {  // D[h][j] for h = hi, lo sits in lane j, item h
      const LaneItem d = doc16_d(h, lane);
      expect(d.lane == lane && d.item == h, "row j's hi and lo sums are items 0 and 1 of lane j", lane, h);
      expect(Map::x_half(doc16_a(h, 0).lane) == h, "A row 0 carries hi, row 1 lo", lane, h);
    }
  std::printf("%s moe decode map: B = words of 16 rows, A = x hi/lo in the same k order, D rows 0/1 in lanes 0-15\n",
              failures == before ? "ok" : "FAIL");
}

// One v_mfma_f32_16x16x16bf16_1k on bf16 register files a[64][4], b[64][4] (bit patterns), d[64][4].
void mfma16(const uint32_t (&a)[64][4], const uint32_t (&b)[64][4], float (&d)[64][4]) {
  float out[16][16];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double s = 0;
      for (int k = 0; k < 16; ++k) {
        const LaneItem ai = doc16_a(i, k), bi = doc16_b(k, j);
        s += double(bf16_to_f32(a[ai.lane][ai.item])) * bf16_to_f32(b[bi.lane][bi.item]);
      }
      out[i][j] = float(s);
    }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      const LaneItem di = doc16_d(i, j);
      d[di.lane][di.item] += out[i][j];
    }
}

// The kernel's tile: rows [0, 16) of a [rows_total, nch] MXFP4 matrix (rows past rows_total clamped)
// times x [nch * 32], the waves' ranges and sums as moe_mfma_*_kernel; returns the 16 row sums.
std::vector<float> simulate_moe_tile(const std::vector<uint8_t>& w, const std::vector<uint8_t>& sc, int rows_total, int nch,
                                     const std::vector<float>& x) {
  using Map = MoeDecodeMap;
  // stage_x_frags: [block][step][half][word] of 4 bf16 (as 16-bit patterns)
  std::vector<std::array<uint32_t, 4>> frag(size_t(nch) * 16);
  for (int b = 0; b < nch; ++b)
    for (int q = 0; q < 4; ++q)
      for (int s = 0; s < Map::kSteps; ++s)
        for (int item = 0; item < 4; ++item) {
          const float v = x[b * 32 + Map::value(s, 4 * q + item)];
          const uint32_t hi = bf16_rn(v), lo = bf16_rn(v - bf16_to_f32(hi));
          frag[Map::frag_index(b, s, 0, q)][item] = hi;
          frag[Map::frag_index(b, s, 1, q)][item] = lo;
        }
  constexpr int kWaves = 4;
  std::vector<float> rows(16, 0.f);
  for (int wave = 0; wave < kWaves; ++wave) {
    const int base = nch / kWaves, extra = nch % kWaves;  // wave_blocks
    const int b0 = wave * base + std::min(wave, extra), b1 = b0 + base + (wave < extra ? 1 : 0);
    float acc[64] = {};
    for (int b = b0; b < b1; ++b) {
      uint32_t A[2][64][4], B[2][64][4];
      uint32_t scale_byte[64];
      for (int lane = 0; lane < 64; ++lane) {
        const int row = std::min(Map::w_row(lane), rows_total - 1);
        uint32_t word;
        std::memcpy(&word, &w[(size_t(row) * nch + b) * 16 + 4 * Map::w_word(lane)], 4);
        scale_byte[lane] = sc[size_t(row) * nch + b];
        uint32_t st[2][2];
        e2m1_word_to_bf16_steps(word, st[0], st[1]);
        for (int s = 0; s < 2; ++s)
          for (int item = 0; item < 4; ++item) {
            B[s][lane][item] = (st[s][item / 2] >> (16 * (item % 2))) & 0xffffu;
            A[s][lane][item] = frag[Map::frag_index(b, s, Map::x_half(lane), M16x16x16::a_k(lane, 0) / 4)][item];
          }
      }
      float d[64][4] = {};
      mfma16(A[0], B[0], d);
      mfma16(A[1], B[1], d);
      for (int lane = 0; lane < 64; ++lane) acc[lane] = std::fma(e8m0_value(scale_byte[lane]), d[lane][0] + d[lane][1], acc[lane]);
    }
    for (int j = 0; j < 16; ++j) rows[j] += acc[j];  // tile_rows_sum: lanes 0-15, wave order
  }
  return rows;
}

void check_moe_tile() {
  const int before = failures;
  unsigned seed = 777;
  auto next = [&] { seed = seed * 1664525u + 1013904223u; return seed >> 8; };
  for (const int nch : {1, 3, 7, 9, 90}) {
    const int rows_total = nch == 7 ? 13 : 16;  // 13: the last 3 rows of the tile are clamped reads
    std::vector<uint8_t> w(size_t(rows_total) * nch * 16), sc(size_t(rows_total) * nch);
    std::vector<float> x(size_t(nch) * 32);
    for (auto& v : w) v = uint8_t(next());
    for (auto& v : sc) v = uint8_t(118 + next() % 16);  // 2^-9 .. 2^6
    for (auto& v : x) v = float(int(next() % 20001) - 10000) / 3371.f;
    const std::vector<float> got = simulate_moe_tile(w, sc, rows_total, nch, x);
    for (int j = 0; j < 16; ++j) {
      const int row = std::min(j, rows_total - 1);
      double ref = 0, mag = 0;
      for (int b = 0; b < nch; ++b)
        for (int v = 0; v < 32; ++v) {
          const uint32_t code = (w[(size_t(row) * nch + b) * 16 + v / 2] >> (4 * (v % 2))) & 15u;
          const double t = double(e2m1_value(code)) * e8m0_value(sc[size_t(row) * nch + b]) * x[b * 32 + v];
          ref += t;
          mag += std::fabs(t);
        }
      // x = hi + lo to ~2^-17 relative; f32 sums
      expect(std::fabs(got[j] - ref) <= 2e-5 * mag + 1e-30, "moe tile row", nch, j);
    }
  }
  std::printf("%s moe decode tile: 4 waves of 16x16x16 MFMAs on decoded words reproduce the MXFP4 GEMV (1-90 blocks)\n",
              failures == before ? "ok" : "FAIL");
}

}  // namespace

int main() {
  check_layout<M32x32x8>("v_mfma_f32_32x32x8bf16_1k", doc32_a, doc32_b, doc32_d);
  check_layout<M16x16x16>("v_mfma_f32_16x16x16bf16_1k", doc16_a, doc16_b, doc16_d);
  check_d_as_b();
  check_gemm_tile();
  check_perm();
  check_e2m1_decode();
  check_moe_decode_map();
  check_moe_tile();
  std::printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
