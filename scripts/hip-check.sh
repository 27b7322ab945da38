#!/usr/bin/env bash
# The AMD GPU check, for the first host with an AMD GPU: the counterpart of scripts/gpu-check.sh.
# Nothing in it has run on an AMD GPU yet. Run it from the repository root:
#   1. the device (rocminfo / rocm-smi) and its arch;
#   2. the build, unless $BUILD_DIR already holds gptoss_gpu_check_hip beside gpt_oss_hip.so: cmake +
#      ninja with GPTOSS_HIP=ON, GPTOSS_CUDA=OFF, the GPU's arch. A build made elsewhere (CI, a dev box with
#      Debian's clang-22) can be carried over instead: the two files need only glibc, libstdc++ and the
#      host's libamdhip64, which the loader dlopens (README: HIP at run time);
#   3. gptoss_gpu_check_hip --build-info, then the full check: every op on hip:0 against the CPU
#      backend on fresh random data (the MoE decode runs both AMD kernels, simt and mfma);
#   4. what ROCm has in place of compute-sanitizer:
#      a. the quick check with kernels and copies serialized (AMD_SERIALIZE_KERNEL=3,
#         AMD_SERIALIZE_COPY=3): a memory fault stops the run at the kernel that made it;
#      b. ROCm's GPU AddressSanitizer: the plugin built again in $ASAN_BUILD_DIR with -fsanitize=address
#         -shared-libsan for <arch>:xnack+, and the quick check run with HSA_XNACK=1 and clang's ASan
#         runtime preloaded (the check itself is not instrumented; the plugin's host and device code
#         are). Skipped, saying why, when the compiler has no ASan runtime (SKIP_ASAN=1 skips it);
#   5. the code-object listing of the arch (scripts/hip-kernels.sh: instructions, MFMA, LDS, scratch).
# Logs go to $OUT (default ./hip-logs); a summary is printed last. Exit status: 2 when there is no
# usable AMD GPU (the check's own message says why), 1 when a step failed, else 0.
#   env: BUILD_DIR (build-hip), ASAN_BUILD_DIR (build-hip-asan), HIP_ARCH (default: the GPU's),
#        SKIP_ASAN=1, CHECK_TIMEOUT (600 s), QUICK_TIMEOUT (300 s)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/hip-logs}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-hip}"
ASAN_BUILD="${ASAN_BUILD_DIR:-build-hip-asan}"
declare -A STATUS
failed=0
step() { echo; echo "=== $* ==="; }
# The check sits beside the plugin (cmake-js builds: BUILD/Release; plain cmake: BUILD).
find_check() {
  for d in "$1/Release" "$1"; do
    [[ -x "$d/gptoss_gpu_check_hip" && -f "$d/gpt_oss_hip.so" ]] && { echo "$d/gptoss_gpu_check_hip"; return 0; }
  done
  return 1
}

step "device"
{
  git log -1 --format='commit %H %s' 2>/dev/null
  command -v rocminfo > /dev/null && rocminfo 2>&1 | grep -E '^\s+(Name|Marketing Name|Compute Unit):' | head -12
  command -v rocm-smi > /dev/null && rocm-smi --showproductname 2>&1 | grep -v '^=*$' | head -8
} | tee "$OUT/device.txt"
arch="${HIP_ARCH:-}"
if [[ -z "$arch" ]]; then
  for tool in amdgpu-arch /usr/lib/llvm-22/bin/amdgpu-arch /opt/rocm/llvm/bin/amdgpu-arch rocm_agent_enumerator; do
    command -v "$tool" > /dev/null || continue
    arch=$("$tool" 2>/dev/null | grep -E '^gfx[0-9a-f]+$' | grep -v '^gfx000$' | head -1)
    [[ -n "$arch" ]] && break
  done
fi
[[ -z "$arch" ]] && command -v rocminfo > /dev/null && arch=$(rocminfo 2>/dev/null | grep -oE 'gfx9[0-9a-f]+' | head -1)
echo "arch: ${arch:-unknown (HIP_ARCH=gfx942 sets it)}" | tee -a "$OUT/device.txt"

check=$(find_check "$BUILD")
if [[ -n "$check" ]]; then
  STATUS[build]="kept ($check)"
else
  step "build ($BUILD, ${arch:-the default archs})"
  t0=$(date +%s)
  gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
  if cmake "${gen[@]}" -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA=OFF -DGPTOSS_HIP=ON \
       ${arch:+-DGPTOSS_HIP_ARCHS="$arch"} > "$OUT/build.log" 2>&1 &&
     cmake --build "$BUILD" --target gptoss_gpu_check_hip -j "$(nproc)" >> "$OUT/build.log" 2>&1; then
    STATUS[build]="ok ($(( $(date +%s) - t0 )) s)"
    check=$(find_check "$BUILD")
  else
    STATUS[build]="FAILED (build.log)"; failed=1; tail -30 "$OUT/build.log"
  fi
fi

rc=1
if [[ -n "$check" ]]; then
  step "build info"
  "$check" --build-info 2>&1 | tee "$OUT/build-info.txt"
  step "native check (full shapes)"
  timeout "${CHECK_TIMEOUT:-600}" "$check" 2>&1 | tee "$OUT/check.log"
  rc=${PIPESTATUS[0]}
  STATUS[check]="$(grep -E '^gpu_check: ' "$OUT/check.log" | tail -1) (rc $rc)"
  if [[ $rc == 2 ]]; then
    echo "hip-check.sh: no usable AMD GPU here (the line above says why); nothing else to run"
  else
    [[ $rc == 0 ]] || failed=1
    step "quick check, kernels and copies serialized (a memory fault stops at its kernel)"
    AMD_SERIALIZE_KERNEL=3 AMD_SERIALIZE_COPY=3 AMD_LOG_LEVEL=1 timeout "${QUICK_TIMEOUT:-300}" "$check" --quick \
      > "$OUT/serialized.log" 2>&1
    src=$?
    tail -3 "$OUT/serialized.log"
    STATUS[serialized]="$(grep -E '^gpu_check: ' "$OUT/serialized.log" | tail -1) (rc $src)"
    [[ $src == 0 ]] || failed=1

    if [[ -n "${SKIP_ASAN:-}" ]]; then
      STATUS[asan]="skipped (SKIP_ASAN=1)"
    else
      step "GPU AddressSanitizer (quick check)"
      clang=$(sed -n 's/^GPTOSS_HIP_CLANG:FILEPATH=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
      [[ -n "$clang" ]] || clang=$(command -v clang++-22 || command -v clang++-19 || true)
      asan_rt=$([[ -n "$clang" ]] && "$clang" -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
      if [[ -z "$arch" ]]; then
        STATUS[asan]="skipped (the GPU's arch is unknown: set HIP_ARCH)"
      elif [[ -z "$asan_rt" || ! -f "$asan_rt" ]]; then
        STATUS[asan]="skipped (${clang:-no clang} has no libclang_rt.asan-x86_64.so: apt-get install libclang-rt-22-dev)"
      else
        gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
        if cmake "${gen[@]}" -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA=OFF -DGPTOSS_HIP=ON \
             -DGPTOSS_HIP_CLANG="$clang" -DGPTOSS_HIP_ARCHS="$arch:xnack+" \
             "-DGPTOSS_HIP_EXTRA_FLAGS=-fsanitize=address;-shared-libsan;-g" > "$OUT/asan-build.log" 2>&1 &&
           cmake --build "$ASAN_BUILD" --target gptoss_gpu_check_hip -j "$(nproc)" >> "$OUT/asan-build.log" 2>&1; then
          acheck=$(find_check "$ASAN_BUILD")
          # ROCm's ASan-instrumented runtime libraries, where installed, go first on the library path.
          asan_libs=""
          for d in /opt/rocm/lib/asan /opt/rocm/lib/llvm/lib/asan; do [[ -d $d ]] && asan_libs="$asan_libs:$d"; done
          HSA_XNACK=1 LD_PRELOAD="$asan_rt" LD_LIBRARY_PATH="${asan_libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            ASAN_OPTIONS=detect_leaks=0 timeout "${QUICK_TIMEOUT:-300}" "$acheck" --quick > "$OUT/asan.log" 2>&1
          arc=$?
          tail -5 "$OUT/asan.log"
          errors=$(grep -c 'ERROR: AddressSanitizer' "$OUT/asan.log")
          STATUS[asan]="$(grep -E '^gpu_check: ' "$OUT/asan.log" | tail -1), $errors ASan reports (rc $arc)"
          [[ $arc == 0 && $errors == 0 ]] || failed=1
        else
          STATUS[asan]="build FAILED (asan-build.log)"; failed=1; tail -20 "$OUT/asan-build.log"
        fi
      fi
    fi
  fi
  if [[ -n "$arch" && -d "$BUILD/hip" ]]; then
    step "code objects ($arch)"
    if bash scripts/hip-kernels.sh "$BUILD" "$arch" > "$OUT/kernels-$arch.tsv" 2> "$OUT/kernels.err"; then
      STATUS[kernels]="$(wc -l < "$OUT/kernels-$arch.tsv") kernels (kernels-$arch.tsv)"
    else
      STATUS[kernels]="listing failed: $(head -1 "$OUT/kernels.err")"
    fi
  fi
fi

echo
echo "=== summary (arch ${arch:-unknown}) ==="
for k in build check serialized asan kernels; do
  [[ -n "${STATUS[$k]:-}" ]] && printf '%-11s %s\n' "$k" "${STATUS[$k]}"
done
if [[ -f "$OUT/check.log" ]] && grep -q '^PASS\|^FAIL' "$OUT/check.log"; then
  echo "-- check (worst rel L2 per op) --"
  awk '/^(PASS|FAIL)/ { op=$2; for (i=1;i<=NF;i++) if ($i=="rel_l2") v=$(i+1); if (!(op in w) || v+0 > w[op]+0) w[op]=v; if ($1=="FAIL") f[op]=1 }
       END { for (o in w) printf "  %-18s %s%s\n", o, w[o], (o in f) ? "  FAIL" : "" }' "$OUT/check.log" | sort
fi
[[ -z "$check" ]] && exit 1
[[ $rc == 2 ]] && exit 2
exit $failed
