"""SIGHUP changes the listeners and the worker count: an added listener opens, a removed one
refuses new connections while the connections it had finish, a kept one is not touched, an
address in use fails the reload whole, and workers start and retire with no request lost and
no counter going back."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
import zlib

from harness import (HOST, Backend, Client, LoadClients, MiB, Sluice, assert_status, free_port,
                     ok, pattern_crc, proxy_config, stream, upgrade_echo, wait_for_log)
from test_admin import admin, listening_ports, samples, with_admin

UPGRADE_HEADERS = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                   ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                   ("Sec-WebSocket-Version", "13")]


def routes(**by_path):
    """A backend handler that picks a handler by the request's path, ok() for any other."""
    fallback = ok()

    def handler(ex):
        path = ex.request.target.split("?")[0]
        return by_path.get(path.strip("/"), fallback)(ex)
    return handler


def reload(proxy: Sluice, listeners: list[str], **changes) -> str:
    """Rewrites the config with `listeners` (the first is the proxy's own) and `changes`,
    sends SIGHUP and waits for the outcome: returns the log written since."""
    start = len(proxy.log_text())
    config = dict(proxy.config, **changes)
    config["listeners"] = [{"address": address} for address in listeners]
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)
    proxy.send_signal(signal.SIGHUP)
    assert wait_for_log(proxy, r"config reloaded|reload of .* failed", 5, start=start), \
        proxy.log_tail()
    proxy.config = config
    return proxy.log_text()[start:]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def serves(address: str, timeout: float = 3.0) -> bool:
    """A GET on a fresh connection to `address` is answered 200 within `timeout` (the workers
    take a reload's new listeners a moment after the main thread logs it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Client(port_of(address), 2.0) as client:
                return client.exchange("GET", "/probe").status == 200
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def refuses(address: str, timeout: float = 3.0) -> bool:
    """Connections to `address` are refused within `timeout`. A connection reset meanwhile is
    one the kernel had queued on a socket as it closed (docs/operations.md): not yet the answer,
    so the check goes on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port_of(address)), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            pass
        time.sleep(0.02)
    return False


def worker_threads(pid: int) -> int:
    """Threads named as workers (the process has others: the log writer, libuv's pool)."""
    count = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as comm:
                count += comm.read().strip() == "sluice-worker"
        except FileNotFoundError:  # the thread ended while listed
            pass
    return count


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_listener_added_by_reload_serves_and_is_named_in_the_access_log():
    with Backend(ok(b"hello")) as backend, \
            Sluice(proxy_config(backend), separate_stdout=True) as proxy:
        added = f"{HOST}:{free_port()}"
        text = reload(proxy, [proxy.address, added])
        assert f"listener {added} added" in text, text
        assert serves(added), proxy.log_tail()
        with Client(port_of(added)) as client:
            response = client.exchange("GET", "/on-the-new-one")
        assert_status(response, 200)
        assert response.body == b"hello"
        assert_status(proxy.get("/on-the-old-one"), 200)
        assert wait_until(lambda: "/on-the-old-one" in proxy.stdout_text(), 3)
    lines = [json.loads(line) for line in proxy.stdout_text().splitlines()]
    by_target = {line["target"]: line["listener"] for line in lines}
    assert by_target["/on-the-new-one"] == added, lines
    assert by_target["/on-the-old-one"] == proxy.address, lines


def read_crc(client: Client, total: int, *, rate: float, progress: list | None = None,
             hold_at: int = 0, hold: threading.Event | None = None) -> int:
    """Reads `total` body bytes at about `rate` bytes/s and returns their CRC-32; with `hold`,
    waits at `hold_at` bytes until it is set. `progress[0]` follows the bytes read."""
    started, got, crc = time.monotonic(), 0, 0
    while got < total:
        if hold is not None and got >= hold_at and not hold.is_set():
            assert hold.wait(30), "held for 30 s"
        data = client.recv_some(min(total - got, 256 * 1024))
        assert data, f"connection closed after {got} of {total} bytes"
        got += len(data)
        crc = zlib.crc32(data, crc)
        if progress is not None:
            progress[0] = got
        if (ahead := got / rate - (time.monotonic() - started)) > 0:
            time.sleep(ahead)
    return crc


def test_a_removed_listener_refuses_new_connections_while_its_download_finishes():
    total = 32 * MiB
    with Backend(routes(big=stream(total))) as backend:
        with Sluice(proxy_config(backend, timeouts={"drain_ms": 20000})) as proxy:
            second = f"{HOST}:{free_port()}"
            reload(proxy, [proxy.address, second])
            assert serves(second), proxy.log_tail()
            with Client(port_of(second), timeout=10) as download:
                download.request("GET", "/big")
                assert_status(download.read_head(), 200)
                removed = threading.Event()
                result = {}
                reader = threading.Thread(target=lambda: result.update(crc=read_crc(
                    download, total, rate=16 * MiB, hold_at=MiB, hold=removed)))
                reader.start()
                text = reload(proxy, [proxy.address])
                removed.set()
                assert f"listener {second} removed" in text, text
                assert refuses(second), "the removed listener still accepts connections"
                assert serves(proxy.address), "the kept listener stopped serving"
                reader.join(20)
                assert result.get("crc") == pattern_crc(total), \
                    f"the download did not complete whole: {result}"
                # Its exchange is done, and the connection of a removed listener closes.
                assert download.wait_closed(3.0), "the drained connection stayed open"


def test_a_removed_listeners_tunnel_lasts_until_the_drain_deadline_and_idle_ones_close():
    drain_s = 0.8
    with Backend(routes(ws=upgrade_echo())) as backend, \
            Sluice(proxy_config(backend, timeouts={"drain_ms": int(drain_s * 1000)})) as proxy:
        second = f"{HOST}:{free_port()}"
        reload(proxy, [proxy.address, second])
        assert serves(second), proxy.log_tail()
        with Client(port_of(second)) as idle, Client(port_of(second)) as tunnel, \
                proxy.client() as kept:
            assert_status(idle.exchange("GET", "/idle"), 200)
            assert_status(kept.exchange("GET", "/kept"), 200)
            tunnel.request("GET", "/ws", UPGRADE_HEADERS)
            assert_status(tunnel.read_final_response(), 101)
            text = reload(proxy, [proxy.address])
            removed_at = time.monotonic()
            assert f"listener {second} removed" in text, text
            assert idle.wait_closed(0.5), "an idle connection of the removed listener stayed open"
            tunnel.send(b"still there")
            assert tunnel.recv_exact(11) == b"still there"
            assert tunnel.wait_closed(drain_s + 2), "the tunnel outlived the drain deadline"
            lasted = time.monotonic() - removed_at
            assert lasted > drain_s - 0.2, f"the tunnel was closed after {lasted:.2f} s"
            assert wait_for_log(proxy, r"drain deadline passed for a removed listener; "
                                       r"closing 1 connections", 2), proxy.log_tail()
            # The kept listener's connection saw none of it.
            assert_status(kept.exchange("GET", "/kept-again"), 200)


def test_a_kept_listeners_keepalive_connection_works_across_reloads():
    with Backend(ok(b"kept")) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        assert client.exchange("GET", "/before").body == b"kept"
        second = f"{HOST}:{free_port()}"
        reload(proxy, [second, proxy.address])  # reordered too: the address is what counts
        assert serves(second)
        assert client.exchange("GET", "/after-add").body == b"kept"
        reload(proxy, [proxy.address])
        assert refuses(second)
        assert client.exchange("GET", "/after-remove").body == b"kept"
    on_kept = [r for r in backend.requests if r.target != "/probe"]
    assert [r.connection for r in on_kept] == [1, 1, 1], \
        "the kept connection's requests came on more than one backend connection"


def test_an_address_in_use_fails_the_reload_and_the_old_listeners_keep_serving():
    with Backend(ok(b"old")) as backend, Sluice(with_admin(proxy_config(backend))) as proxy, \
            socket.socket() as taken:
        taken.bind((HOST, 0))  # no SO_REUSEPORT: nobody may share this address
        taken.listen(1)
        taken_address = f"{HOST}:{taken.getsockname()[1]}"
        free = f"{HOST}:{free_port()}"
        text = reload(proxy, [proxy.address, free, taken_address], workers=3)
        assert "reload of" in text and "failed; keeping the running config" in text, text
        assert re.search(rf"cannot listen on {re.escape(taken_address)}: Address already in use",
                         text), text
        assert refuses(free, 0.5), "a listener of the failed reload opened"
        assert_status(proxy.get("/"), 200)
        metrics = samples(admin(proxy, "/metrics").body.decode())
        assert metrics['sluice_config_reloads_total{outcome="failed"}'] == 1
        assert json.loads(admin(proxy, "/status").body)["workers"] == 2
        # Nothing was left half done: the same change without the taken address goes through.
        text = reload(proxy, [proxy.address, free], workers=3)
        assert "config reloaded" in text, text
        assert serves(free)


def test_worker_count_up_and_down_while_requests_keep_succeeding():
    with Backend(ok()) as backend, \
            Sluice(with_admin(proxy_config(backend, workers=2))) as proxy:
        admin_port = int(proxy.config["admin"]["address"].rsplit(":", 1)[1])
        assert wait_until(lambda: worker_threads(proxy.pid) == 2, 5)  # started, and named
        with LoadClients(proxy.port, clients=4, retry_reused=True) as load:
            for workers in (4, 1, 3, 2):
                time.sleep(0.3)
                text = reload(proxy, [proxy.address], workers=workers)
                assert "config reloaded" in text, text
                expected = sorted([proxy.port] * workers + [admin_port] * workers)
                assert wait_until(lambda: listening_ports(proxy.pid) == expected, 5), \
                    f"{workers} workers: listening on {listening_ports(proxy.pid)}"
                assert wait_until(lambda: worker_threads(proxy.pid) == workers, 5), \
                    f"{workers} workers: {worker_threads(proxy.pid)} worker threads"
                status = json.loads(admin(proxy, "/status").body)
                assert status["workers"] == workers
            time.sleep(0.3)
        results = load.snapshot()
        failures = load.failures()
    assert len(results) > 100, f"only {len(results)} requests in the test"
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:3]}"


def test_a_reload_applies_new_limits_and_shares_them_by_the_new_worker_count():
    """max_connections 4 over two workers is 2 each; one worker after the reload takes all 4,
    and a lower limit after another reload stops it accepting again."""
    limits = {"max_connections": 4}
    with Backend(ok()) as backend, \
            Sluice(proxy_config(backend, workers=2, limits=limits)) as proxy:
        reload(proxy, [proxy.address], workers=1)
        assert wait_until(lambda: len(listening_ports(proxy.pid)) == 1, 5)
        clients = [proxy.client() for _ in range(4)]
        try:
            for c in clients:  # a one-worker share of 4 (a stale share of 2 would stop at 2)
                assert_status(c.exchange("GET", "/"), 200)
            reload(proxy, [proxy.address], workers=1, limits={**proxy.config["limits"],
                                                              "max_connections": 5})
            fifth = proxy.client()
            clients.append(fifth)
            assert_status(fifth.exchange("GET", "/fifth"), 200)
            reload(proxy, [proxy.address], workers=1, limits={**proxy.config["limits"],
                                                              "max_connections": 5 - 1})
            clients[0].close()  # 4 open, at the new limit
            time.sleep(0.2)
            sixth = proxy.client()
            clients.append(sixth)
            sixth.request("GET", "/sixth")
            time.sleep(0.5)
            assert "/sixth" not in backend.targets(), "served past the lowered limit"
            clients[1].close()
            sixth.sock.settimeout(5.0)
            assert_status(sixth.read_response(), 200)
        finally:
            for c in clients:
                c.close()


def counter_series(text: str) -> dict[str, float]:
    """Every sample of a counter family (its _total series, histogram buckets, sums, counts)."""
    counters = set(re.findall(r"^# TYPE (\S+) (?:counter|histogram)$", text, re.M))
    return {series: value for series, value in samples(text).items()
            if series.split("{")[0].removesuffix("_bucket").removesuffix("_sum")
            .removesuffix("_count") in counters}


def test_metrics_counters_never_go_back_when_workers_retire():
    with Backend(ok()) as backend, \
            Sluice(with_admin(proxy_config(backend, workers=4))) as proxy:
        for i in range(40):  # fresh connections: the kernel spreads them over the workers
            assert_status(proxy.get(f"/r{i}"), 200)
        before = counter_series(admin(proxy, "/metrics").body.decode())
        assert wait_until(lambda: worker_threads(proxy.pid) == 4, 5)
        text = reload(proxy, [proxy.address], workers=1)
        assert "config reloaded" in text, text
        assert wait_until(lambda: worker_threads(proxy.pid) == 1, 5), \
            "the retired workers were not joined"
        after = counter_series(admin(proxy, "/metrics").body.decode())
    went_back = {series: (value, after.get(series)) for series, value in before.items()
                 if after.get(series, -1) < value}
    assert not went_back, f"counters went back: {went_back}"
    served = 'sluice_requests_total{route="*/",upstream="app",class="2xx"}'
    assert before[served] == after[served] == 40


class Tunnel:
    """A WebSocket tunnel through the proxy to an echo backend, exchanging a message every
    `every` s in a thread until stop(); .errors holds what went wrong."""

    def __init__(self, port: int, every: float = 0.02):
        self.client = Client(port, timeout=5)
        self.client.request("GET", "/ws", UPGRADE_HEADERS)
        assert_status(self.client.read_final_response(), 101)
        self.every = every
        self.echoed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = f"message {self.echoed} ".encode() * 20
            try:
                self.client.send(message)
                echo = self.client.recv_exact(len(message))
            except (OSError, AssertionError) as error:
                self.errors.append(f"after {self.echoed} messages: {error!r}")
                return
            if echo != message:
                self.errors.append(f"message {self.echoed} came back as {echo[:60]!r}")
                return
            self.echoed += 1
            time.sleep(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


class ClosingLoad:
    """One thread sending GETs, each on a new connection (Connection: close), until stop():
    the new-connection half of the load. .results holds the status (None when it failed) and
    the error text of each request."""

    def __init__(self, port: int):
        self.port = port
        self.results: list[tuple[int | None, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with Client(self.port, 5.0) as client:
                    response = client.exchange("GET", "/fresh", [("Connection", "close")])
                self.results.append((response.status, ""))
            except OSError as error:
                self.results.append((None, repr(error)))

    def failures(self) -> list[tuple[int | None, str]]:
        return [r for r in self.results if r[0] != 200]


def test_twenty_reloads_under_load_keep_a_tunnel_and_a_slow_download_up():
    """The must-show: 20 reloads in a row, adding and removing a second listener and a second
    backend, while on the kept listener a WebSocket tunnel exchanges messages throughout, a
    100 MiB download read at about 20 MiB/s completes with every byte, and keep-alive requests
    and requests on new connections all succeed."""
    total = 100 * MiB
    handler = routes(ws=upgrade_echo(), big=stream(total))
    with Backend(handler) as backend, Backend(handler) as other, \
            Sluice(proxy_config(backend, workers=2)) as proxy:
        one_backend = proxy.config["upstreams"]
        two_backends = proxy_config(backend, other)["upstreams"]
        second = f"{HOST}:{free_port()}"
        reloads_done = threading.Event()
        progress = [0]
        result = {}
        download = Client(proxy.port, timeout=10)
        download.request("GET", "/big")
        assert_status(download.read_head(), 200)

        def read_download():
            try:
                # 90 MiB at 20 MiB/s, the last 10 MiB once the reloads are done, so that the
                # download spans all of them however long they take.
                result["crc"] = read_crc(download, total, rate=20 * MiB, progress=progress,
                                         hold_at=90 * MiB, hold=reloads_done)
            except (OSError, AssertionError) as error:
                result["error"] = repr(error)
        reader = threading.Thread(target=read_download, daemon=True)
        reader.start()
        tunnel = Tunnel(proxy.port)
        try:
            with LoadClients(proxy.port, clients=2) as load, ClosingLoad(proxy.port) as fresh:
                for n in range(20):
                    adding = n % 2 == 0
                    listeners = [proxy.address, second] if adding else [proxy.address]
                    text = reload(proxy, listeners,
                                  upstreams=two_backends if adding else one_backend)
                    assert f"config reloaded (generation {n + 2})" in text, text
                    if adding:
                        assert serves(second), f"reload {n + 1}: the added listener does not serve"
                    else:
                        assert refuses(second), f"reload {n + 1}: the removed one still accepts"
                    assert not tunnel.errors, f"reload {n + 1}: {tunnel.errors}"
                    assert "error" not in result, f"reload {n + 1}: download: {result['error']}"
                at_last_reload = progress[0]
                echoed_at_last_reload = tunnel.echoed
                time.sleep(0.3)  # the tunnel and the load go on after the last reload
            reloads_done.set()
            reader.join(30)
            assert not tunnel.errors, tunnel.errors
            assert tunnel.echoed > echoed_at_last_reload, "the tunnel stopped echoing"
        finally:
            reloads_done.set()
            tunnel.stop()
            download.close()
        results, failures = load.snapshot(), load.failures()
        served_by_other = len(other.requests)
    assert at_last_reload < total, "the download ended before the reloads did"
    assert result.get("crc") == pattern_crc(total), f"the download was not whole: {result}"
    assert len(results) > 50, f"only {len(results)} keep-alive requests"
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:3]}"
    assert len(fresh.results) > 20, f"only {len(fresh.results)} requests on new connections"
    assert not fresh.failures(), \
        f"{len(fresh.failures())} of {len(fresh.results)} new-connection requests failed: " \
        f"{fresh.failures()[:3]}"
    assert served_by_other > 0, "the backend added by the reloads never served"
    assert tunnel.echoed > 40, f"only {tunnel.echoed} messages through the tunnel"
