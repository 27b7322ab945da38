#!/usr/bin/env bash
# ThreadSanitizer build of the CPU backend, the thread pool and the N-API layer (build-tsan/), and two
# runs under it: the thread pool's host test (native/core/tests/thread_pool_test.cpp, with its forced
# late-worker interleaving) and scripts/tsan-stress.mjs (models created and disposed concurrently,
# sessions and a model disposed with forward passes in flight, generate() and engine requests
# aborted, synchronous kernels and a pool resize on the main thread meanwhile, GC pressure, the same
# in worker_threads with one terminated mid-forward). node itself is not instrumented: libtsan is
# preloaded, and scripts/tsan.supp silences only V8's and libuv's own teardown (never the addon).
# Any report fails the run. Usage: bash scripts/tsan.sh [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-build.sh
build_addon tsan --CDGPTOSS_TSAN=ON || exit 1
log=$(mktemp -d)
symbolizer=$(command -v llvm-symbolizer || true)
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp log_path=$log/tsan${symbolizer:+ external_symbolizer_path=$symbolizer}"
# Address randomization off where allowed: gcc 12's TSan cannot map its shadow memory under the
# 32-bit mmap randomization of newer kernels ("unexpected memory mapping").
norand=()
setarch "$(uname -m)" -R true 2> /dev/null && norand=(setarch "$(uname -m)" -R)
status=0
start=$(date +%s)
if ! "${norand[@]}" build-tsan/gptoss_pool_test > "$log/pool.out" 2>&1; then
  # A kernel whose address layout gcc 12's TSan cannot live with (and no way to turn randomization
  # off): say so and skip, rather than fail on something that says nothing about the addon.
  if grep -qs "FATAL: ThreadSanitizer" "$log/pool.out" "$log"/tsan*; then
    cat "$log/pool.out"
    echo "warning: ThreadSanitizer cannot run on this kernel (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2> /dev/null || echo ?)); tsan run skipped"
    rm -rf "$log"
    exit 0
  fi
  status=1
fi
cat "$log/pool.out"
echo "thread pool test under tsan: $(( $(date +%s) - start )) s"
start=$(date +%s)
# exitcode=0: node's status says whether the stress finished; the reports are judged below.
GPT_OSS_NODE_BINARY="$PWD/build-tsan/Release/gpt_oss_node.node" LD_PRELOAD="$(gcc -print-file-name=libtsan.so)" \
  TSAN_OPTIONS="$TSAN_OPTIONS exitcode=0" "${norand[@]}" node --expose-gc scripts/tsan-stress.mjs --rounds 8 "$@" || status=1
echo "stress under tsan: $(( $(date +%s) - start )) s"
# A report fails the run when one of its stacks is the addon's (or the pool test's); reports wholly
# inside node (V8, libuv: uninstrumented, so TSan sees only part of their synchronization) are only
# counted.
if compgen -G "$log/tsan*" > /dev/null; then
  reports=$(cat "$log"/tsan* | awk '
    /^WARNING: ThreadSanitizer/ { block = $0; inside = 1; next }
    inside { block = block "\n" $0 }
    inside && /^SUMMARY: ThreadSanitizer/ {
      inside = 0
      if (block ~ /gpt_oss_node\.node|gptoss::|gptoss_pool_test/) { print block; n++ } else other++
    }
    END { if (other) print other " report(s) inside node itself (not the addon), not counted" > "/dev/stderr"; exit n > 0 }') ||
    { echo "$reports"; echo "ThreadSanitizer: the addon has data races (above)"; status=1; }
fi
rm -rf "$log"
[ "$status" = 0 ] && echo "tsan: clean"
exit $status
