"""Backends discovered through DNS: every address a name resolves to gets traffic, addresses
that appear join (after a good check when there are health checks), addresses that disappear
drain, and a resolver that fails leaves the last good set serving.

A small DNS server here answers for the test: A and AAAA records from a table the test changes,
NXDOMAIN for names it does not know, and on demand silence or SERVFAIL. Every backend behind a
name shares one port, so they listen on 127.0.0.2, 127.0.0.3, ... (all loopback on Linux) or ::1,
each on its own address and the same port."""

import collections
import re
import socket
import struct
import threading
import time

from harness import (BoundBackend, HealthSwitch, Sluice, bodies, is_health_check, proxy_config,
                     served, service, wait_for_log)

NAME = "app.test"


class DnsServer:
    """A UDP DNS server on 127.0.0.1 (port from the kernel). .table maps a lowercase name to
    its addresses (IPv4 ones answer A queries, IPv6 ones AAAA queries); .mode is "answer",
    "silent" (queries go unanswered) or "servfail". .queries records (time, name, type) of
    every query received."""

    A, AAAA = 1, 28

    def __init__(self, table=None):
        self.table = dict(table or {})
        self.mode = "answer"
        self.queries = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dns")
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stopping.set()
        self._thread.join(2)
        self._sock.close()

    def set(self, name, *addresses):
        with self._lock:
            self.table[name.lower()] = list(addresses)

    def queries_since(self, since, qtype=A):
        with self._lock:
            return [q for q in self.queries if q[0] >= since and q[2] == qtype]

    def _serve(self):
        while not self._stopping.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._reply(data)
            except (ValueError, IndexError, struct.error):
                continue  # not a query we understand: drop it
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError:
                    pass

    def _reply(self, data):
        query_id, flags, questions = struct.unpack(">HHH", data[:6])
        if flags & 0x8000 or questions != 1:
            return None
        labels, offset = [], 12
        while data[offset]:
            length = data[offset]
            labels.append(data[offset + 1:offset + 1 + length].decode("ascii"))
            offset += 1 + length
        qtype, _qclass = struct.unpack(">HH", data[offset + 1:offset + 5])
        question = data[12:offset + 5]
        name = ".".join(labels).lower()
        with self._lock:
            self.queries.append((time.monotonic(), name, qtype))
            mode, addresses = self.mode, self.table.get(name)
        if mode == "silent":
            return None
        rcode, answers = 0, []
        if mode == "servfail":
            rcode = 2
        elif addresses is None:
            rcode = 3  # NXDOMAIN
        elif qtype == self.A:
            for address in addresses:
                if ":" not in address:
                    # name: pointer to the question's name; type A, class IN, TTL 1 s, 4 bytes
                    answers.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) +
                                   socket.inet_aton(address))
        elif qtype == self.AAAA:
            for address in addresses:
                if ":" in address:
                    # as for A, but type AAAA and 16 bytes
                    answers.append(struct.pack(">HHHIH", 0xC00C, self.AAAA, 1, 1, 16) +
                                   socket.inet_pton(socket.AF_INET6, address))
        reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR AA RD RA
        header = struct.pack(">HHHHHH", query_id, reply_flags, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)


def same_port_backends(hosts, handlers):
    """One BoundBackend per host (127.0.0.x or ::1), all on one port."""
    for _ in range(20):
        first = BoundBackend(handlers[0], host=hosts[0])
        backends = [first]
        try:
            for host, handler in zip(hosts[1:], handlers[1:]):
                probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
                try:
                    probe.bind((host, first.port))  # free there too? (a BoundBackend would wait)
                finally:
                    probe.close()
                backends.append(BoundBackend(handler, host=host, port=first.port))
            return backends
        except OSError:
            for backend in backends:
                backend.stop()
    raise AssertionError(f"found no port free on all of {hosts}")


def dns_config(dns, port, *, refresh_s=1, upstream=None, timeout_ms=2000):
    config = proxy_config({"dns": f"{NAME}:{port}", "refresh_s": refresh_s},
                          upstream=upstream)
    config["resolver"] = {"nameservers": [dns.address], "timeout_ms": timeout_ms}
    return config


def wait_serving(proxy, timeout=4.0):
    """Waits until a GET through the proxy gets a 200 (the first lookup has been applied)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = proxy.get("/ready")
        if last.status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"no 200 within {timeout} s of starting; last answer:\n"
                         f"{last.describe() if last else None}")


def test_traffic_reaches_every_address_the_name_resolves_to():
    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"], [service("two"), service("three")])
    with DnsServer({NAME: ["127.0.0.2", "127.0.0.3"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port)) as proxy:
        wait_serving(proxy)
        counts = collections.Counter(bodies(proxy, 20))
        log = proxy.log_text()
    assert set(counts) == {"two", "three"}, f"answers: {dict(counts)}"
    assert min(counts.values()) >= 5, f"answers: {dict(counts)}"
    assert f"{NAME}:{two.port}" in log and "127.0.0.3" in log, \
        f"the log does not show the resolved set:\n{log}"


def test_traffic_reaches_both_the_a_and_the_aaaa_address_of_the_name():
    four, six = same_port_backends(["127.0.0.1", "::1"], [service("four"), service("six")])
    with DnsServer({NAME: ["127.0.0.1", "::1"]}) as dns, four, six, \
            Sluice(dns_config(dns, four.port)) as proxy:
        wait_serving(proxy)
        counts = collections.Counter(bodies(proxy, 20))
        aaaa_queries = len(dns.queries_since(0.0, DnsServer.AAAA))
        log = proxy.log_text()
    assert aaaa_queries >= 1, "sluice sent no AAAA query for the name"
    assert set(counts) == {"four", "six"}, f"answers: {dict(counts)}"
    assert min(counts.values()) >= 5, f"answers: {dict(counts)}"
    assert f"[::1]:{six.port}" in log, f"the log does not show the IPv6 address:\n{log}"


def test_address_added_to_the_name_gets_traffic_within_a_few_seconds():
    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"], [service("two"), service("three")])
    with DnsServer({NAME: ["127.0.0.2"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port)) as proxy:
        wait_serving(proxy)
        before = bodies(proxy, 8)
        dns.set(NAME, "127.0.0.2", "127.0.0.3")
        added_at = time.monotonic()
        joined_after = None
        while time.monotonic() - added_at < 5.0:
            if "three" in bodies(proxy, 2):
                joined_after = time.monotonic() - added_at
                break
            time.sleep(0.05)
        after = collections.Counter(bodies(proxy, 10))
    assert before == ["two"] * 8, f"before the address was added: {before}"
    assert joined_after is not None, "the added address got no request within 5 s (refresh_s 1)"
    assert joined_after < 3.0, f"the added address got its first request after {joined_after:.1f} s"
    assert set(after) == {"two", "three"}, f"after it joined: {dict(after)}"


def test_address_added_with_health_checks_gets_traffic_only_after_a_good_check():
    health = {"path": "/health", "interval_ms": 200, "timeout_ms": 200, "rise": 2, "fall": 2}
    sick = HealthSwitch(500)
    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"],
                                    [service("two"), service("three", sick)])
    with DnsServer({NAME: ["127.0.0.2"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port, upstream={"health": health})) as proxy:
        wait_serving(proxy)
        dns.set(NAME, "127.0.0.2", "127.0.0.3")
        assert wait_for_log(proxy, rf"dns {re.escape(NAME)}:\d+: 2 addresses", 4.0), \
            "the second address was not picked up within 4 s"
        while_failing = bodies(proxy, 10)
        time.sleep(0.6)  # three checks at 200 ms, all failing
        while_failing += bodies(proxy, 10)
        checks_while_failing = len([r for r in three.requests if is_health_check(r)])
        served_while_failing = served(three)
        sick.status = 200
        assert wait_for_log(proxy, rf"backend 127\.0\.0\.3:{three.port} is up", 3.0), \
            "the added backend not brought up within 3 s of passing its checks"
        after = collections.Counter(bodies(proxy, 10))
    assert checks_while_failing >= 2, \
        f"the added backend got {checks_while_failing} health checks, expected it to be checked"
    assert served_while_failing == 0 and while_failing == ["two"] * 20, \
        f"the added backend got {served_while_failing} requests before a good check"
    assert "three" in after, f"once its checks pass: {dict(after)}"
    first_client = next(i for i, r in enumerate(three.requests) if not is_health_check(r))
    assert first_client >= 2, "a client request reached it before its checks"


def test_address_removed_from_the_name_is_drained():
    def slow_or_named(name):
        quick = service(name)

        def handler(ex):
            if ex.request.target.startswith("/slow"):
                ex.read_body()
                time.sleep(2.0)
                ex.respond(200, name.encode())
            else:
                quick(ex)
        return handler

    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"],
                                    [slow_or_named("two"), slow_or_named("three")])
    with DnsServer({NAME: ["127.0.0.2", "127.0.0.3"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port)) as proxy:
        wait_serving(proxy)
        before = collections.Counter(bodies(proxy, 10))
        slow_results = []

        def slow(i):
            try:
                response = proxy.get(f"/slow/{i}", timeout=8.0)
                slow_results.append((response.status, response.body.decode()))
            except Exception as error:  # reported below
                slow_results.append((None, repr(error)))

        threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        time.sleep(0.3)  # all four are in flight, at least one of them on 127.0.0.3
        dns.set(NAME, "127.0.0.2")
        assert wait_for_log(proxy, rf"dns {re.escape(NAME)}:\d+: 1 addresses", 3.0), \
            "the removal was not picked up within 3 s (refresh_s 1)"
        removed_count = served(three)
        after = bodies(proxy, 20)
        for thread in threads:
            thread.join(8)
        time.sleep(0.2)
        final_count = served(three)
    assert set(before) == {"two", "three"}, f"before the removal: {dict(before)}"
    assert after == ["two"] * 20, f"after the removal: {collections.Counter(after)}"
    assert final_count == removed_count, \
        f"the removed address got {final_count - removed_count} new requests"
    assert len(slow_results) == 4 and all(s == 200 for s, _ in slow_results), \
        f"requests in flight during the removal: {slow_results}"
    assert ("three" in [body for _, body in slow_results]), \
        f"no in-flight request was on the removed address: {slow_results}"


def test_unanswered_lookups_keep_the_last_good_set_and_are_logged_once():
    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"], [service("two"), service("three")])
    with DnsServer({NAME: ["127.0.0.2", "127.0.0.3"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port, timeout_ms=200)) as proxy:
        wait_serving(proxy)
        dns.mode = "silent"
        silent_at = time.monotonic()
        assert wait_for_log(proxy, r"lookup failed", 4.0), \
            "no 'lookup failed' line within 4 s of the DNS server going silent"
        time.sleep(2.5)  # more refreshes, all failing
        during = collections.Counter(bodies(proxy, 20))
        queries_while_silent = len(dns.queries_since(silent_at))
        failed_lines = len(re.findall(r"lookup failed", proxy.log_text()))
        dns.mode = "answer"
        recovered = wait_for_log(proxy, r"lookups succeed again", 4.0)
        failed_lines_after = len(re.findall(r"lookup failed", proxy.log_text()))
        after = collections.Counter(bodies(proxy, 10))
    assert set(during) == {"two", "three"}, f"while DNS was silent: {dict(during)}"
    assert queries_while_silent >= 3, \
        f"only {queries_while_silent} A queries while silent: too few lookups to judge"
    assert failed_lines == 1, f"'lookup failed' logged {failed_lines} times over " \
                              f"{queries_while_silent} unanswered queries"
    assert recovered, "no 'lookups succeed again' line within 4 s of DNS answering again"
    assert failed_lines_after == 1, f"'lookup failed' logged {failed_lines_after} times"
    assert set(after) == {"two", "three"}, f"after DNS recovered: {dict(after)}"


def test_servfail_and_nxdomain_keep_the_last_good_set():
    two, three = same_port_backends(["127.0.0.2", "127.0.0.3"], [service("two"), service("three")])
    with DnsServer({NAME: ["127.0.0.2", "127.0.0.3"]}) as dns, two, three, \
            Sluice(dns_config(dns, two.port)) as proxy:
        wait_serving(proxy)
        dns.mode = "servfail"
        assert wait_for_log(proxy, r"lookup failed", 3.0), "SERVFAIL not logged as a failure"
        time.sleep(1.2)
        servfail = collections.Counter(bodies(proxy, 12))
        dns.mode = "answer"
        assert wait_for_log(proxy, r"lookups succeed again", 3.0), "no recovery line"
        with dns._lock:
            del dns.table[NAME]  # now NXDOMAIN
        assert wait_for_log(proxy, r"lookup failed", 3.0, count=2), "NXDOMAIN not logged"
        time.sleep(1.2)
        nxdomain = collections.Counter(bodies(proxy, 12))
        failed_lines = len(re.findall(r"lookup failed", proxy.log_text()))
    assert set(servfail) == {"two", "three"}, f"during SERVFAIL: {dict(servfail)}"
    assert set(nxdomain) == {"two", "three"}, f"during NXDOMAIN: {dict(nxdomain)}"
    assert failed_lines == 2, f"'lookup failed' logged {failed_lines} times for two failing spells"
