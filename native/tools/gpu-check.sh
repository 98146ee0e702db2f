#!/usr/bin/env bash
# One call on a lent GPU machine: build the CUDA flavor with the machine's nvcc, run the native
# kernel checks and benches (gpu_check), run the JS @gpu suites on the CUDA flavor, and print a
# short summary table LAST. The machine has nvcc, cmake and python3 but no network and no node.
#   bash native/tools/gpu-check.sh --pack     on the dev machine: writes .gpu/node.xz (this node)
#                                             and .gpu/node_modules.tar.xz (only the packages the
#                                             run needs: node_modules is too big to carry whole)
#   bash native/tools/gpu-check.sh            on the GPU machine, with .gpu carried
# RNNKIT_CUDA_ARCHS overrides the detected architecture. Every step runs even when an earlier one
# failed; each reports its status, and the exit status is 1 when any step failed. Full logs go to
# $OUT/gpu-check (or /tmp/gpu-check when OUT is unset); each step prints its tail.
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ "${1:-}" = --pack ]; then
  mkdir -p .gpu || exit 1
  xz -T0 -9 -c "$(command -v node)" >.gpu/node.xz || exit 1
  # The packages the run loads, with their dependency closure (hoisted layout; a package's own
  # nested node_modules travels inside its folder).
  dirs=$(node -e '
    const fs = require("fs"), path = require("path");
    const seen = new Set();
    const visit = (name, from) => {
      for (const base of [path.join(from, "node_modules"), "node_modules"]) {
        const dir = path.join(base, name);
        if (!fs.existsSync(path.join(dir, "package.json"))) continue;
        if (seen.has(dir)) return;
        seen.add(dir);
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
        for (const d of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(d, dir);
        return;
      }
    };
    for (const n of ["mocha", "chai", "cmake-js", "node-addon-api", "node-api-headers", "node-gyp-build", "typescript"]) visit(n, ".");
    console.log([...seen].filter((d) => d.split("node_modules").length === 2).join("\n"));
  ') || exit 1
  # shellcheck disable=SC2086
  tar -cJf .gpu/node_modules.tar.xz $dirs || exit 1
  du -sh .gpu/*
  exit 0
fi
LOGS="${OUT:-/tmp}/gpu-check"
mkdir -p "$LOGS"
JOBS=$(nproc 2>/dev/null || echo 4)
SUMMARY=()
FAILED=0

# step <name> <timeout-seconds> <command...>: runs it, logs it, records status, time and a note.
step() {
  local name=$1 limit=$2
  shift 2
  local log="$LOGS/$name.log" t0 rc
  t0=$(date +%s)
  echo
  echo "=== $name"
  timeout "$limit" "$@" >"$log" 2>&1
  rc=$?
  tail -n 60 "$log"
  local status=ok
  if [ $rc -eq 124 ]; then status="TIMEOUT(${limit}s)"; elif [ $rc -ne 0 ]; then status="FAIL(rc=$rc)"; fi
  [ "$status" = ok ] || FAILED=1
  SUMMARY+=("$(printf '%-14s %-14s %5ss  %s' "$name" "$status" "$(($(date +%s) - t0))" "$(note_for "$name" "$log")")")
}

skip() {
  SUMMARY+=("$(printf '%-14s %-14s %5s   %s' "$1" "SKIPPED" "-" "$2")")
  FAILED=1
}

note_for() {
  case $1 in
    gpu_check | gpu_check_rec) grep -E '^checks:|no CUDA device' "$2" | tail -n 1 ;;
    mocha-gpu | mocha-all) grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$2" | tail -n 1 ;;
    build) grep -cE 'warning' "$2" | sed 's/$/ warning lines/' ;;
    *) tail -n 1 "$2" | cut -c1-70 ;;
  esac
}

# --- node ----------------------------------------------------------------------------------------
NODE_DIR=/tmp/rnnkit-node
if [ -f .gpu/node.xz ]; then
  mkdir -p "$NODE_DIR" && xz -dc .gpu/node.xz >"$NODE_DIR/node" && chmod +x "$NODE_DIR/node"
fi
[ -x "$NODE_DIR/node" ] && export PATH="$NODE_DIR:$PATH"
if [ ! -d node_modules/mocha ] && [ -f .gpu/node_modules.tar.xz ]; then
  tar -xJf .gpu/node_modules.tar.xz || echo "could not unpack .gpu/node_modules.tar.xz"
fi
if command -v node >/dev/null 2>&1; then
  HAVE_NODE=1
  SUMMARY+=("$(printf '%-14s %-14s %5s   %s' node ok - "$(node --version)")")
else
  HAVE_NODE=0
  skip node "no .gpu/node.xz and no node on PATH (CMake needs it for the source list)"
fi

# --- device --------------------------------------------------------------------------------------
step nvidia-smi 30 nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
ARCHS="${RNNKIT_CUDA_ARCHS:-${CC:-90}-real}"
echo "architectures: $ARCHS"

# --- build ---------------------------------------------------------------------------------------
# cmake-js builds the addon and the tools (Node-API headers come from node_modules, no download);
# when it fails, plain cmake still builds the tools so the native checks can run.
build_cmake_js() {
  node node_modules/cmake-js/bin/cmake-js compile --out build-cuda --CDRNNKIT_CUDA=ON \
    "--CDRNNKIT_CUDA_ARCHS=$ARCHS" --CDRNNKIT_TOOLS=ON --parallel "$JOBS"
}
build_tools_cmake() {
  cmake -S . -B build-cuda-tools -DRNNKIT_CUDA=ON "-DRNNKIT_CUDA_ARCHS=$ARCHS" -DRNNKIT_TOOLS=ON \
    -DCMAKE_BUILD_TYPE=Release && cmake --build build-cuda-tools -j "$JOBS"
}
export ARCHS JOBS
export -f build_cmake_js build_tools_cmake
if [ $HAVE_NODE = 1 ]; then
  step build 480 bash -c build_cmake_js
  if [ ! -x build-cuda/gpu_check ]; then step build-tools 400 bash -c build_tools_cmake; fi
  step tsc 120 node node_modules/typescript/bin/tsc -p tsconfig.json
else
  skip build "needs node"
fi

# --- native checks and benches -------------------------------------------------------------------
GPU_CHECK=""
for c in build-cuda/gpu_check build-cuda-tools/gpu_check; do
  if [ -x "$c" ]; then GPU_CHECK=$c; break; fi
done
if [ -n "$GPU_CHECK" ]; then
  step gpu_check 300 "$GPU_CHECK"
else
  skip gpu_check "not built"
fi

# --- Recurrent op (CUDA backend II): native parity checks and bench, then PyTorch cuDNN ----------
GPU_CHECK_REC=""
for c in build-cuda/gpu_check_recurrent build-cuda-tools/gpu_check_recurrent; do
  if [ -x "$c" ]; then GPU_CHECK_REC=$c; break; fi
done
if [ -n "$GPU_CHECK_REC" ]; then step gpu_check_rec 420 "$GPU_CHECK_REC"; else skip gpu_check_rec "not built"; fi
step torch_rnn 300 bash -c "python3 bench/gpu/torch_rnn.py > '$LOGS/torch_rnn.json' && tail -c 300 '$LOGS/torch_rnn.json'"

# --- JS suites on the CUDA flavor ----------------------------------------------------------------
ADDON=build-cuda/Release/rnnkit_cuda.node
if [ $HAVE_NODE = 1 ] && [ -f "$ADDON" ] && [ -f dist/index.js ]; then
  export RNNKIT_CUDA_ADDON="$PWD/$ADDON" RNNKIT_GPU_TESTS=1
  step backend 30 node -e "const i=require('./dist').backendInfo();console.log(i.flavor,JSON.stringify(i.cuda));if(!i.cuda.available)process.exit(1)"
  step mocha-gpu 240 node node_modules/mocha/bin/mocha.js --grep @gpu
  step mocha-all 240 node node_modules/mocha/bin/mocha.js
  # The bench suite's GPU table: rnnkit's CUDA path against PyTorch/cuDNN on the same shapes.
  step bench-rec 240 node bench/run.js --quick --only recurrent
else
  skip mocha-gpu "needs node, the CUDA addon and dist/"
fi

# --- summary (last) ------------------------------------------------------------------------------
echo
if [ -f "$LOGS/gpu_check.log" ]; then
  sed -n '/^limits:/p; /^kernel /,/^(bytes counted/p' "$LOGS/gpu_check.log"
  grep -E '^FAIL' "$LOGS/gpu_check.log" | head -n 10
fi
if [ -f "$LOGS/gpu_check_rec.log" ]; then
  sed -n '/^recurrent bench/,/^checks:/p' "$LOGS/gpu_check_rec.log"
  grep -E '^FAIL' "$LOGS/gpu_check_rec.log" | head -n 10
fi
echo
echo "gpu-check summary (logs: $LOGS)"
printf '%-14s %-14s %6s  %s\n' step status time note
for line in "${SUMMARY[@]}"; do echo "$line"; done
exit $FAILED
