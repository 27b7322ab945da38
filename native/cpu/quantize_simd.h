// The load-time quantizers, written once against a small vector interface V and compiled twice: by
// quantize_avx2.cpp (V = 8 lanes of ymm) and quantize_avx512.cpp (16 lanes of zmm, mask registers).
// Include it after defining V; it defines quantize_cols<V> (dense experts bf16/f16/f32 -> MXFP4,
// loadModel's experts: 'mxfp4' for a fine-tuned checkpoint) and quantize_q8_0_blocks<V> (dense
// matrices -> Q8_0, denseWeights: 'q8').
//
// MXFP4: bit-identical to the scalar reference (mxfp4.cpp quantize_block_mxfp4), by construction:
// - One lane per output block. transformers' layout [E, C, R] puts a block's 32 values (inputs
//   c = 32g..32g+31 of output row r) in 32 different source rows, and consecutive r side by side, so
//   loading 32 source rows at r..r+N-1 gives each lane its own block with no shuffle, and every
//   per-block step (max, scale choice, the running squared error) is the scalar's, lane by lane, in
//   the scalar's order of operations. No FMA: the files compile with -ffp-contract=off (cpu.cmake),
//   as the scalar (x86-64 baseline) has none either.
// - min/max keep the scalar's NaN behaviour: x86 max(a, b) is (a > b) ? a : b, so max(|v|, amax)
//   passes a NaN over as std::max(amax, |v|) does; min(y, 6) is (y < 6) ? y : 6 = std::min(6.f, y).
// - The E2M1 code of a = |clamped value| in [0, 6]: the grid's step is 0.5 below 2, 1 in [2, 4) and
//   2 in [4, 6]; adding M = 2^22, 2^23 or 2^24 (the float whose ulp is that step) rounds a to the grid,
//   ties to even (the default rounding mode, which the scalar's thresholds also encode: 0.25 -> 0,
//   0.75 -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4), and bits(a + M) - bits(M) counts the
//   steps, from which the code follows by adding 2 x the binade. Checked against the scalar on every
//   float in [-6, 6] (bench/mxfp4-quantize-exhaustive.mjs) and on random and edge-case blocks
//   (test/cpu/quantizers.test.ts).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "kernels.h"

namespace quantize_detail {

using gptoss::cpu::QuantSrc;

// Value k of lanes r..r+N-1: source element k * ld + r, widened to f32 (exactly).
template <class V>
inline typename V::F load_lanes(const void* src, QuantSrc kind, int64_t at) {
  if (kind == QuantSrc::F32) return V::load_f32(static_cast<const float*>(src) + at);
  if (kind == QuantSrc::Bf16) return V::load_bf16(static_cast<const uint16_t*>(src) + at);
  return V::load_f16(static_cast<const uint16_t*>(src) + at);
}

// One candidate scale 2^e per lane (e in [-127, 126]) for the 32 values x[k]: the packed codes,
// 8 per 32-bit word (value k in nibble k % 8 of word k / 8: byte j holds values 2j and 2j + 1 as the
// Hugging Face blocks do), and the squared error in the scalar's order.
template <class V>
inline typename V::F encode(const float (*x)[V::N], typename V::I e, typename V::I* words) {
  using F = typename V::F;
  using I = typename V::I;
  const F inv = V::as_f(V::slli(V::sub(V::set1i(127), e), 23));  // 2^-e: exponent field 1..254
  // 2^e; 2^-127 is subnormal (0x00400000), as std::ldexp(1.f, -127) gives
  const F scale = V::as_f(V::select_i(V::gt_i(e, V::set1i(-127)), V::slli(V::add(e, V::set1i(127)), 23),
                                      V::set1i(0x00400000)));
  const F six = V::set1(6.f), minus_six = V::set1(-6.f);
  const I abs_mask = V::set1i(0x7fffffff), exp_mask = V::set1i(0x7f800000), one_exp = V::set1i(0x3f800000);
  const I magic_exp = V::set1i(22 << 23), code_bias = V::set1i(298), sign_mask = V::set1i(int32_t(0x80000000u));
  F err = V::set1(0.f);
  for (int j = 0; j < 4; ++j) words[j] = V::set1i(0);
  for (int k = 0; k < 32; k += 2) {
    F sq[2];
    for (int h = 0; h < 2; ++h) {
      const F v = V::load_f32(x[k + h]);
      const I c = V::as_i(V::max(V::min(V::mul(v, inv), six), minus_six));
      const I a = V::and_i(c, abs_mask);
      const I m = V::add(V::max_i(V::and_i(a, exp_mask), one_exp), magic_exp);  // 2^22 * max(1, 2^floor(log2 a))
      const F s = V::add_f(V::as_f(a), V::as_f(m));
      I code = V::add(V::sub(V::as_i(s), m), V::sub(V::srli(m, 22), code_bias));
      const I sign = V::and_i(c, sign_mask);
      // bit 3 for a negative value, unless its code is 0 (the scalar writes 0, not 8, for -0.1)
      code = V::or_i(code, V::and_i(V::and_i(V::srli(sign, 28), V::add(code, V::set1i(7))), V::set1i(8)));
      const F q = V::as_f(V::or_i(V::as_i(V::sub_f(s, V::as_f(m))), sign));
      const F d = V::sub_f(v, V::mul(q, scale));
      sq[h] = V::mul(d, d);
      words[(k + h) / 8] = V::or_i(words[(k + h) / 8], V::slli(code, 4 * ((k + h) % 8)));
    }
    err = V::add_f(err, V::add_f(sq[0], sq[1]));
  }
  return err;
}

// Lanes (output rows) [r0, r1) of one block column: value k of row r is src[k * ld + r]; row r's 16
// code bytes go to codes + r * stride * 16, its scale byte to scales[r * stride].
template <class V>
void quantize_cols(const void* src, QuantSrc kind, int64_t ld, int64_t r0, int64_t r1, uint8_t* codes,
                   uint8_t* scales, int64_t stride) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr int N = V::N;
  alignas(64) float x[32][N];
  alignas(64) int32_t out_words[4][N];
  alignas(64) int32_t out_e[N];
  for (int64_t r = r0; r < r1; r += N) {
    const int lanes = r1 - r < N ? int(r1 - r) : N;
    F amax = V::set1(0.f);
    for (int k = 0; k < 32; ++k) {
      F v;
      if (lanes == N) {
        v = load_lanes<V>(src, kind, k * ld + r);
      } else {  // the last lanes of a row: the rest read as zeros (an all-zero lane is dropped below)
        for (int l = 0; l < N; ++l) x[k][l] = l < lanes ? gptoss::cpu::quant_src_at(src, kind, k * ld + r + l) : 0.f;
        v = V::load_f32(x[k]);
      }
      V::store_f32(x[k], v);
      amax = V::max(V::abs(v), amax);
    }
    // e_floor = floor(log2 amax) - 2 (the OCP MX rule), at least -127: amax's exponent field - 129
    const I bits = V::as_i(amax);
    const I e_floor = V::max_i(V::sub(V::srli(bits, 23), V::set1i(129)), V::set1i(-127));
    // one step up when amax > 6 * 2^e_floor = 1.5 * 2^(e_floor + 2) (the round-up rule)
    const F six_scaled = V::as_f(V::or_i(V::slli(V::add(e_floor, V::set1i(129)), 23), V::set1i(0x00400000)));
    const I e_up = V::select_i(V::gt(amax, six_scaled), V::add(e_floor, V::set1i(1)), e_floor);
    I words_floor[4], words_up[4];
    const F err_floor = encode<V>(x, e_floor, words_floor);
    const F err_up = encode<V>(x, e_up, words_up);
    const auto up = V::gt(err_floor, err_up);  // err_up < err_floor: a tie or a NaN keeps the floor
    // zeros, and inf (amax not finite, NaN never reaches amax): scale 2^0, codes 0
    const auto finite_nonzero = V::and_m(V::gt(amax, V::set1(0.f)), V::gt(V::set1(__builtin_inff()), amax));
    for (int j = 0; j < 4; ++j)
      V::store_i(out_words[j], V::select_i(finite_nonzero, V::select_i(up, words_up[j], words_floor[j]), V::set1i(0)));
    V::store_i(out_e, V::select_i(finite_nonzero, V::select_i(up, e_up, e_floor), V::set1i(0)));
    for (int l = 0; l < lanes; ++l) {
      uint8_t* c = codes + (r + l) * stride * 16;
      for (int j = 0; j < 4; ++j) std::memcpy(c + 4 * j, &out_words[j][l], 4);
      scales[(r + l) * stride] = uint8_t(out_e[l] + 127);
    }
  }
}

// Q8_0, `nblk` consecutive blocks of 32 (src -> dst, 34 bytes a block): bit-identical to the scalar
// reference (q8.cpp quantize_block_q8_0, ggml's quantize_row_q8_0 rule). max|v| per block with NaN
// passed over (max(|v|, 0) turns a NaN into 0 first, as std::max(amax, |v|) skips it); d, 1/d and the
// f16 scale in scalar code, as the reference computes them; q = round(v / d) half away from zero as
// std::round: t = trunc(x), plus sign(x) where |x - t| >= 0.5 (x - t is exact); clamped with the
// reference's NaN behaviour (min(NaN, 127) is 127).
template <class V>
void quantize_q8_0_blocks(const void* src, QuantSrc kind, int64_t nblk, uint8_t* dst) {
  using F = typename V::F;
  constexpr int N = V::N, P = 32 / N;  // vectors a block
  const F zero = V::set1(0.f), half = V::set1(0.5f), one = V::set1(1.f), lim = V::set1(127.f), neg_lim = V::set1(-127.f);
  for (int64_t g = 0; g < nblk; ++g) {
    F v[P];
    F m = zero;
    for (int p = 0; p < P; ++p) {
      v[p] = load_lanes<V>(src, kind, g * 32 + p * N);
      m = V::max(m, V::max(V::abs(v[p]), zero));
    }
    const float amax = V::hmax(m);
    const float d = amax / 127.f;
    const float inv = d != 0.f ? 1.f / d : 0.f;
    const uint16_t dh = gptoss::f32_to_f16(d);
    uint8_t* out = dst + g * 34;
    std::memcpy(out, &dh, 2);
    const F vinv = V::set1(inv);
    for (int p = 0; p < P; ++p) {
      const F x = V::mul(v[p], vinv);
      const F t = V::trunc(x);
      const F away = V::select_f(V::ge(V::abs(V::sub_f(x, t)), half), V::or_sign(one, x), zero);
      const F r = V::add_f(t, away);
      V::store_i8(reinterpret_cast<int8_t*>(out + 2 + p * N), V::max(V::min(r, lim), neg_lim));
    }
  }
}

}  // namespace quantize_detail
