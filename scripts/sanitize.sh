#!/usr/bin/env bash
# ASan + UBSan build of the CPU backend and the N-API layer, and a run of the tests that reach native
# code plus a fuzz slice under it (issue 16). node itself is not instrumented, so libasan is preloaded;
# leaks are not checked (V8 keeps memory to exit). Usage: bash scripts/sanitize.sh [vitest files...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-build.sh
build_addon sanitize --CDGPTOSS_SANITIZE=ON || exit 1
export GPT_OSS_NODE_BINARY="$PWD/build-sanitize/Release/gpt_oss_node.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/robust/api-input.test.ts test/robust/checkpoint-errors.test.ts test/robust/file-changes.test.ts test/loader.test.ts test/model.test.ts test/napi-fuzz.test.ts test/sampling.test.ts test/synthetic.test.ts test/engine test/cpu)
start=$(date +%s)
npx vitest run "${files[@]}"
echo "sanitized tests: $(( $(date +%s) - start )) s"
start=$(date +%s)
node scripts/fuzz.mjs --cases 400 --seed "${GPTOSS_FUZZ_SEED:-1}"
echo "sanitized fuzz slice: $(( $(date +%s) - start )) s"
