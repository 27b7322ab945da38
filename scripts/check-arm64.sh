#!/usr/bin/env bash
# Cross-compiles the native core, CPU backend, model and, when node_modules holds node-api-headers
# and node-addon-api, the N-API layer for arm64 with -Wall -Wextra, as CMake would there (not CUDA):
# the x86 *_avx2.cpp / *_avx512.cpp files are left out (cpu.cmake excludes them off x86) and
# *_neon.cpp are in; then links the addon (gpt_oss_node.node, a shared object whose N-API symbols
# the host Node resolves at load). Exits non-zero when a file fails to compile or the link fails.
# With qemu-aarch64-static present (apt-get install qemu-user-static) it also links a static parity
# check of the NEON kernels against the portable ones and the double references and runs it under
# qemu; CHECK_ARM64_RUN=0 skips that step, CHECK_ARM64_RUN=1 makes a missing qemu an error.
#
# Without aarch64-linux-gnu-g++ it installs Debian's g++-aarch64-linux-gnu when running as root
# with CI=true, fails in CI otherwise, and outside CI skips (exit 0) with the command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${CXX_ARM64:-aarch64-linux-gnu-g++}
in_ci() { [ "${CI:-}" = "true" ]; }

if ! command -v "$CXX" >/dev/null 2>&1; then
  if in_ci && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "check-arm64: installing g++-aarch64-linux-gnu"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu >/dev/null
  elif in_ci; then
    echo "check-arm64: $CXX not found (CI=true, not root or no apt-get): install g++-aarch64-linux-gnu" >&2
    exit 1
  else
    echo "check-arm64: SKIPPED: $CXX not found; install it with" \
      "'sudo apt-get install --no-install-recommends g++-aarch64-linux-gnu' (Debian/Ubuntu)"
    exit 0
  fi
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/check-arm64.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
FLAGS=(-std=c++17 -O2 -fPIC -Wall -Wextra -Wno-unused-parameter -Inative)  # CMakeLists.txt's warning set
NAPI_INC=(node_modules/node-api-headers/include node_modules/node-addon-api)
napi=0
[ -d "${NAPI_INC[0]}" ] && [ -d "${NAPI_INC[1]}" ] && napi=1
start=$(date +%s.%N)

files=()
for f in native/core/*.cpp native/cpu/*.cpp native/model/*.cpp native/hip/*.cpp; do  # hip/: the plugin loader (plain C++)
  case "$f" in *_avx2.cpp | *_avx512.cpp | *_avxvnni.cpp | *_avx512vnni.cpp) continue ;; esac
  files+=("$f")
done
[ "$napi" = 1 ] && files+=(native/napi/*.cpp)
# per-file flags as CMakeLists.txt sets them
flags_for() {
  case "$1" in
    native/model/synthetic.cpp) echo -ffp-contract=off ;;  # bytes identical to the JS writer's
    native/napi/*) echo -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_CPP_EXCEPTIONS -DNODE_API_NO_EXTERNAL_BUFFERS_ALLOWED -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS \
      "-I${NAPI_INC[0]}" "-I${NAPI_INC[1]}" ;;
  esac
}

# One compiler process per file, as many at once as there are CPUs; each leaves a .log and a .rc.
jobs=$(nproc 2>/dev/null || echo 4)
for f in "${files[@]}"; do
  o="$OUT/$(echo "$f" | tr / _).o"
  # shellcheck disable=SC2046  # flags_for prints separate words
  ( rc=0; "$CXX" "${FLAGS[@]}" $(flags_for "$f") -c "$f" -o "$o" >"$o.log" 2>&1 || rc=$?; echo $rc >"$o.rc" ) &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait

failed=() warned=0
for f in "${files[@]}"; do
  o="$OUT/$(echo "$f" | tr / _).o"
  [ -s "$o.log" ] && cat "$o.log" >&2
  if [ "$(cat "$o.rc")" != 0 ]; then failed+=("$f"); elif [ -s "$o.log" ]; then warned=$((warned + 1)); fi
done
version=$("$CXX" -dumpfullversion 2>/dev/null || echo '?')
elapsed=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
summary="check-arm64: $(( ${#files[@]} - ${#failed[@]} ))/${#files[@]} files compiled for aarch64 (g++ $version), ${#failed[@]} failed, $warned with warnings, ${elapsed}s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "$summary: ${failed[*]}" >&2
  exit 1
fi
if [ "$napi" = 1 ]; then
  objs=()
  for f in "${files[@]}"; do objs+=("$OUT/$(echo "$f" | tr / _).o"); done
  if ! "$CXX" -shared -pthread -o "$OUT/gpt_oss_node.node" "${objs[@]}" >"$OUT/link.log" 2>&1; then
    cat "$OUT/link.log" >&2
    echo "$summary; linking the arm64 addon failed" >&2
    exit 1
  fi
  undefined=$(aarch64-linux-gnu-nm -D --undefined-only "$OUT/gpt_oss_node.node" 2>/dev/null | grep -c ' napi_' || true)
  summary="$summary; addon linked ($(du -k "$OUT/gpt_oss_node.node" | cut -f1) KiB, $undefined N-API imports)"
else
  summary="$summary; N-API layer skipped (no node_modules/node-api-headers: run npm ci first)"
fi

# ---- optional: run the NEON kernels under qemu-user against the portable ones ----
run=${CHECK_ARM64_RUN:-auto}
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ "$run" = 0 ]; then
  echo "$summary; parity run skipped (CHECK_ARM64_RUN=0)"
  exit 0
elif [ -z "$qemu" ]; then
  if [ "$run" = 1 ]; then echo "$summary; qemu-aarch64-static not found (CHECK_ARM64_RUN=1)" >&2; exit 1; fi
  echo "$summary; parity run skipped (no qemu-aarch64-static: apt-get install qemu-user-static)"
  exit 0
fi

cat >"$OUT/neon_parity.cpp" <<'CPP'
// NEON kernels vs the portable ones and the double references, on random data and on one-hot
// inputs (those read back single weights: the E2M1/E8M0 and bf16 decodes must be exact).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/ops.h"

using namespace gptoss;
using namespace gptoss::cpu;

static int failures = 0;
static void expect(bool ok, const char* what, double got, double want) {
  if (!ok && failures++ < 10) std::printf("FAIL %s: got %.9g want %.9g\n", what, got, want);
}

int main() {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  expect(best_isa() == Isa::Neon, "best_isa is neon", int(best_isa()), int(Isa::Neon));
  expect(clamp_isa(Isa::Avx512) == Isa::Neon, "avx512 clamps to neon", int(clamp_isa(Isa::Avx512)), int(Isa::Neon));
  expect(clamp_isa(Isa::AvxVnni) == Isa::Neon, "avxvnni clamps to neon", int(clamp_isa(Isa::AvxVnni)), int(Isa::Neon));
  expect(kernels_for(Isa::Neon).mxfp4_rows_q8 == neon::mxfp4_rows_q8, "neon set has neon::mxfp4_rows_q8", 0, 0);
  expect(kernels_for(Isa::Neon).mxfp4_rows == neon::mxfp4_rows, "neon set has neon::mxfp4_rows", 0, 0);
  expect(kernels_for(Isa::Scalar).bf16_rows == portable::bf16_rows, "scalar set is portable", 0, 0);
  const float* e8m0 = e8m0_table();

  for (int64_t cols : {32, 64, 96, 2880}) {
    const int64_t rows = 5, nblk = cols / 32, maxn = 9;
    std::vector<uint8_t> blocks(rows * nblk * 16), scales(rows * nblk);
    for (auto& b : blocks) b = uint8_t(rng());
    for (auto& s : scales) s = uint8_t(100 + rng() % 50);
    std::vector<uint16_t> w16(rows * cols);
    for (auto& h : w16) h = f32_to_bf16(uni(rng));
    std::vector<float> x(maxn * cols), xp(maxn * cols);
    for (auto& v : x) v = uni(rng);
    permute_for_mxfp4(x.data(), maxn, cols, kEvenOddPos, xp.data());
    std::vector<int8_t> xq(maxn * cols);
    std::vector<float> xd(maxn * nblk);
    quantize_q8(xp.data(), maxn, cols, xq.data(), xd.data());
    // The same weights in ggml's 17-byte blocks (GGUF): scale, then byte j = value j | value j + 16 << 4.
    std::vector<uint8_t> ggml(rows * nblk * 17);
    for (int64_t g = 0; g < rows * nblk; ++g) {
      ggml[g * 17] = scales[g];
      auto code = [&](int v) { uint8_t b = blocks[g * 16 + v / 2]; return uint8_t(v % 2 ? b >> 4 : b & 15); };
      for (int j = 0; j < 16; ++j) ggml[g * 17 + 1 + j] = uint8_t(code(j) | (code(j + 16) << 4));
    }
    auto w4 = [&](int64_t r, int64_t c) {
      uint8_t byte = blocks[(r * nblk + c / 32) * 16 + (c % 32) / 2];
      return double(e2m1_to_f32(c % 2 ? byte >> 4 : byte & 15)) * std::ldexp(1.0, scales[r * nblk + c / 32] - 127);
    };
    for (int64_t n = 1; n <= maxn; ++n) {
      std::vector<float> a(n * rows), b(n * rows), c(n * rows), d(n * rows);
      neon::mxfp4_rows(blocks.data(), scales.data(), cols, xp.data(), n, a.data(), rows, 0, rows);
      portable::mxfp4_rows(blocks.data(), scales.data(), cols, xp.data(), n, b.data(), rows, 0, rows);
      neon::bf16_rows(w16.data(), cols, x.data(), n, c.data(), rows, 0, rows);
      portable::bf16_rows(w16.data(), cols, x.data(), n, d.data(), rows, 0, rows);
      std::vector<float> gg(n * rows);
      neon::mxfp4_ggml_rows(ggml.data(), cols, x.data(), n, gg.data(), rows, 0, rows);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double ref4 = 0, mag4 = 0, ref16 = 0, mag16 = 0;
          for (int64_t k = 0; k < cols; ++k) {
            ref4 += w4(r, k) * x[t * cols + k];
            mag4 += std::fabs(w4(r, k) * x[t * cols + k]);
            ref16 += double(bf16_to_f32(w16[r * cols + k])) * x[t * cols + k];
            mag16 += std::fabs(double(bf16_to_f32(w16[r * cols + k])) * x[t * cols + k]);
          }
          const size_t i = t * rows + r;  // f32 sums of `cols` terms: a few ulp of sum |w x| per term
          const double tol4 = 4e-7 * std::sqrt(double(cols)) * mag4, tol16 = 4e-7 * std::sqrt(double(cols)) * mag16;
          expect(std::fabs(a[i] - ref4) <= tol4, "mxfp4 neon vs reference", a[i], ref4);
          expect(std::fabs(a[i] - b[i]) <= tol4, "mxfp4 neon vs portable", a[i], b[i]);
          expect(std::fabs(gg[i] - ref4) <= tol4, "mxfp4 ggml blocks neon vs reference", gg[i], ref4);
          expect(std::fabs(c[i] - ref16) <= tol16, "bf16 neon vs reference", c[i], ref16);
          expect(std::fabs(c[i] - d[i]) <= tol16, "bf16 neon vs portable", c[i], d[i]);
        }
      // q8: the same int32 block dot products as the portable kernel, summed over blocks in f32.
      std::vector<float> q(n * rows), qp(n * rows);
      neon::mxfp4_rows_q8(blocks.data(), scales.data(), cols, xq.data(), xd.data(), n, q.data(), rows, 0, rows);
      portable::mxfp4_rows_q8(blocks.data(), scales.data(), cols, xq.data(), xd.data(), n, qp.data(), rows, 0, rows);
      for (int64_t i = 0; i < n * rows; ++i) {
        double mag = 0;
        for (int64_t k = 0; k < cols; ++k) mag += std::fabs(w4(i % rows, k) * x[(i / rows) * cols + k]);
        expect(std::fabs(q[i] - qp[i]) <= 4e-7 * std::sqrt(double(cols)) * mag, "mxfp4 q8 neon vs portable", q[i], qp[i]);
      }
    }
    // One-hot x: out[t, r] is exactly weight (r, t) (every other product is an exact zero).
    const int64_t n = cols < 64 ? cols : 64;
    std::vector<float> e(n * cols, 0.f), ep(n * cols), a(n * rows), c(n * rows);
    for (int64_t t = 0; t < n; ++t) e[t * cols + t] = 1.f;
    permute_for_mxfp4(e.data(), n, cols, kEvenOddPos, ep.data());
    neon::mxfp4_rows(blocks.data(), scales.data(), cols, ep.data(), n, a.data(), rows, 0, rows);
    neon::bf16_rows(w16.data(), cols, e.data(), n, c.data(), rows, 0, rows);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        expect(a[t * rows + r] == float(w4(r, t)), "mxfp4 neon decode exact", a[t * rows + r], w4(r, t));
        expect(c[t * rows + r] == bf16_to_f32(w16[r * cols + t]), "bf16 neon widen exact", c[t * rows + r],
               bf16_to_f32(w16[r * cols + t]));
      }
  }
  // Extreme scales, one-hot again: s = 0 (2^-127 is subnormal, halved to 2^-128) and s = 252, the
  // largest where 6 * 2^(s-127) is finite (above it 0 * inf makes every dot product NaN).
  {
    std::vector<uint8_t> blocks(16), scales(1);
    for (int k = 0; k < 16; ++k) blocks[k] = uint8_t(k * 17);  // every code in both nibbles
    for (int s : {0, 1, 127, 252}) {
      scales[0] = uint8_t(s);
      std::vector<float> e(32 * 32, 0.f), ep(32 * 32), a(32);
      for (int t = 0; t < 32; ++t) e[t * 32 + t] = 1.f;
      permute_for_mxfp4(e.data(), 32, 32, kEvenOddPos, ep.data());
      neon::mxfp4_rows(blocks.data(), scales.data(), 32, ep.data(), 32, a.data(), 1, 0, 1);
      for (int t = 0; t < 32; ++t) {
        const float want = e2m1_to_f32(t % 2 ? blocks[t / 2] >> 4 : blocks[t / 2] & 15) * e8m0[s];
        expect(a[t] == want, "mxfp4 neon decode exact at extreme scale", a[t], want);
      }
    }
  }
  // Through the op (thread pool, dispatch) under neon and scalar: linear vs ref::linear.
  for (Isa isa : {Isa::Neon, Isa::Scalar}) {
    set_cpu_isa(isa);
    const int64_t n = 7, in = 128, o = 33;
    Tensor x = host_empty(DType::F32, {n, in}), w = host_empty(DType::MXFP4, {o, in});
    Tensor y = host_empty(DType::F32, {n, o}), yr = host_empty(DType::F32, {n, o});
    for (int64_t i = 0; i < x.numel(); ++i) x.ptr<float>()[i] = uni(rng);
    for (size_t i = 0; i < w.nbytes(); ++i) static_cast<uint8_t*>(w.data)[i] = uint8_t(rng());
    for (size_t i = 0; i < w.scale_bytes(); ++i) static_cast<uint8_t*>(w.scales)[i] = uint8_t(120 + rng() % 10);
    linear(x, w, nullptr, y);
    ref::linear(x, w, nullptr, yr);
    double num = 0, den = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      num += std::pow(y.ptr<float>()[i] - yr.ptr<float>()[i], 2);
      den += std::pow(yr.ptr<float>()[i], 2);
    }
    expect(std::sqrt(num / den) < 1e-6, isa == Isa::Neon ? "linear (neon) rel L2" : "linear (scalar) rel L2",
           std::sqrt(num / den), 1e-6);
  }
  std::printf("%s\n", failures ? "neon parity: FAILED" : "neon parity: ok");
  return failures ? 1 : 0;
}
CPP
# The kernels and what they need, not the N-API layer (its napi_* imports resolve only inside Node).
if ! "$CXX" "${FLAGS[@]}" -static -pthread "$OUT/neon_parity.cpp" "$OUT"/native_core_*.o "$OUT"/native_cpu_*.o \
  "$OUT"/native_model_*.o "$OUT"/native_hip_*.o -ldl -o "$OUT/neon_parity"; then
  echo "$summary; parity check failed to link" >&2
  exit 1
fi
if ! result=$("$qemu" "$OUT/neon_parity" 2>&1); then
  echo "$result" >&2
  echo "$summary; parity check FAILED under qemu" >&2
  exit 1
fi
total=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
echo "$summary; $result under $(basename "$qemu") (${total}s in all)"
