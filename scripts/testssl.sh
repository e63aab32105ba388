#!/usr/bin/env bash
# Scans a Sluice TLS listener with testssl.sh (Debian: apt-get install testssl.sh) and sums up
# what it found. In a temporary folder it makes a throwaway CA with an ECDSA (P-256) and an RSA
# (2048) leaf for "localhost" and 127.0.0.1, starts Sluice with one TLS listener in default
# settings (both leaves, each with a stapled OCSP response) on a free 127.0.0.1 port in front of
# a python3 http.server backend, and runs
#   testssl --quiet --color 0 --warnings off --severity LOW --add-ca CA --jsonfile-pretty OUT
# against it. The throwaway PKI looks like a public one so that testssl judges the server, not
# the CA: --add-ca makes testssl trust the CA (else: chain of trust CRITICAL), the leaves have
# 128-bit serials (else: LOW) and an OCSP URI (else: no revocation info, HIGH; nothing answers
# there, and testssl does not phone out), and the OCSP responses say "good" for 7 days.
#
#   bash scripts/testssl.sh [SLUICE_BIN [JSON_OUT]]
#
# SLUICE_BIN: default $SLUICE_BIN, else build/core/sluice of this repository. JSON_OUT: where to
# keep testssl's JSON (default: deleted with the temporary folder; KEEP_TMP=1 keeps the folder,
# with the certificates and the logs of testssl, Sluice and the backend). Prints the number of
# findings per severity (LOW and above: testssl leaves out OK and INFO with --severity LOW),
# every finding rated MEDIUM or above, then the LOW ones. A full scan takes about two minutes.
# Exits 1 when any finding is HIGH or CRITICAL, 2 when the scan could not run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sluice=${1:-${SLUICE_BIN:-$root/build/core/sluice}}
json_out=${2:-}
testssl=$(command -v testssl || command -v testssl.sh) || {
  echo "testssl.sh is not installed (Debian: apt-get install testssl.sh)" >&2
  exit 2
}
[[ -x "$sluice" ]] || { echo "no sluice binary at $sluice" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-testssl.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
wait_for_port() {  # up to 10 s
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# --- a throwaway PKI: CA, two leaves, an OCSP response for each --------------------------------
pki() {
  cd "$tmp"
  local ocsp_port=$1
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Sluice testssl CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt
  openssl ecparam -name prime256v1 -genkey -noout -out ecdsa.key
  openssl genrsa -out rsa.key 2048 2>/dev/null
  local serial name usage not_after
  : >index.txt
  echo "unique_subject = no" >index.txt.attr  # both leaves are CN=localhost
  for name in ecdsa rsa; do
    usage=digitalSignature
    [[ $name == rsa ]] && usage=digitalSignature,keyEncipherment
    cat >"$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,$usage
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
authorityInfoAccess=OCSP;URI:http://127.0.0.1:$ocsp_port/
EOF
    openssl req -new -key "$name.key" -subj "/CN=localhost" -out "$name.csr"
    serial=4$(openssl rand -hex 16 | cut -c2- | tr a-f A-F)  # 128 bits, as public CAs use
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$serial" -days 365 \
      -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    # A "good" entry in the CA's database, then the response a responder would give for it.
    not_after=$(openssl x509 -in "$name.crt" -noout -enddate | cut -d= -f2)
    printf 'V\t%s\t\t%s\tunknown\t/CN=localhost\n' \
      "$(date -u -d "$not_after" +%y%m%d%H%M%SZ)" "$serial" >>index.txt
    openssl ocsp -index index.txt -rsigner ca.crt -rkey ca.key -CA ca.crt -issuer ca.crt \
      -cert "$name.crt" -ndays 7 -respout "$name.ocsp.der"
  done
}
(set -e; pki "$(free_port)") >"$tmp/pki.log" 2>&1
if [[ $? -ne 0 || ! -s "$tmp/rsa.ocsp.der" ]]; then
  echo "making the throwaway certificates failed:" >&2
  cat "$tmp/pki.log" >&2
  exit 2
fi

# --- a backend, Sluice in front of it ---------------------------------------------------------
backend_port=$(free_port)
mkdir -p "$tmp/www"
echo "hello from the testssl backend" >"$tmp/www/index.html"
python3 -m http.server "$backend_port" --bind 127.0.0.1 --directory "$tmp/www" \
  >"$tmp/backend.log" 2>&1 &
pids+=($!)
port=$(free_port)
cat >"$tmp/sluice.json" <<EOF
{
  "workers": 1,
  "listeners": [
    { "address": "127.0.0.1:$port",
      "tls": { "certificates": [
        { "cert": "ecdsa.crt", "key": "ecdsa.key", "ocsp": "ecdsa.ocsp.der" },
        { "cert": "rsa.crt", "key": "rsa.key", "ocsp": "rsa.ocsp.der" } ] } }
  ],
  "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:$backend_port" } ] } },
  "routes": [ { "upstream": "app" } ]
}
EOF
"$sluice" --check "$tmp/sluice.json" || exit 2
"$sluice" -c "$tmp/sluice.json" 2>"$tmp/sluice.log" &
pids+=($!)
if ! wait_for_port "$backend_port" || ! wait_for_port "$port"; then
  echo "sluice or the backend did not start; sluice's log:" >&2
  cat "$tmp/sluice.log" >&2
  exit 2
fi

# --- the scan ---------------------------------------------------------------------------------
version=$("$testssl" --version 2>&1 | grep -oE 'testssl(\.sh)? +[0-9][^ ]*' | head -1)
echo "scanning 127.0.0.1:$port with ${version:-testssl} (this takes a few minutes)"
json=$tmp/testssl.json
"$testssl" --quiet --color 0 --warnings off --severity LOW --add-ca "$tmp/ca.crt" \
  --jsonfile-pretty "$json" "127.0.0.1:$port" >"$tmp/testssl.log" 2>&1
status=$?
[[ -n "$json_out" ]] && cp "$json" "$json_out" 2>/dev/null
if [[ ! -s "$json" ]]; then
  echo "testssl wrote no JSON (exit status $status); its output:" >&2
  tail -n 40 "$tmp/testssl.log" >&2
  exit 2
fi
if ! kill -0 "${pids[1]}" 2>/dev/null; then
  echo "warning: sluice exited during the scan; its log:" >&2
  tail -n 20 "$tmp/sluice.log" >&2
fi

# --- the summary ------------------------------------------------------------------------------
python3 - "$json" <<'EOF'
import json, sys

order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK"]
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)

findings = []
def walk(node):
    if isinstance(node, dict):
        if "id" in node and "severity" in node:
            findings.append(node)
        for value in node.values():
            walk(value)
    elif isinstance(node, list):
        for value in node:
            walk(value)
walk(data.get("scanResult", data))

counts = {}
for f in findings:
    counts[f["severity"]] = counts.get(f["severity"], 0) + 1
print("findings by severity (LOW and above):",
      ", ".join(f"{s} {counts.get(s, 0)}" for s in order if s in counts or s in order[:4]))
serious = [f for f in findings if f["severity"] in ("CRITICAL", "HIGH", "MEDIUM")]
serious.sort(key=lambda f: order.index(f["severity"]))
for f in serious:
    print(f"  {f['severity']:8} {f['id']}: {f.get('finding', '')}")
for f in findings:
    if f["severity"] == "LOW":
        print(f"  LOW      {f['id']}: {f.get('finding', '')}")
sys.exit(1 if any(f["severity"] in ("CRITICAL", "HIGH") for f in findings) else 0)
EOF
