#!/usr/bin/env bash
# Checks that every include of a project header points down the layers of docs/architecture.md.
# Each row: a folder, then the folders its files may include (its own is always allowed).
# Prints one line per folder and every upward include; exits 1 when there is one.
set -uo pipefail
cd "$(dirname "$0")/.."

layers=(
  "core/io:"
  "core/http:core/io"
  "balancer:"
  "conf:balancer"
  "tls:core/io conf"
  "health:core/io core/http balancer conf"
  "core/proxy:core/io core/http balancer conf health"
  "core/forward:core/io core/http balancer conf health core/proxy"
  "core/cache:core/io core/http balancer conf core/proxy"
  "core/accesslog:core/io core/http conf core/proxy"
  "core/metrics:core/io core/http balancer conf core/proxy"
  "core/admin:core/io core/http balancer conf health core/proxy core/metrics"
  "core/server:core/io core/http balancer conf tls health core/proxy core/forward core/cache core/accesslog core/metrics core/admin"
)

bad=0
for row in "${layers[@]}"; do
  folder=${row%%:*}
  allowed="$folder ${row#*:}"
  files=0
  wrong=0
  while IFS= read -r file; do
    files=$((files + 1))
    while IFS= read -r inc; do
      target=$(dirname "$inc")
      [[ $target == . ]] && continue  # generated headers (version.h)
      ok=0
      for a in $allowed; do [[ $target == "$a" ]] && ok=1; done
      if ((!ok)); then
        echo "  upward include: $file includes \"$inc\""
        wrong=$((wrong + 1))
      fi
    done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$file")
  done < <(find "$folder" -maxdepth 1 -name '*.h' -o -maxdepth 1 -name '*.cpp' | sort)
  printf '%-12s may include %-50s %3d files, %d upward\n' "$folder" "${row#*:}" "$files" "$wrong"
  bad=$((bad + wrong))
done
# Every folder with sources must have a row, so a new module cannot slip past the check.
for dir in $(find core balancer conf health tls -name '*.cpp' -printf '%h\n' 2>/dev/null | sort -u); do
  found=0
  for row in "${layers[@]}"; do [[ ${row%%:*} == "$dir" ]] && found=1; done
  ((found)) || { echo "  no layer row for $dir"; bad=$((bad + 1)); }
done
if ((bad)); then
  echo "layers: $bad problem(s)"
  exit 1
fi
echo "layers: every include points down"
