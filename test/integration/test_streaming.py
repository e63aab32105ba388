"""Bodies stream through without being held whole, and many clients are served at once."""

import json
import time
import zlib

import harness
from harness import (Backend, MiB, Sluice, assert_status, count_upload, echo_target, ok,
                     pattern_crc, pattern_stream, proxy_config, request_bytes, stream)

RSS_GROWTH_LIMIT = 32 * MiB


class PeakRss:
    """Samples a process's RSS at most every `interval` seconds, keeping the highest."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.baseline = self.peak = harness.rss_bytes(pid)
        self._next = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self.peak = max(self.peak, harness.rss_bytes(self.pid))
            self._next = now + self.interval

    def growth(self) -> int:
        return self.peak - self.baseline


def test_large_response_to_slow_reader_keeps_memory_bounded():
    total, slow_phase_s = 200 * MiB, 6.0

    def handler(ex):
        (stream(total) if ex.request.target == "/big" else ok())(ex)

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy:
        assert_status(proxy.get("/warm-up"), 200)
        rss = PeakRss(proxy.pid)
        with proxy.client(timeout=30) as client:
            client.request("GET", "/big")
            response = client.read_head()
            assert_status(response, 200)
            crc = client.recv_crc(total, slow_for=slow_phase_s, pause=0.01, each=rss.sample)
    assert crc == pattern_crc(total), "body corrupted on the way"
    assert rss.growth() < RSS_GROWTH_LIMIT, \
        f"sluice RSS grew by {rss.growth() / MiB:.1f} MiB relaying to a slow reader"


def test_large_upload_is_streamed_intact():
    total = 100 * MiB
    with Backend(count_upload()) as backend, Sluice(proxy_config(backend)) as proxy:
        assert_status(proxy.get("/warm-up"), 200)
        rss = PeakRss(proxy.pid)
        with proxy.client(timeout=30) as client:
            client.send(request_bytes("POST", "/upload", [("Content-Length", str(total))]))
            crc = 0
            for data in pattern_stream(total, MiB):
                client.send(data)
                crc = zlib.crc32(data, crc)
                rss.sample()
            response = client.read_final_response()
    assert_status(response, 200)
    assert json.loads(response.body) == {"bytes": total, "crc32": crc}
    assert rss.growth() < RSS_GROWTH_LIMIT, \
        f"sluice RSS grew by {rss.growth() / MiB:.1f} MiB relaying an upload"


def test_large_upload_to_slow_reading_backend_keeps_memory_bounded():
    # About 8 s of slow reading, the body queued in Sluice and in the kernel meanwhile.
    total, rate = 64 * MiB, 8 * MiB
    with Backend(count_upload(rate=rate, piece=64 * 1024)) as backend, \
            Sluice(proxy_config(backend)) as proxy:
        assert_status(proxy.get("/warm-up"), 200)
        rss = PeakRss(proxy.pid)
        with proxy.client(timeout=30) as client:
            started = time.monotonic()
            client.send(request_bytes("POST", "/upload", [("Content-Length", str(total))]))
            crc = 0
            for data in pattern_stream(total, 256 * 1024):
                client.send(data)
                crc = zlib.crc32(data, crc)
                rss.sample()
            sent_after = time.monotonic() - started
            response = client.read_final_response()
            rss.sample()
    assert_status(response, 200)
    assert json.loads(response.body) == {"bytes": total, "crc32": crc}
    assert rss.growth() < RSS_GROWTH_LIMIT, \
        (f"sluice RSS grew by {rss.growth() / MiB:.1f} MiB relaying an upload to a backend "
         f"reading {rate / MiB:.0f} MiB/s (the client had sent it all after {sent_after:.1f} s)")


def test_thousand_concurrent_keepalive_clients_are_all_served():
    clients, requests_each = 1000, 2
    harness.raise_fd_limit(3 * clients + 500)
    with Backend(echo_target()) as backend, Sluice(proxy_config(backend)) as proxy:
        results = harness.run_keepalive_clients(proxy.port, clients, requests_each, timeout=60)
    wrong = [(i, j, r.status, r.body[:40]) for i, responses in enumerate(results)
             for j, r in enumerate(responses)
             if r.status != 200 or r.body != f"/c{i}/r{j}".encode()]
    assert not wrong, f"{len(wrong)} wrong responses, first ones: {wrong[:5]}"
    assert len(backend.requests) == clients * requests_each
