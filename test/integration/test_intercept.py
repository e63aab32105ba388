"""Transparent interception ("mode": "intercept") for real, in network namespaces this test
creates: a client namespace, a router namespace running Sluice behind an nftables `redirect`
rule, and an origin namespace, joined by two veth pairs. The client makes a plain request to the
origin's address, configured with no proxy, and the answer comes back through Sluice. Skipped,
saying why, where the machine does not allow namespaces (not root, no `ip` or `nft`)."""

import os
import secrets
import shutil
import subprocess
import time

import pytest

from harness import sluice_binary, workdir

pytestmark = pytest.mark.timeout(60)

ORIGIN_SERVER = r"""
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("origin saw %s via=%s xff=%s" % (self.path, self.headers.get("Via"),
                self.headers.get("X-Forwarded-For"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], 80), Handler).serve_forever()
"""


def run(*args: str, ns: str | None = None, stdin: str | None = None) -> str:
    command = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=15)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def why_not_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft", "curl"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    probe = f"slprobe{secrets.token_hex(3)}"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "netns", "del", probe)
    except (RuntimeError, OSError) as e:
        return f"this machine forbids network namespaces ({e})"
    return None


class Network:
    """client (10.77.1.2) -- router (10.77.1.1 | 10.77.2.1, Sluice on :3129) -- origin
    (10.77.2.2:80); the router redirects TCP port 80 arriving from the client to Sluice."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.client, self.router, self.origin = (f"sl{tag}{n}" for n in "cro")
        self.links = {"c": f"vc{tag}", "rc": f"vrc{tag}", "o": f"vo{tag}", "ro": f"vro{tag}"}
        self.processes: list[subprocess.Popen] = []

    def __enter__(self):
        try:
            self._build()
        except Exception:
            self.__exit__()
            raise
        return self

    def _build(self):
        l = self.links
        for ns in (self.client, self.router, self.origin):
            run("ip", "netns", "add", ns)
            run("ip", "link", "set", "lo", "up", ns=ns)
        run("ip", "link", "add", l["c"], "type", "veth", "peer", "name", l["rc"])
        run("ip", "link", "add", l["o"], "type", "veth", "peer", "name", l["ro"])
        for link, ns in ((l["c"], self.client), (l["rc"], self.router), (l["o"], self.origin),
                         (l["ro"], self.router)):
            run("ip", "link", "set", link, "netns", ns)
        for ns, link, address in ((self.client, l["c"], "10.77.1.2/24"),
                                  (self.router, l["rc"], "10.77.1.1/24"),
                                  (self.router, l["ro"], "10.77.2.1/24"),
                                  (self.origin, l["o"], "10.77.2.2/24")):
            run("ip", "addr", "add", address, "dev", link, ns=ns)
            run("ip", "link", "set", link, "up", ns=ns)
        run("ip", "route", "add", "default", "via", "10.77.1.1", ns=self.client)
        run("ip", "route", "add", "default", "via", "10.77.2.1", ns=self.origin)
        run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", ns=self.router)
        run("nft", "-f", "-", ns=self.router, stdin=(
            "table ip intercept {\n"
            "  chain prerouting {\n"
            "    type nat hook prerouting priority dstnat; policy accept;\n"
            f"    iifname \"{l['rc']}\" tcp dport 80 redirect to :3129\n"
            "  }\n"
            "}\n"))

    def start(self, ns: str, *command: str, log: str) -> subprocess.Popen:
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *command],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.processes.append(proc)
        return proc

    def __exit__(self, *exc):
        for proc in self.processes:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in (self.client, self.router, self.origin):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def client_get(net: Network, url: str) -> tuple[int, str]:
    out = run("curl", "-s", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", url,
              ns=net.client)
    body, _, status = out.rpartition("\n")
    return int(status or 0), body


@pytest.fixture(scope="module")
def intercepted():
    reason = why_not_namespaces()
    if reason:
        pytest.skip(f"interception test skipped: {reason}")
    with Network() as net:
        folder = workdir()
        config = os.path.join(folder, f"intercept-{net.router}.json")
        with open(config, "w") as f:
            f.write('{"workers": 2, "listeners": [{"address": "0.0.0.0:3129", "mode": "intercept",'
                    ' "forward": {"allow": ["10.77.2.2:80"]}}]}')
        origin_log = os.path.join(folder, f"origin-{net.origin}.log")
        net.start(net.origin, "/usr/bin/python3", "-c", ORIGIN_SERVER, "10.77.2.2", log=origin_log)
        log = os.path.join(folder, f"sluice-{net.router}.log")
        net.start(net.router, sluice_binary(), "-c", config, log=log)
        assert wait_for(lambda: "sluice started" in open(log).read(), 10), open(log).read()
        assert wait_for(lambda: run("ss", "-ltn", ns=net.origin).find("10.77.2.2:80") >= 0, 10)
        yield net, log


def test_a_plain_request_to_the_origin_is_answered_through_the_proxy(intercepted):
    net, log = intercepted
    status, body = client_get(net, "http://10.77.2.2/hello")
    assert status == 200
    assert body == "origin saw /hello via=1.1 sluice xff=10.77.1.2"
    assert wait_for(lambda: '"backend":"10.77.2.2:80"' in open(log).read(), 3)


def test_an_intercepted_destination_outside_the_allow_list_is_refused(intercepted):
    net, _ = intercepted
    status, body = client_get(net, "http://10.77.2.9/")  # redirected like any port-80 traffic
    assert status == 403
    assert "10.77.2.9:80" in body


def test_a_connection_made_to_the_proxy_itself_is_not_sent_back_to_it(intercepted):
    net, _ = intercepted
    status, body = client_get(net, "http://10.77.1.1:3129/")
    assert status == 403
    assert "this proxy itself" in body
