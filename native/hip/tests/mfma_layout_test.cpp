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
//     mapping, against a plain matrix product, for every M tile and wave of a 128 x 128 x 32 tile.
// Prints one line per check; exit status 1 on the first mismatch. Run by test/hip-kernels.test.ts.
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

}  // namespace

int main() {
  check_layout<M32x32x8>("v_mfma_f32_32x32x8bf16_1k", doc32_a, doc32_b, doc32_d);
  check_layout<M16x16x16>("v_mfma_f32_16x16x16bf16_1k", doc16_a, doc16_b, doc16_d);
  check_d_as_b();
  check_gemm_tile();
  std::printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
