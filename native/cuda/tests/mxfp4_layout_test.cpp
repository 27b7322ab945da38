// Host test of the MXFP4 decode layout (native/cuda/mxfp4_layout.h; issue 12 item 1): plain C++, no
// GPU, so CI runs it (test/mxfp4-layout.test.ts builds and runs it, as the policy test):
//  1. the word re-layout is a bijection of the 32 bits and from_decode_word inverts it, bit for bit;
//  2. decode_word on a re-laid word gives the bit-placed codes of the checkpoint word in natural pairs
//     (operand i = values 2i, 2i + 1: e2m1_word_to_bf16's order), the same placement as the kSub
//     kernel's operands (decode_checkpoint_word, pairs i, i + 4), and those operands are the CPU
//     backend's E2M1 values (core/dtype.h e2m1_to_f32) times 2^-126;
//  3. the matrix re-layout (blocks and scales) round-trips bit for bit, for several shapes;
//  4. a GEMV row computed the way the decode kernel addresses the re-laid matrix (word t of block b,
//     operand i = values 8t + 2i and 8t + 2i + 1, the 16-byte scale group of the row's tile, the kSub
//     domain: operand x (x * 2^64) x 2^(s - 65)) equals the CPU reference's row (cpu::ref's
//     dequantize: e2m1_to_f32(code) * 2^(s - 127), natural order) bit for bit on dyadic activations,
//     and within 1e-12 on random ones.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tests/check.h"
#include "cuda/mxfp4_layout.h"

using namespace gptoss;
using namespace gptoss::cuda;
using namespace gptoss::test;

namespace {

// A bf16 bit pattern as a double.
double bf16_value(uint32_t bits16) {
  const uint32_t f = bits16 << 16;
  float v;
  std::memcpy(&v, &f, 4);
  return double(v);
}

// The decode kernel's row (module comment, 4), in double.
double decode_layout_row(const uint8_t* blocks, const uint8_t* scales, int64_t row, int64_t nch, const std::vector<float>& x) {
  double acc = 0;
  for (int64_t b = 0; b < nch; ++b) {
    double c = 0;
    for (int t = 0; t < 4; ++t) {
      const uint8_t* p = blocks + (row * nch + b) * 16 + 4 * t;
      const uint32_t r = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
      uint32_t op[4];
      mxlayout::decode_word(r, op);
      for (int i = 0; i < 4; ++i) {
        c += bf16_value(op[i] & 0xffffu) * (double(x[size_t(32 * b + 8 * t + 2 * i)]) * 0x1p64);
        c += bf16_value(op[i] >> 16) * (double(x[size_t(32 * b + 8 * t + 2 * i + 1)]) * 0x1p64);
      }
    }
    const int s = scales[mxlayout::scale_index(row, b, nch)];
    acc += std::ldexp(1.0, s - 65) * c;  // block_scale<kSub>: 2^(s - 127) * 2^62
  }
  return acc;
}

// The CPU reference's row: e2m1_to_f32(code) * 2^(s - 127) * x, values in natural order.
double reference_row(const uint8_t* blocks, const uint8_t* scales, int64_t row, int64_t nch, const std::vector<float>& x) {
  double acc = 0;
  for (int64_t b = 0; b < nch; ++b) {
    double c = 0;
    for (int v = 0; v < 32; ++v) {
      const uint8_t byte = blocks[(row * nch + b) * 16 + v / 2];
      c += double(e2m1_to_f32(uint8_t(v % 2 ? byte >> 4 : byte & 15))) * double(x[size_t(32 * b + v)]);
    }
    acc += std::ldexp(1.0, int(scales[row * nch + b]) - 127) * c;
  }
  return acc;
}
}  // namespace

int main() {
  std::mt19937 rng(12);
  // 1. bijection and inverse
  {
    uint32_t seen = 0;
    bool single = true;
    for (int bit = 0; bit < 32; ++bit) {
      const uint32_t r = mxlayout::to_decode_word(1u << bit);
      single &= r != 0 && (r & (r - 1)) == 0;  // one bit in, one bit out
      seen |= r;
      check(mxlayout::from_decode_word(r) == 1u << bit, "from_decode_word(to_decode_word(bit))", std::to_string(bit));
    }
    check(single && seen == 0xffffffffu, "to_decode_word permutes the 32 bits");
    bool inv = true;
    for (int i = 0; i < 200000; ++i) {
      const uint32_t w = rng();
      inv &= mxlayout::from_decode_word(mxlayout::to_decode_word(w)) == w &&
             mxlayout::to_decode_word(mxlayout::from_decode_word(w)) == w;
    }
    check(inv, "to/from_decode_word invert each other on 200k random words");
  }
  // 2. the decode: the placed codes in natural pairs, the kSub placement; operands = CPU values x 2^-126
  {
    bool same = true, ksub = true;
    for (int i = 0; i < 200000; ++i) {
      const uint32_t w = i < 32 ? 1u << i : rng();
      uint32_t a[4], b[4];
      mxlayout::decode_word(mxlayout::to_decode_word(w), a);
      mxlayout::decode_checkpoint_word(w, b);
      for (int q = 0; q < 4; ++q) {
        const uint32_t code_lo = (w >> (8 * q)) & 15u, code_hi = (w >> (8 * q + 4)) & 15u;
        same &= a[q] == (mxlayout::placed_code(code_lo) | mxlayout::placed_code(code_hi) << 16);
        // kSub operand q holds values q, q + 4: the same placement of the same codes
        ksub &= (b[q] & 0xffffu) == mxlayout::placed_code((w >> (4 * q)) & 15u) &&
                (b[q] >> 16) == mxlayout::placed_code((w >> (4 * q + 16)) & 15u);
      }
    }
    check(same, "decode_word(to_decode_word(w)) == the placed codes of w in pairs (2i, 2i + 1)");
    check(ksub, "decode_checkpoint_word(w) == the placed codes of w in pairs (i, i + 4)");
    bool values = true;
    for (uint32_t code = 0; code < 16; ++code) {
      const uint32_t w = code | (code ^ 9u) << 4;  // code at value 0, another at value 1
      uint32_t p[4];
      mxlayout::decode_word(mxlayout::to_decode_word(w), p);
      values &= bf16_value(p[0] & 0xffffu) * 0x1p126 == double(e2m1_to_f32(uint8_t(code)));
      values &= bf16_value(p[0] >> 16) * 0x1p126 == double(e2m1_to_f32(uint8_t(code ^ 9u)));
    }
    check(values, "decode operands are the CPU's E2M1 values times 2^-126 (all 16 codes)");
    // the streaming kernel's one multiply: placed code x 2^(s-1) is the CPU's dequantized weight, exactly
    // and as a bf16 (at most 2 significant bits, exponent within bf16's normal and subnormal range)
    bool scaled = true;
    for (uint32_t sc = 0; sc <= mxlayout::kPlacedScaleMax; ++sc) {
      const double mult = bf16_value(mxlayout::placed_scale_bits(sc));
      scaled &= mult == std::ldexp(1.0, int(sc) - 1);
      for (uint32_t code = 0; code < 16; ++code) {
        const double got = bf16_value(mxlayout::placed_code(code)) * mult;
        const double want = double(e2m1_to_f32(uint8_t(code))) * std::ldexp(1.0, int(sc) - 127);
        int ex = 0;
        const double frac = std::frexp(std::fabs(want), &ex);  // want = frac 2^ex, frac in [0.5, 1)
        const bool bf16_holds = want == 0 || (ex - 1 >= -133 && ex - 1 <= 127 && std::ldexp(frac, 8) == std::floor(std::ldexp(frac, 8)));
        scaled &= got == want && bf16_holds;
      }
    }
    check(scaled, "placed code x placed_scale_bits(s) == E2M1 x 2^(s-127), exact in bf16, every code, s = 0..128");
    bool paired = true;  // the kernel's one-instruction form: the same bits in both halves
    for (uint32_t sc = 0; sc <= mxlayout::kPlacedScaleMax; ++sc)
      paired &= mxlayout::placed_scale_bf16x2(sc) == (mxlayout::placed_scale_bits(sc) | mxlayout::placed_scale_bits(sc) << 16);
    check(paired, "placed_scale_bf16x2(s) == placed_scale_bits(s) in both halves, s = 0..128");
    bool plain = (mxlayout::e8m0_bf16x2(255) & 0xffffu) == 0x7F80u;  // s = 255: inf
    for (uint32_t sc = 0; sc <= 254; ++sc) {  // 2^(s-127) exactly, both halves the same (s = 0: a subnormal)
      const uint32_t w = mxlayout::e8m0_bf16x2(sc);
      plain &= (w >> 16) == (w & 0xffffu) && bf16_value(w & 0xffffu) == std::ldexp(1.0, int(sc) - 127);
    }
    check(plain, "e8m0_bf16x2(s) == 2^(s-127) in both halves, s = 0..254; 255: inf");
  }
  // 3 and 4. matrices: round trip, and the kernel-order row against the reference
  const int64_t shapes[][3] = {{1, 16, 1}, {3, 32, 5}, {2, 48, 17}, {1, 160, 90}};  // mats, rows, nch
  for (const auto& sh : shapes) {
    const int64_t mats = sh[0], rows = sh[1], nch = sh[2];
    const std::string name = std::to_string(mats) + "x[" + std::to_string(rows) + ", " + std::to_string(nch * 32) + "]";
    std::vector<uint8_t> blocks(size_t(mats * rows * nch * 16)), scales(size_t(mats * rows * nch));
    for (auto& b : blocks) b = uint8_t(rng());
    for (auto& s : scales) s = uint8_t(100 + rng() % 50);  // 2^-27 .. 2^22
    std::vector<uint8_t> rb(blocks.size()), rs(scales.size()), bb(blocks.size()), bs(scales.size());
    mxlayout::to_decode_layout(blocks.data(), scales.data(), mats, rows, nch, rb.data(), rs.data());
    mxlayout::from_decode_layout(rb.data(), rs.data(), mats, rows, nch, bb.data(), bs.data());
    check(bb == blocks && bs == scales, "matrix re-layout round trip", name);
    check(rb != blocks, "the re-laid blocks differ from the checkpoint's", name);
    std::vector<float> dyadic(size_t(nch * 32)), noise(size_t(nch * 32));
    for (auto& v : dyadic) v = float(int(rng() % 513) - 256) / 256.f;
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (auto& v : noise) v = u(rng);
    bool exact = true, close = true;
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t row = 0; row < rows; ++row) {
        const uint8_t* mb = blocks.data() + m * rows * nch * 16;
        const uint8_t* ms = scales.data() + m * rows * nch;
        const uint8_t* lb = rb.data() + m * rows * nch * 16;
        const uint8_t* ls = rs.data() + m * rows * nch;
        exact &= decode_layout_row(lb, ls, row, nch, dyadic) == reference_row(mb, ms, row, nch, dyadic);
        const double want = reference_row(mb, ms, row, nch, noise), got = decode_layout_row(lb, ls, row, nch, noise);
        close &= std::fabs(got - want) <= 1e-12 * std::fmax(1.0, std::fabs(want));
      }
    check(exact, "kernel-order row == CPU reference row, bit for bit (dyadic x)", name);
    check(close, "kernel-order row == CPU reference row within 1e-12 (random x)", name);
  }
  return checks_passed("mxfp4 layout");
}
