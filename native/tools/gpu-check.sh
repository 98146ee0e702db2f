#!/usr/bin/env bash
# The one prepared run on a lent GPU machine: build, check every CUDA kernel against the CPU, run
# the @gpu suites and the CPU suites (AVX-512 there), then time; one command of at most 540 s.
#
#   bash native/tools/gpu-check.sh --pack   dev machine: writes .gpu/node.xz (this node) and
#                                           .gpu/node_modules.tar.xz (what the run loads: the build,
#                                           tsc and mocha with their dependency closures)
#   bash native/tools/gpu-check.sh --plan   prints the steps in order with their time budgets
#   bash native/tools/gpu-check.sh          GPU machine (device tool: command "bash
#                                           native/tools/gpu-check.sh", carry [".gpu"], timeout_s 600)
#
# The GPU machine has nvcc, cmake and python3 with PyTorch, no network, no node and no npm: node
# and the packages come from .gpu/, and what needs npm (the package test) skips itself saying so.
# Order: the most informative first. Native parity checkers (GPU, then the CPU checkers with
# RNNKIT_ISA=avx512), then the @gpu mocha suites, then the CPU mocha suites (AVX-512), then the
# timings. A global deadline (RNNKIT_GPU_CHECK_DEADLINE, default 530 s from the start, build
# included) caps every step at min(its budget, the time left); a step that cannot start is "cut".
# RNNKIT_REQUIRE_GPU=1 is exported: a checker or @gpu suite that finds no usable device fails with
# the CUDA error instead of skipping. The summary is printed by an EXIT trap (also after a signal
# or the deadline): per step pass / FAIL / skip / cut with its figure, sticky CUDA errors and the
# first failure named, and last the line `N passed, N failed`. Logs: $OUT/gpu-check/ while running,
# packed into $OUT/gpu-check-logs.tar.gz at the end beside $OUT/gpu-check-summary.txt (without OUT,
# under /tmp/gpu-check). RNNKIT_CUDA_ARCHS overrides the architecture read from nvidia-smi;
# RNNKIT_BUILD_JOBS the build parallelism (default: every core); RNNKIT_GPU_CHECK_SCALE multiplies
# every budget and the deadline (for rehearsing the run on a slower machine).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

# name|budget seconds|kind|what. Kinds: prep (the rest needs it), check, timing.
PLAN=(
  "setup|20|prep|unpack node and node_modules from .gpu/"
  "nvidia-smi|5|prep|device name, compute capability, driver"
  "build|115|prep|cmake-js, all cores: CUDA flavor + native tools (build-cuda/), CPU flavor (build-cpu/)"
  "tsc|25|prep|TypeScript to dist/"
  "backend|10|check|the CUDA flavor loads, sees the device, reports no sticky error"
  "gpu_check|30|check|native: copies, allocator, GEMM fp32/TF32 + its architecture, RMSNorm vs CPU"
  "gpu_check_train|25|check|native: optimizer steps, cross-entropy, MSE, clipping vs CPU"
  "gpu_check_nn|20|check|native: nn kernels (activations, broadcasts, reductions, embedding, copies) vs CPU"
  "gpu_check_recurrent|50|check|native: persistent plans, concurrent plans, the Recurrent matrix vs CPU"
  "cpu_avx512|30|check|native CPU checkers test_sgemm, test_rmsnorm, test_recurrent, RNNKIT_ISA=avx512"
  "mocha_gpu|60|check|mocha --grep @gpu on the CUDA flavor (tests 13, 40-44: IndexTensor, ops, Recurrent, training, device weights and the copy count of a 2-layer LSTM step)"
  "mocha_cpu_avx512|60|check|mocha --grep @gpu --invert on the CPU flavor, RNNKIT_ISA=avx512 (test/52 left out)"
  "bench_kernels|15|timing|gpu_check --bench-only --quick: copy, FMA, mma limits; GEMM, RMSNorm"
  "bench_train|10|timing|gpu_check_train --bench-only --quick: Adam, clipping, cross-entropy GB/s"
  "bench_recurrent|20|timing|gpu_check_recurrent --bench-only --quick --shapes bench/shapes.json: auto vs standard vs persistent"
  "torch_rnn|20|timing|PyTorch cuDNN on the same shapes (bench/gpu/torch_rnn.py --quick --shapes bench/shapes.json)"
  "bench_js_recurrent|12|timing|node bench/run.js --quick --only recurrent: ours (CUDA) vs PyTorch"
)
SCALE=${RNNKIT_GPU_CHECK_SCALE:-1}
DEADLINE_S=$((${RNNKIT_GPU_CHECK_DEADLINE:-530} * SCALE))

plan_field() { # plan_field <name> <index>: a field of the step's plan entry
  local entry
  for entry in "${PLAN[@]}"; do
    IFS='|' read -r n b k w <<<"$entry"
    if [ "$n" = "$1" ]; then
      case $2 in 1) echo "$b" ;; 2) echo "$k" ;; 3) echo "$w" ;; esac
      return
    fi
  done
}

if [ "${1:-}" = --plan ]; then
  total=0
  printf '%-20s %6s  %-6s  %s\n' step budget kind what
  for entry in "${PLAN[@]}"; do
    IFS='|' read -r n b k w <<<"$entry"
    printf '%-20s %5ss  %-6s  %s\n' "$n" "$b" "$k" "$w"
    total=$((total + b))
  done
  printf 'total %ss of budgets; the run stops at its deadline, %ss after the start (RNNKIT_GPU_CHECK_DEADLINE)\n' \
    "$total" "$DEADLINE_S"
  exit 0
fi

if [ "${1:-}" = --pack ]; then
  mkdir -p .gpu || exit 1
  xz -T0 -9 -c "$(command -v node)" >.gpu/node.xz || exit 1
  # The packages the run loads, with their dependency closure (hoisted layout; a package's own
  # nested node_modules travels inside its folder). @types/node (and undici-types with it) is what
  # tsc needs beyond the packages' own dependencies.
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
      if (from === ".") throw new Error("package " + name + " is not installed: run npm ci first");
    };
    for (const n of ["mocha", "chai", "cmake-js", "node-addon-api", "node-api-headers", "node-gyp-build", "typescript", "@types/node"]) visit(n, ".");
    console.log([...seen].filter((d) => d.split("node_modules").length === 2).join("\n"));
  ') || exit 1
  # shellcheck disable=SC2086
  tar -cJf .gpu/node_modules.tar.xz $dirs || exit 1
  du -sh .gpu/*
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: bash native/tools/gpu-check.sh [--pack | --plan]" >&2
  exit 2
fi

# ---- the run -------------------------------------------------------------------------------------
START=$(date +%s)
if [ -n "${OUT:-}" ]; then LOGS="$OUT/gpu-check"; else LOGS=/tmp/gpu-check; fi
rm -rf "$LOGS" && mkdir -p "$LOGS" || exit 1
JOBS=${RNNKIT_BUILD_JOBS:-$(nproc 2>/dev/null || echo 4)}
export RNNKIT_REQUIRE_GPU=1
RESERVE_S=8          # kept for the summary and the packing of the logs
ROWS=()              # one summary row per step
PASSED=0
FAILED=0
FIRST_FAILURE=""
FAILED_STEPS=()      # for the failures section
STICKY=""
CURRENT=""           # the step running now (for the trap)
STEP_PID=""
NODE_OK=0

left() { echo $((START + DEADLINE_S - RESERVE_S - $(date +%s))); }

# row <name> <status> <seconds> <figure>: records the outcome of a step.
row() {
  local name=$1 status=$2 secs=$3 figure=$4 kind
  kind=$(plan_field "$name" 2)
  [ "$secs" = - ] || secs="${secs}s"
  ROWS+=("$(printf '%-20s %-6s %6s  %s' "$name" "$status" "$secs" "$figure")")
  case $status in
    pass) PASSED=$((PASSED + 1)) ;;
    FAIL) FAILED=$((FAILED + 1)); FAILED_STEPS+=("$name"); [ -n "$FIRST_FAILURE" ] || FIRST_FAILURE="$name: $figure" ;;
    cut) if [ "$kind" != timing ]; then FAILED=$((FAILED + 1)); [ -n "$FIRST_FAILURE" ] || FIRST_FAILURE="$name: cut by the deadline"; fi ;;
  esac
}

skip() { row "$1" skip - "$2"; echo "=== $1: skipped ($2)"; }

# figure <name> <log> <rc>: the one-line result of a step, read from its log.
figure() {
  local name=$1 log=$2 rc=$3 line
  case $name in
    setup | nvidia-smi | backend) line=$(tail -n 1 "$log") ;;
    build) line="$(grep -ciE 'warning' "$log") warning lines; built: $(cd build-cuda 2>/dev/null && ls -d gpu_check* test_* Release/*.node 2>/dev/null | tr '\n' ' ')" ;;
    tsc) line=$([ "$rc" = 0 ] && echo "dist/ written" || grep -m 3 -E 'error TS' "$log" | tr '\n' ' ') ;;
    gpu_check*) line=$(grep -E '^checks:|^first failure:|no CUDA device|no usable CUDA device|^STICKY' "$log" | tr '\n' ' ') ;;
    cpu_avx512) line=$(grep -E '^test_sgemm:|^test_rmsnorm:|cases, [0-9]+ failures|^(skipped|FAIL)' "$log" | tr '\n' ' ') ;;
    mocha_*) line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n 1)
      local first
      first=$(grep -m 1 -E '^  1\) ' -A 1 "$log" | tr -s ' \n' ' ')
      [ -n "$first" ] && line="$line; first failure:$first" ;;
    bench_kernels) line=$(grep -m 1 -E '^limits:' "$log") ;;
    bench_train) line=$(grep -m 1 -E '^adam step' "$log" | tr -s ' ') ;;
    bench_recurrent) line="auto-ok: $(grep -cE ' ok ' "$log") ok, $(grep -cE 'WRONG' "$log") WRONG, $(grep -cE 'only-std' "$log") standard-only" ;;
    torch_rnn) line=$(head -c 160 "$LOGS/torch_rnn.json" 2>/dev/null) ;;
    bench_js_recurrent) line=$(grep -m 1 -E 'vs PyTorch' "$log") ;;
  esac
  [ -n "$line" ] || line=$(tail -n 1 "$log")
  echo "${line:0:150}"
}

# step <name> <command...>: runs it under min(budget, time left), logs it, records the outcome.
step() {
  local name=$1 budget limit t0 rc status log="$LOGS/$1.log"
  shift
  budget=$(($(plan_field "$name" 1) * SCALE))
  limit=$(left)
  [ "$limit" -gt "$budget" ] && limit=$budget
  if [ "$limit" -lt 3 ]; then
    row "$name" cut - "not started: the deadline (${DEADLINE_S}s) was reached"
    echo "=== $name: cut (deadline)"
    return 1
  fi
  echo "=== $name (budget ${budget}s, limit ${limit}s)"
  CURRENT=$name
  t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID"
  rc=$?
  STEP_PID=""
  CURRENT=""
  status=pass
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=FAIL; [ "$limit" -lt "$budget" ] && status=cut
  elif [ $rc -ne 0 ]; then status=FAIL; fi
  if grep -qE '^STICKY CUDA ERROR|context has been unusable since|sticky: the CUDA context' "$log"; then
    [ -n "$STICKY" ] || STICKY="$name: $(grep -m 1 -E 'STICKY CUDA ERROR|unusable since|sticky:' "$log" | cut -c1-300)"
  fi
  local fig
  fig=$(figure "$name" "$log" "$rc")
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && fig="timed out after ${limit}s; $fig"
  row "$name" "$status" $(($(date +%s) - t0)) "$fig"
  echo "    $status: $fig"
  [ "$status" = pass ] || tail -n 15 "$log" | sed 's/^/    | /'
  [ "$status" = pass ]
}

# A step whose log says it skipped (no torch, no npm, no AVX-512) is recorded as skip, not pass.
demote_to_skip() { # demote_to_skip <name> <reason>
  local last=$((${#ROWS[@]} - 1))
  ROWS[last]="$(printf '%-20s %-6s %6s  %s' "$1" skip - "$2")"
  PASSED=$((PASSED - 1))
}

summary() {
  local code=$?
  trap - EXIT TERM INT
  if [ -n "$STEP_PID" ]; then
    kill -TERM "$STEP_PID" 2>/dev/null
    wait "$STEP_PID" 2>/dev/null
    row "$CURRENT" cut - "stopped by a signal while running"
  fi
  {
    echo
    echo "---- timings (full tables in the logs)"
    [ -f "$LOGS/bench_kernels.log" ] && sed -n '/^kernel /,/^(bytes counted/p' "$LOGS/bench_kernels.log"
    [ -f "$LOGS/bench_train.log" ] && sed -n '/^kernel /,/^(adam/p' "$LOGS/bench_train.log"
    [ -f "$LOGS/bench_recurrent.log" ] && sed -n '/^shape /,$p' "$LOGS/bench_recurrent.log" | grep -vE '^checks:|^first failure|: (all checks passed|FAILED)$' | head -n 40
    echo
    echo "---- failures (first lines of each failed step's log)"
    for name in "${FAILED_STEPS[@]}"; do
      [ -f "$LOGS/$name.log" ] || continue
      grep -m 8 -E '^FAIL|^STICKY|^  [0-9]+\) |error|Error' "$LOGS/$name.log" | sed "s|^|$name: |" | cut -c1-220
    done
    echo
    local where=$LOGS
    [ -n "${OUT:-}" ] && where="$OUT/gpu-check-logs.tar.gz and $OUT/gpu-check-summary.txt"
    echo "gpu-check summary ($(($(date +%s) - START))s of ${DEADLINE_S}s; logs: $where)"
    printf '%-20s %-6s %6s  %s\n' step status time figure
    for r in "${ROWS[@]}"; do echo "$r"; done
    [ -n "$STICKY" ] && echo "sticky CUDA error in $STICKY: every later CUDA call in that process failed with it"
    [ -n "$FIRST_FAILURE" ] && echo "first failure: $FIRST_FAILURE"
    echo "$PASSED passed, $FAILED failed"
  } | tee "$LOGS/summary.txt"
  if [ -n "${OUT:-}" ]; then
    cp "$LOGS/summary.txt" "$OUT/gpu-check-summary.txt"
    tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$OUT" gpu-check && rm -rf "$LOGS"
  fi
  [ "$FAILED" -eq 0 ] && [ $code -eq 0 ] && exit 0
  exit 1
}
trap summary EXIT
trap 'exit 143' TERM INT

# ---- prep ----------------------------------------------------------------------------------------
NODE_DIR=/tmp/rnnkit-node-$$  # per run: a second run must not overwrite a node binary in use
unpack() {
  if [ -f .gpu/node.xz ]; then
    mkdir -p "$NODE_DIR" && xz -dc .gpu/node.xz >"$NODE_DIR/node" && chmod +x "$NODE_DIR/node" || return 1
  fi
  if [ ! -d node_modules/mocha ] && [ -f .gpu/node_modules.tar.xz ]; then tar -xJf .gpu/node_modules.tar.xz || return 1; fi
  PATH="$NODE_DIR:$PATH" node --version || { echo "no .gpu/node.xz and no node on PATH"; return 1; }
  [ -d node_modules/typescript ] || { echo "no node_modules: carry .gpu (made by --pack)"; return 1; }
}
export -f unpack
export NODE_DIR
if step setup bash -c unpack; then NODE_OK=1; fi
export PATH="$NODE_DIR:$PATH"

if command -v nvidia-smi >/dev/null 2>&1; then
  step nvidia-smi nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
else
  row nvidia-smi FAIL - "nvidia-smi not found: no NVIDIA driver on this machine"
fi
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
ARCHS="${RNNKIT_CUDA_ARCHS:-${CC:-90}-real}"
echo "architectures: $ARCHS, build jobs: $JOBS"

# Both flavors with cmake-js (Node-API headers from node_modules: no download). The CPU flavor lands
# in build/Release/rnnkit.node, where node-gyp-build finds it (child processes of the CPU suites
# load it with RNNKIT_DEVICE=cpu). When cmake-js fails on the CUDA flavor, plain cmake still builds
# the native tools so the checkers can run.
build_all() {
  (
    set -o pipefail
    node node_modules/cmake-js/bin/cmake-js compile --out build-cuda --CDRNNKIT_CUDA=ON "--CDRNNKIT_CUDA_ARCHS=$ARCHS" \
      --CDRNNKIT_TOOLS=ON --parallel "$JOBS" 2>&1 | sed -u 's/^/cuda| /'
  ) &
  local cuda=$!
  (
    set -o pipefail
    node node_modules/cmake-js/bin/cmake-js compile --out build-cpu --CDRNNKIT_CUDA=OFF --parallel "$JOBS" 2>&1 |
      sed -u 's/^/cpu| /'
  )
  local cpu=$?
  wait $cuda
  local cuda_rc=$?
  if [ $cuda_rc -ne 0 ]; then
    echo "---- cmake-js failed on the CUDA flavor: plain cmake for the native tools"
    cmake -S . -B build-cuda -DRNNKIT_CUDA=ON "-DRNNKIT_CUDA_ARCHS=$ARCHS" -DRNNKIT_TOOLS=ON -DCMAKE_BUILD_TYPE=Release &&
      cmake --build build-cuda -j "$JOBS"
  fi
  if [ $cpu -eq 0 ]; then mkdir -p build/Release && cp build-cpu/Release/rnnkit_cpu.node build/Release/rnnkit.node; fi
  echo "CUDA flavor: exit $cuda_rc, CPU flavor: exit $cpu"
  [ $cuda_rc -eq 0 ] && [ $cpu -eq 0 ]
}
export -f build_all
export ARCHS JOBS
if [ $NODE_OK = 1 ]; then
  step build bash -c build_all
  step tsc node node_modules/typescript/bin/tsc -p tsconfig.json
else
  skip build "needs node (setup failed)"
  skip tsc "needs node (setup failed)"
fi
ADDON="$ROOT/build-cuda/Release/rnnkit_cuda.node"
HAVE_JS=0
[ -f "$ADDON" ] && [ -f dist/index.js ] && HAVE_JS=1

# ---- checks --------------------------------------------------------------------------------------
if [ $HAVE_JS = 1 ]; then
  step backend env RNNKIT_CUDA_ADDON="$ADDON" node -e "
    const i = require('./dist').backendInfo();
    const c = i.cuda;
    console.log(i.flavor, JSON.stringify({ available: c.available, reason: c.reason, archs: c.architectures, devices: c.devices }));
    if (i.flavor !== 'cuda' || !c.available || c.stickyError) process.exit(1);
    console.log('cuda available: ' + c.devices.map((d) => d.name + ' cc ' + d.computeCapability).join(', ') + ', driver ' + c.driverVersion + ', runtime ' + c.runtimeVersion);"
else
  skip backend "needs the CUDA addon and dist/"
fi
for tool in gpu_check gpu_check_train gpu_check_nn gpu_check_recurrent; do
  if [ -x "build-cuda/$tool" ]; then step "$tool" "build-cuda/$tool" --no-bench; else skip "$tool" "build-cuda/$tool was not built"; fi
done

cpu_checkers() {
  if ! grep -qw avx512f /proc/cpuinfo; then echo "skipped: this CPU has no AVX-512 ($(grep -m 1 'model name' /proc/cpuinfo))"; return 0; fi
  local rc=0 t
  for t in test_sgemm test_rmsnorm test_recurrent; do
    echo "---- $t"
    RNNKIT_ISA=avx512 "build-cuda/$t" || { echo "FAIL $t (exit $?)"; rc=1; }
  done
  return $rc
}
export -f cpu_checkers
if [ -x build-cuda/test_sgemm ]; then
  step cpu_avx512 bash -c cpu_checkers && grep -q '^skipped:' "$LOGS/cpu_avx512.log" && demote_to_skip cpu_avx512 "$(head -c 120 "$LOGS/cpu_avx512.log")"
else
  skip cpu_avx512 "the native CPU checkers were not built"
fi

if [ $HAVE_JS = 1 ]; then
  step mocha_gpu env RNNKIT_CUDA_ADDON="$ADDON" node node_modules/mocha/bin/mocha.js --grep @gpu
else
  skip mocha_gpu "needs the CUDA addon and dist/"
fi
if [ -f build/Release/rnnkit.node ] && [ -f dist/index.js ]; then
  isa=$(RNNKIT_DEVICE=cpu RNNKIT_ISA=avx512 node -e "console.log(require('./dist').backendInfo().isa)" 2>&1)
  if [ "$isa" = avx512 ]; then
    # test/52 runs the examples on the npm dataset packages (about 105 MB unpacked): more than a
    # run may carry, so it is left out here, and said so.
    echo "mocha_cpu_avx512: test/52.examples.test.js left out (its @stdlib dataset packages are not carried)"
    step mocha_cpu_avx512 env RNNKIT_DEVICE=cpu RNNKIT_ISA=avx512 node node_modules/mocha/bin/mocha.js --grep @gpu --invert \
      --ignore test/52.examples.test.js
  else
    skip mocha_cpu_avx512 "the CPU flavor runs '$isa', not avx512, on this CPU"
  fi
else
  skip mocha_cpu_avx512 "needs the CPU flavor (build/Release/rnnkit.node) and dist/"
fi

# ---- timings -------------------------------------------------------------------------------------
if [ -x build-cuda/gpu_check ]; then step bench_kernels build-cuda/gpu_check --bench-only --quick; else skip bench_kernels "not built"; fi
if [ -x build-cuda/gpu_check_train ]; then step bench_train build-cuda/gpu_check_train --bench-only --quick; else skip bench_train "not built"; fi
if [ -x build-cuda/gpu_check_recurrent ]; then step bench_recurrent build-cuda/gpu_check_recurrent --bench-only --quick --shapes bench/shapes.json; else skip bench_recurrent "not built"; fi
step torch_rnn bash -c "python3 bench/gpu/torch_rnn.py --quick --shapes bench/shapes.json > '$LOGS/torch_rnn.json' && tail -c 400 '$LOGS/torch_rnn.json'" &&
  grep -q '"skipped"' "$LOGS/torch_rnn.json" && demote_to_skip torch_rnn "$(head -c 140 "$LOGS/torch_rnn.json")"
if [ $HAVE_JS = 1 ]; then
  step bench_js_recurrent env RNNKIT_CUDA_ADDON="$ADDON" node bench/run.js --quick --only recurrent
else
  skip bench_js_recurrent "needs the CUDA addon and dist/"
fi
exit 0
