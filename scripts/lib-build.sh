# Sourced by scripts/sanitize.sh and scripts/tsan.sh: the instrumented CPU-only builds of the addon.
# build_addon <name> <cmake-js options...>: cmake-js compile into build-<name>/ (its log in
# build-<name>.log; on failure the log's tail and status 1), then the TypeScript compile.
build_addon() {
  local name=$1 start
  shift
  start=$(date +%s)
  # No HIP plugin in the sanitizer builds (the env var would win over -D: .ci/run exports GPTOSS_HIP=ON).
  GPTOSS_HIP=OFF npx cmake-js compile --out "build-$name" --CDGPTOSS_CUDA=OFF "$@" > "build-$name.log" 2>&1 ||
    { tail -30 "build-$name.log"; return 1; }
  echo "$name build: $(( $(date +%s) - start )) s"
  npx tsc -p tsconfig.json
}
