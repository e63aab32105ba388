#!/usr/bin/env bash
# Builds Sluice (release) and runs it in the foreground on a config file, by default
# examples/sluice.json. With that default config it also starts two small demo backends on
# 127.0.0.1:9001 and :9002 (python3's http.server) so the example answers at once:
#   curl http://127.0.0.1:8080/
# Ctrl-C (SIGINT) drains and stops Sluice and the demo backends.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/sluice.json}

bash scripts/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target sluice >/dev/null

pids=()
# Each demo backend runs in its own process group, so stopping it stops whatever it started.
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null; done; true; }
trap cleanup EXIT
if [[ "$config" == "examples/sluice.json" ]]; then
  for pair in "9001 examples/demo/a" "9002 examples/demo/b"; do
    set -- $pair
    setsid python3 -m http.server "$1" --bind 127.0.0.1 --directory "$2" >/dev/null 2>&1 &
    pids+=($!)
  done
  for port in 9001 9002; do  # up to 10 s for each to accept
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  done
  echo "demo backends on 127.0.0.1:9001 and :9002; try: curl http://127.0.0.1:8080/" >&2
fi
build/core/sluice --check "$config" >/dev/null
build/core/sluice -c "$config"
