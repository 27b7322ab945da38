#!/bin/bash
# Does a change alter the generated device code? PTX of every native/cuda/*.cu of two commits for one
# arch, compared with the per-build hashes of anonymous namespaces normalized away: "identical", else
# whether the instruction multiset (opcodes with their counts) still matches. No GPU needed.
#   bash scripts/ptx-diff.sh <old-commit> [new-commit|WORKTREE] [arch, default sm_90a]
set -euo pipefail
old=$1; new=${2:-WORKTREE}; arch=${3:-sm_90a}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
tree() {  # tree <commit|WORKTREE> <dir>: the sources to compile
  if [ "$1" = WORKTREE ]; then echo "$root"; else mkdir -p "$2"; git -C "$root" archive "$1" native | tar -x -C "$2"; echo "$2"; fi
}
ptx() {  # ptx <srcroot> <outdir>
  mkdir -p "$2"
  for f in "$1"/native/cuda/*.cu; do
    b=$(basename "$f" .cu)
    nice "$NVCC" -std=c++17 -O3 --expt-relaxed-constexpr -Xcudafe=--diag_suppress=177 -arch="$arch" -ptx \
      -I"$1/native" -DGPTOSS_HAVE_CUDA "$f" -o "$2/$b.raw"
    # per-compile hashes normalized: anonymous namespaces, and the _<file>_cu_<hash>_<number> names of
    # function-local statics and extern shared arrays (they differ between two compiles of one source)
    sed -E 's/_GLOBAL__N__[0-9a-f]+_/_GLOBAL__N__X_/g; s/_INTERNAL_[0-9a-f]+_/_INTERNAL_X_/g; s/_cu_[0-9a-f]{8}_[0-9]+/_cu_X_/g' "$2/$b.raw" > "$2/$b.ptx"
    # a host-only file (dispatch.cu, pool.cu) has no instructions: grep finds nothing, which is fine
    { grep -E '^\s+[a-z@]' "$2/$b.ptx" || true; } | sed -E 's/^\s+//; s/^@%?!?[a-z0-9]+ //' | awk '{print $1}' | sort | uniq -c > "$2/$b.ops"
  done
}
ptx "$(tree "$old" "$tmp/old-src")" "$tmp/old"
ptx "$(tree "$new" "$tmp/new-src")" "$tmp/new"
status=0
for b in $( (ls "$tmp/old"; ls "$tmp/new") | sed -n 's/\.ptx$//p' | sort -u); do
  if [ ! -f "$tmp/old/$b.ptx" ] || [ ! -f "$tmp/new/$b.ptx" ]; then echo "$b.cu: only in one tree"; status=1
  elif cmp -s "$tmp/old/$b.ptx" "$tmp/new/$b.ptx"; then echo "$b.cu: identical PTX"
  elif cmp -s "$tmp/old/$b.ops" "$tmp/new/$b.ops"; then echo "$b.cu: same instruction multiset (order or registers differ)"
  else echo "$b.cu: DIFFERENT instructions"; diff "$tmp/old/$b.ops" "$tmp/new/$b.ops" | head -20 || true; status=1; fi
done
# Files split or merged: the whole backend's multiset still has to match.
total() { cat "$1"/*.ops | awk '{n[$2] += $1} END {for (k in n) print n[k], k}' | sort -k2; }
if [ "$(total "$tmp/old")" = "$(total "$tmp/new")" ]; then echo "all files together: same instruction multiset"
else echo "all files together: DIFFERENT instructions"; diff <(total "$tmp/old") <(total "$tmp/new") | head -20 || true; status=1; fi
exit $status
