#!/usr/bin/env bash
# Lists the kernels of the HIP plugin's code objects for one AMD arch, with the instruction counts
# that show what each compiled to (the evidence for a backend no AMD GPU here can run).
#
#   bash scripts/hip-kernels.sh [BUILD_DIR] [ARCH]     (defaults: build, gfx942)
#
# For every HIP object native/hip/hip.cmake compiled (BUILD_DIR/hip/*.o): the .hip_fatbin section is
# cut out (llvm-objcopy), the ARCH code object unbundled from it (clang-offload-bundler), its kernels
# read from the amdhsa metadata notes (llvm-readelf --notes) and disassembled (llvm-objdump). One
# tab-separated line a kernel:
#   object  kernel(demangled)  instructions  mfma  trap  wave  max_threads  lds  scratch
# instructions: everything but s_nop / s_endpgm / s_code_end padding; mfma: v_mfma_* instructions;
# trap: 1 when the kernel contains s_trap (a path refused on this arch traps, it never runs empty);
# from the kernel descriptor metadata: wave (.wavefront_size), max_threads (.max_flat_workgroup_size:
# __launch_bounds__, else 1024), lds (.group_segment_fixed_size: static LDS bytes) and scratch
# (.private_segment_fixed_size: bytes of private memory a lane, register spills included).
# Objects without device code (host-only sources) are skipped. Exit status 1 when a tool or the
# objects are missing or an object with device code has no ARCH code object.
set -euo pipefail
build=${1:-build}
arch=${2:-gfx942}
# The LLVM tools of the clang that built the plugin (BUILD_DIR/CMakeCache.txt: GPTOSS_HIP_CLANG), which
# know its targets (llvm-objdump-19 cannot disassemble gfx950); else the newest LLVM installed.
clang=$(sed -n 's/^GPTOSS_HIP_CLANG:FILEPATH=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$clang" ] && [ -x "$clang" ]; then
  tools=$(dirname "$(readlink -f "$clang")")
else
  tools=""
  for v in 22 21 20 19; do [ -x "/usr/lib/llvm-$v/bin/llvm-objdump" ] && { tools=/usr/lib/llvm-$v/bin; break; }; done
  [ -n "$tools" ] || { echo "hip-kernels.sh: no LLVM tools found (apt-get install llvm-22 clang-tools-22)" >&2; exit 1; }
fi
for t in llvm-objcopy clang-offload-bundler llvm-readelf llvm-objdump llvm-cxxfilt; do
  [ -x "$tools/$t" ] || { echo "hip-kernels.sh: $tools/$t not found (apt-get install the llvm and clang-tools packages of $tools)" >&2; exit 1; }
done
shopt -s nullglob
objs=("$build"/hip/*.o)
[ ${#objs[@]} -gt 0 ] || { echo "hip-kernels.sh: no HIP objects in $build/hip (build with GPTOSS_HIP=ON)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for obj in "${objs[@]}"; do
  name=$(basename "$obj" .o)
  # Host-only translation units (the backend's dispatch code) carry no device code.
  sections=$("$tools/llvm-readelf" -S "$obj")
  [[ "$sections" == *" .hip_fatbin "* ]] || continue
  "$tools/llvm-objcopy" --dump-section ".hip_fatbin=$tmp/$name.fb" "$obj" "$tmp/$name.host.o"
  bundles=$("$tools/clang-offload-bundler" --list --type=o --input="$tmp/$name.fb")
  if ! grep -qx "hipv4-amdgcn-amd-amdhsa--$arch" <<< "$bundles"; then
    echo "hip-kernels.sh: $obj has no $arch code object" >&2
    exit 1
  fi
  "$tools/clang-offload-bundler" --unbundle --type=o --input="$tmp/$name.fb" \
    --targets="hipv4-amdgcn-amd-amdhsa--$arch" --output="$tmp/$name.co"
  # Kernel symbols from the metadata (amdhsa.kernels[].name); one pass over the disassembly counts
  # every function's instructions; the kernels' rows are printed in metadata order.
  # A kernel's entry starts at "  - "; its own keys are indented by 4 (its arguments' deeper).
  "$tools/llvm-readelf" --notes "$tmp/$name.co" |
    awk '
      function flush() { if (sym != "") printf "%s\t%s\t%s\t%s\t%s\n", sym, wave, maxt, lds, scratch }
      /^  - / { flush(); sym = ""; wave = maxt = lds = scratch = "?" }
      { line = $0; sub(/^  - /, "    ", line) }
      line ~ /^    \.[a-z_]+:/ {
        key = line; sub(/^    \./, "", key); sub(/:.*/, "", key); val = line; sub(/^[^:]*: */, "", val)
        if (key == "name") sym = val
        else if (key == "wavefront_size") wave = val
        else if (key == "max_flat_workgroup_size") maxt = val
        else if (key == "group_segment_fixed_size") lds = val
        else if (key == "private_segment_fixed_size") scratch = val
      }
      END { flush() }' | sort -u > "$tmp/$name.meta"
  cut -f1 "$tmp/$name.meta" > "$tmp/$name.kernels"
  "$tools/llvm-objdump" -d --no-show-raw-insn --no-leading-addr --mcpu="$arch" "$tmp/$name.co" |
    awk '
      /^<.*>:$/ || /^[0-9a-f]+ <.*>:$/ { sub(/^[0-9a-f]* *</, ""); sub(/>:$/, ""); fn = $0; n[fn] = 0; m[fn] = 0; t[fn] = 0; next }
      fn != "" && NF > 0 {
        op = $1
        if (op == "s_nop" || op == "s_endpgm" || op == "s_code_end") next
        n[fn]++
        if (op ~ /^v_mfma/) m[fn]++
        if (op == "s_trap") t[fn] = 1
      }
      END { for (f in n) printf "%s\t%d\t%d\t%d\n", f, n[f], m[f], t[f] }' | sort > "$tmp/$name.counts"
  join -t $'\t' "$tmp/$name.counts" "$tmp/$name.meta" > "$tmp/$name.rows"
  [ "$(wc -l < "$tmp/$name.rows")" = "$(wc -l < "$tmp/$name.kernels")" ] ||
    { echo "hip-kernels.sh: $obj: a kernel of the metadata has no disassembly" >&2; exit 1; }
  while IFS=$'\t' read -r sym counts; do
    printf '%s\t%s\t%s\n' "$name" "$("$tools/llvm-cxxfilt" "$sym")" "$counts"
  done < "$tmp/$name.rows"
done
