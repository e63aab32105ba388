"""Command line: --version, --help, --check, --probe, and starting with a bad or missing config."""

import glob
import hashlib
import os
import re
import shutil
import time

from harness import (Backend, BoundBackend, ClosedPort, Sluice, assert_status, hang, ok,
                     proxy_config, run_cli, workdir, write_file)
from tls_material import make_material

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The configuration from the README, laid out so each thing a test breaks is on its own line.
EXAMPLE_CONFIG = """\
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "app": {
      "backends": [
        { "address": "127.0.0.1:9001" },
        { "address": "127.0.0.1:9002" }
      ],
      "keepalive": 64, "keepalive_timeout_ms": 60000, "retries": 1
    }
  },
  "routes": [
    { "upstream": "app" }
  ],
  "timeouts": { "client_header_ms": 10000, "client_idle_ms": 60000, "upstream_connect_ms": 2000,
                "upstream_response_ms": 60000, "drain_ms": 30000 },
  "limits": { "request_line_bytes": 8192, "header_bytes": 32768, "header_count": 100 }
}
"""


def broken_example(old: str, new: str) -> tuple[str, int]:
    """The example config with `old` replaced by `new`; returns (path, line of the change)."""
    assert EXAMPLE_CONFIG.count(old) == 1, old
    text = EXAMPLE_CONFIG.replace(old, new)
    line = text[:text.index(new)].count("\n") + 1
    return write_file(f"broken-{line}.json", text), line


def column_of(path: str, line: int, mark: str) -> int:
    """The 1-based column (in characters) where `mark` starts on `line` of the file at `path`."""
    with open(path, encoding="utf-8") as f:
        text = f.read().splitlines()[line - 1]
    assert mark in text, (mark, text)
    return text.index(mark) + 1


def is_sluice_config(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        return '"listeners"' in f.read()


def assert_error_names_line(result, line: int) -> None:
    assert result.returncode == 1, f"expected exit status 1, got {result!r}"
    assert re.search(rf"\bline\W{{0,3}}{line}\b", result.output, re.IGNORECASE), \
        f"error does not name line {line}: {result!r}"


def test_version_prints_a_version_number():
    result = run_cli("--version")
    assert result.returncode == 0, repr(result)
    assert re.search(r"\d+\.\d+\.\d+", result.output), f"no version number: {result!r}"


def test_help_lists_the_options():
    result = run_cli("--help")
    assert result.returncode == 0, repr(result)
    for option in ("--config", "--check", "--probe", "--version"):
        assert option in result.output, f"--help does not mention {option}: {result!r}"


def with_certificates(example: str) -> str:
    """A copy of a shipped example beside a certs/ folder holding the throwaway certificates
    docs/tls.md tells an operator to make (no key material lives in the repository)."""
    folder = os.path.join(workdir(), "examples", os.path.basename(example)[:-5])
    os.makedirs(os.path.join(folder, "certs"))
    m = make_material()
    for name, source in {"site-ecdsa.crt": m.site_ecdsa_crt, "site-ecdsa.key": m.site_ecdsa_key,
                         "site-rsa.crt": m.site_rsa_crt, "site-rsa.key": m.site_rsa_key,
                         "backend-ca.crt": m.ca_crt}.items():
        shutil.copy(source, os.path.join(folder, "certs", name))
    return shutil.copy(example, folder)


def test_check_accepts_the_example_config():
    shipped = [p for p in glob.glob(os.path.join(REPO, "examples", "**", "*.json"), recursive=True)
               if is_sluice_config(p)]
    for path in [write_file("example.json", EXAMPLE_CONFIG), *map(with_certificates, shipped)]:
        result = run_cli("--check", path)
        assert result.returncode == 0, f"--check {path}: {result!r}"


def kubernetes_config() -> str:
    """The sluice.json block of examples/kubernetes/configmap.yaml, as YAML reads it (a literal
    block scalar: its indentation removed, one final line break)."""
    path = os.path.join(REPO, "examples", "kubernetes", "configmap.yaml")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "sluice.json: |") + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line[indent:])
    return "\n".join(block).rstrip("\n") + "\n"


def test_check_accepts_the_kubernetes_example_config_and_its_checksum_is_current():
    text = kubernetes_config()
    result = run_cli("--check", write_file("kubernetes.json", text))
    assert result.returncode == 0, f"configmap.yaml's sluice.json: {result!r}"
    with open(os.path.join(REPO, "examples", "kubernetes", "deployment.yaml"),
              encoding="utf-8") as f:
        annotation = re.search(r'checksum/config: "([0-9a-f]{64})"', f.read())
    assert annotation, "deployment.yaml has no checksum/config annotation"
    assert annotation.group(1) == hashlib.sha256(text.encode()).hexdigest(), \
        "deployment.yaml's checksum/config is not the sha256 of configmap.yaml's sluice.json"


def test_check_rejects_malformed_json_naming_the_line():
    path, line = broken_example('"workers": 2,', '"workers": 2,,')
    assert_error_names_line(run_cli("--check", path), line)


def test_check_rejects_a_route_to_an_unknown_upstream_naming_the_line():
    path, line = broken_example('{ "upstream": "app" }', '{ "upstream": "nowhere" }')
    assert_error_names_line(run_cli("--check", path), line)


def test_check_rejects_a_backend_weight_of_zero_naming_the_line():
    path, line = broken_example('{ "address": "127.0.0.1:9002" }',
                                '{ "address": "127.0.0.1:9002", "weight": 0 }')
    assert_error_names_line(run_cli("--check", path), line)


def test_check_names_the_column_of_a_json_syntax_error():
    path, line = broken_example('"workers": 2,', '"workers": 2,,')
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    column = column_of(path, line, ",,") + 1  # the second comma
    assert f"line {line}, column {column}: invalid JSON: " in result.output, repr(result)


def test_check_suggests_the_key_a_misspelt_one_was_meant_to_be_with_line_and_column():
    path, line = broken_example('{ "address": "127.0.0.1:9002" }', '{ "adress": "127.0.0.1:9002" }')
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    column = column_of(path, line, '"adress"')
    expected = (f'line {line}, column {column}: /upstreams/app/backends/1/adress: '
                'unknown key "adress" (did you mean "address"?)')
    assert expected in result.output, repr(result)


def test_check_points_a_backend_host_name_at_the_dns_form():
    path, line = broken_example('{ "address": "127.0.0.1:9001" }',
                                '{ "address": "app.internal:8080" }')
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    column = column_of(path, line, '"app.internal:8080"')
    assert f"line {line}, column {column}: /upstreams/app/backends/0/address: " in result.output, \
        repr(result)
    assert 'a backend named by DNS is written {"dns": "app.internal:8080"}' in result.output, \
        repr(result)


def test_check_says_a_listener_needs_a_numeric_ip():
    path, line = broken_example('"address": "127.0.0.1:8080"', '"address": "localhost:8080"')
    result = run_cli("--check", path)
    assert_error_names_line(result, line)
    assert 'a listener needs a numeric IP address: "0.0.0.0:8080"' in result.output, repr(result)


def test_check_rejects_a_missing_file():
    result = run_cli("--check", os.path.join(workdir(), "absent.json"))
    assert result.returncode == 1, repr(result)


def test_missing_config_file_exits_nonzero_with_a_clear_message():
    missing = os.path.join(workdir(), "no-such-config.json")
    result = run_cli("-c", missing)
    assert result.returncode not in (0, None), repr(result)
    assert "no-such-config.json" in result.output or "no such file" in result.output.lower(), \
        f"message does not say which file is missing: {result!r}"


def test_long_config_option_starts_the_proxy():
    with Backend(ok(b"long option")) as backend, \
            Sluice(proxy_config(backend), config_flag="--config") as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == b"long option"


# --------------------------------------------------------------------------- --probe URL

def timed_probe(url: str):
    """Runs `sluice --probe URL`; returns (result, seconds it took)."""
    start = time.monotonic()
    result = run_cli("--probe", url)
    return result, time.monotonic() - start


def assert_one_line(result) -> None:
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line of output: {result!r}"


def test_probe_exits_0_on_a_200():
    with Backend(ok(b"alive")) as backend:
        result, _ = timed_probe(f"http://{backend.address}/healthz?full=1")
        requests = list(backend.requests)
    assert result.returncode == 0, repr(result)
    assert_one_line(result)
    assert "200" in result.output, repr(result)
    assert [(r.method, r.target) for r in requests] == [("GET", "/healthz?full=1")], requests
    assert requests[0].header("host") == backend.address, requests[0].headers


def test_probe_exits_0_on_a_200_over_ipv6():
    with BoundBackend(ok(), host="::1") as backend:
        result, _ = timed_probe(f"http://{backend.address}/healthz")
    assert result.returncode == 0, repr(result)


def test_probe_exits_1_on_a_503_naming_the_status():
    with Backend(ok(b"draining", status=503)) as backend:
        result, _ = timed_probe(f"http://{backend.address}/healthz")
    assert result.returncode == 1, repr(result)
    assert_one_line(result)
    assert "503" in result.output, repr(result)


def test_probe_exits_1_on_a_redirect():
    with Backend(ok(status=302, headers=[("Location", "/elsewhere")])) as backend:
        result, _ = timed_probe(f"http://{backend.address}/")
    assert result.returncode == 1, repr(result)
    assert "302" in result.output, repr(result)


def test_probe_exits_1_quickly_when_nothing_listens():
    with ClosedPort() as port:
        result, seconds = timed_probe(f"http://{port.address}/healthz")
    assert result.returncode == 1, repr(result)
    assert_one_line(result)
    assert "refused" in result.output.lower(), repr(result)
    assert seconds < 1.0, f"took {seconds:.2f} s to see a refused connection"


def test_probe_exits_1_when_no_answer_comes_within_its_timeout():
    with Backend(hang(), strict=False) as backend:
        result, seconds = timed_probe(f"http://{backend.address}/healthz")
    assert result.returncode == 1, repr(result)
    assert_one_line(result)
    assert "no response within" in result.output, repr(result)
    assert 1.5 < seconds < 4.0, f"gave up after {seconds:.2f} s, expected about 2 s"


def test_probe_exits_1_when_the_backend_closes_without_an_answer():
    with Backend(lambda ex: ex.close(), strict=False) as backend:
        result, _ = timed_probe(f"http://{backend.address}/healthz")
    assert result.returncode == 1, repr(result)
    assert_one_line(result)


def test_probe_refuses_urls_it_must_not_reach():
    for url in ("http://192.0.2.1:9901/healthz",  # not loopback: never connected to
                "http://localhost:9901/healthz",  # a name: never resolved
                "https://127.0.0.1:9901/healthz", "127.0.0.1:9901/healthz",
                "http://127.0.0.1:0/healthz"):
        result, seconds = timed_probe(url)
        assert result.returncode == 1, f"--probe {url}: {result!r}"
        assert_one_line(result)
        assert seconds < 1.0, f"--probe {url} took {seconds:.2f} s"


def test_probe_without_a_url_is_a_usage_error():
    result = run_cli("--probe")
    assert result.returncode == 2, repr(result)
