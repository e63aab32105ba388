#!/usr/bin/env bash
# Builds Sluice and runs every test: the Catch2 units (ctest) and the integration tests (pytest,
# test/integration) in a release build, the same suite again under AddressSanitizer +
# UndefinedBehaviorSanitizer, the libFuzzer targets for 60 seconds in all, and the Docker image
# built and run with podman (scripts/test-container). Ends with one line: "N passed, N failed",
# counting each unit and each integration test of every stage, and each step of the container test.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${SLUICE_FUZZ_SECONDS:-60}
# The sanitizer and fuzz builds: -O1 with line tables only (what ASan's reports need) compiles in
# about half the time of RelWithDebInfo's -O2 -g, and ASan recommends -O1 anyway.
quick_flags=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
             "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

bash scripts/bootstrap.sh || { echo "bootstrap failed"; exit 1; }

passed=0
failed=0
tally() {  # reads ctest's "N tests failed out of M" line from a log
  local log=$1 line total bad
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [[ -z "$line" ]]; then failed=$((failed + 1)); return; fi
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
}

tally_pytest() {  # tally_pytest LOG STATUS: reads conftest.py's "integration: N passed, M failed"
  local log=$1 status=$2 line good bad
  line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [[ -z "$line" ]]; then
    echo "integration: no count from pytest (exit status $status)"; tail -n 40 "$log"
    failed=$((failed + 1)); return
  fi
  good=$(sed -E 's/^integration: ([0-9]+) passed.*/\1/' <<<"$line")
  bad=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  passed=$((passed + good))
  failed=$((failed + bad))
  # Exit status 5 is "no tests collected"; any other non-zero status with no failed test counted
  # (an error outside every test, an interruption) and a run without one passing test also fail.
  if [[ $status -ne 0 && $bad -eq 0 ]] || [[ $good -eq 0 ]]; then
    echo "integration: pytest exit status $status with $good passed, $bad failed"
    failed=$((failed + 1))
  fi
}

integration() {  # integration BUILD_DIR: the pytest suite against BUILD_DIR/core/sluice
  local dir=$1 status
  /usr/bin/pytest test/integration --sluice "$dir/core/sluice" -n "$jobs" \
    >"$dir/pytest.log" 2>&1
  status=$?
  # The failures in full (each with its sluice log tails), then the short summary and the count.
  sed -n '/^=* \(ERRORS\|FAILURES\) =*$/,/^=* short test summary info =*$/{
            /^=* short test summary info =*$/d; /^integration: /d; p; }' "$dir/pytest.log" |
    head -n 600
  grep -E '^(FAILED|ERROR) |^integration: |^=+ .* in [0-9.]+s' "$dir/pytest.log" || true
  tally_pytest "$dir/pytest.log" "$status"
}

stage() {  # stage NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2
  shift 2
  echo "== $name"
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" "$@" >"$dir/configure.log" 2>&1 ||
     ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
    echo "$name: build failed"; tail -n 40 "$dir/configure.log" "$dir/build.log"
    failed=$((failed + 1))
    return
  fi
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 300) 2>&1 | tee "$dir/ctest.log" |
    grep -E '(Passed|Failed|\*\*\*|tests passed)' | grep -v ' Passed ' || true
  tally "$dir/ctest.log"
  integration "$dir"
}

stage "release build: units and integration" build -DCMAKE_BUILD_TYPE=Release
# The sanitizer stage builds with clang so that the libFuzzer targets share its tree: one build
# of the libraries serves the units, the integration suite and the fuzzers.
command -v clang++ >/dev/null || { echo "clang++ missing"; exit 1; }
CC=clang CXX=clang++ \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  stage "sanitizers (ASan+UBSan, clang): units and integration" build-asan \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=ON "${quick_flags[@]}"

# One libFuzzer target for `seconds`, starting from a copy of its seed corpus.
fuzz() {
  local target=$1 seeds=$2 seconds=$3 max_len=$4 corpus
  corpus=$(mktemp -d)
  cp "$seeds"/* "$corpus"/
  if build-asan/test/fuzz/"$target" -max_total_time="$seconds" -max_len="$max_len" \
       -print_final_stats=1 "$corpus" >"build-asan/$target.log" 2>&1; then
    echo "$target: $(grep -E 'stat::number_of_executed_units' "build-asan/$target.log" | awk '{print $2}') runs in ${seconds}s, no crash"
    passed=$((passed + 1))
  else
    echo "$target: FAILED"; tail -n 60 "build-asan/$target.log"
    failed=$((failed + 1))
  fi
  rm -rf "$corpus"
}

echo "== fuzzing the request, config, PROXY header, X-Forwarded-For, forward-proxy target and Cache-Control parsers (about $((fuzz_seconds * 10 / 8))s in all)"
if [[ -x build-asan/test/fuzz/fuzz_request_head ]]; then
  fuzz fuzz_request_head test/fuzz/corpus $((fuzz_seconds / 2)) 4096
  fuzz fuzz_config test/fuzz/config_corpus $((fuzz_seconds / 4)) 8192
  fuzz fuzz_proxy_protocol test/fuzz/proxy_protocol_corpus $((fuzz_seconds / 8)) 2048
  fuzz fuzz_forwarded_for test/fuzz/forwarded_for_corpus $((fuzz_seconds / 8)) 1024
  fuzz fuzz_forward_target test/fuzz/forward_target_corpus $((fuzz_seconds / 8)) 1024
  fuzz fuzz_cache_control test/fuzz/cache_control_corpus $((fuzz_seconds / 8)) 1024
else
  echo "fuzz: the targets were not built (see the sanitizer stage)"; failed=$((failed + 1))
fi

# The image, built and run as a sidecar with podman: each checked step counts. A machine where
# podman cannot run containers fails its steps; it is never skipped.
echo "== container image (podman): build, serve, access log, metrics, health check, reload, drain"
mkdir -p build
bash scripts/test-container >build/test-container.log 2>&1
status=$?
grep -v '^ok ' build/test-container.log
line=$(grep -E '^container: [0-9]+ passed, [0-9]+ failed' build/test-container.log | tail -1)
if [[ -z "$line" ]]; then
  echo "container: no count from scripts/test-container (exit status $status)"
  failed=$((failed + 1))
else
  good=$(sed -E 's/^container: ([0-9]+) passed.*/\1/' <<<"$line")
  bad=$(sed -E 's/^container: [0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
  passed=$((passed + good))
  failed=$((failed + bad))
  if [[ $status -ne 0 && $bad -eq 0 ]]; then
    echo "container: exit status $status with no failed step"; failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
