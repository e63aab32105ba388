"""Balancing policies: consistent hashing on a request key (stable across restarts and across
instances), its round-robin fallback, least connections, weights and power of two choices."""

import collections
import threading
import time

from harness import (Backend, Sluice, SourceClient, assert_status, proxy_config,
                     run_keepalive_clients, served, service)

HASH_ON_USER = {"balance": "hash", "hash_key": "header:X-User"}
USERS = [f"user-{i}" for i in range(24)]


def backend_for(proxy, headers=(), target="/"):
    """The name of the backend that answered one GET on a fresh connection."""
    response = proxy.get(target, headers)
    assert_status(response, 200)
    return response.body.decode()


def route_users(proxy, users=USERS, repeat=1):
    """{user: the backend its request went to}; fails if a user's requests went to two."""
    routes = {}
    for _ in range(repeat):
        for user in users:
            name = backend_for(proxy, [("X-User", user)])
            assert routes.setdefault(user, name) == name, \
                f"{user} went to {routes[user]}, then to {name}"
    return routes


def three_named_backends():
    return Backend(service("a")), Backend(service("b")), Backend(service("c"))


def test_hash_on_header_keeps_each_key_on_one_backend_across_requests_and_restart():
    a, b, c = three_named_backends()
    with a, b, c:
        config = proxy_config(a, b, c, upstream=HASH_ON_USER)
        with Sluice(config) as proxy:
            first = route_users(proxy, repeat=4)  # fresh connections: both workers serve some
        with Sluice(config) as restarted:
            second = route_users(restarted)
    assert len(set(first.values())) >= 2, f"every key went to one backend: {first}"
    moved = {u: (first[u], second[u]) for u in USERS if first[u] != second[u]}
    assert not moved, f"keys that moved across a restart (before, after): {moved}"


def test_hash_on_header_maps_keys_alike_in_two_separately_started_instances():
    a, b, c = three_named_backends()
    with a, b, c:
        config = proxy_config(a, b, c, upstream=HASH_ON_USER)
        with Sluice(config) as one, Sluice(config) as two:
            assert one.port != two.port
            from_one = route_users(one)
            from_two = route_users(two)
    assert len(set(from_one.values())) >= 2, f"every key went to one backend: {from_one}"
    differ = {u: (from_one[u], from_two[u]) for u in USERS if from_one[u] != from_two[u]}
    assert not differ, f"keys the two instances send to different backends: {differ}"


def test_hash_on_client_ip_keeps_each_client_address_on_one_backend():
    a, b, c = three_named_backends()
    with a, b, c, Sluice(proxy_config(a, b, c, upstream={"balance": "hash",
                                                         "hash_key": "client_ip"})) as proxy:
        from_localhost = {backend_for(proxy, target=f"/r{i}") for i in range(30)}
        per_source = collections.defaultdict(set)
        for source in [f"127.0.0.{n}" for n in range(10, 26)]:
            for i in range(3):
                with SourceClient(proxy.port, source) as client:
                    response = client.exchange("GET", f"/s{i}")
                assert_status(response, 200)
                per_source[source].add(response.body.decode())
    assert len(from_localhost) == 1, f"requests from 127.0.0.1 went to {sorted(from_localhost)}"
    split = {s: sorted(names) for s, names in per_source.items() if len(names) > 1}
    assert not split, f"client addresses whose requests went to several backends: {split}"
    used = {next(iter(names)) for names in per_source.values()}
    assert len(used) >= 2, f"16 client addresses all went to {used}"


def test_hash_request_without_the_key_falls_back_to_round_robin():
    with Backend(service("a")) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, workers=1, upstream=HASH_ON_USER)) as proxy:
        keyless = [backend_for(proxy, target=f"/k{i}") for i in range(20)]
        keyed = {backend_for(proxy, [("X-User", "only-one")]) for _ in range(10)}
    counts = collections.Counter(keyless)
    assert set(counts) == {"a", "b"}, f"requests without the key: {dict(counts)}"
    assert min(counts.values()) >= 5, f"keyless requests not spread round-robin: {dict(counts)}"
    assert len(keyed) == 1, f"one key went to {sorted(keyed)}"


def test_least_conn_sends_new_requests_to_the_backend_with_fewer_in_flight():
    hold_s = 1.5
    with Backend(service("slow", delay=hold_s)) as slow, Backend(service("fast")) as fast, \
            Sluice(proxy_config(slow, fast, upstream={"balance": "least_conn"})) as proxy:
        answers, errors = [], []
        lock = threading.Lock()

        def one(i):
            try:
                name = backend_for(proxy, target=f"/lc{i}")
                with lock:
                    answers.append(name)
            except Exception as error:  # reported below
                with lock:
                    errors.append(repr(error))

        threads = []
        started = time.monotonic()
        for i in range(10):  # all sent while the slow backend still holds its first
            thread = threading.Thread(target=one, args=(i,), daemon=True)
            thread.start()
            threads.append(thread)
            time.sleep(0.05)
        for thread in threads:
            thread.join(hold_s + 6)
        elapsed = time.monotonic() - started
    counts = collections.Counter(answers)
    assert not errors, f"requests failed: {errors}"
    assert len(answers) == 10, f"{len(answers)} of 10 answered"
    assert counts["slow"] <= 2 and counts["fast"] >= 8, \
        f"with one backend holding requests {hold_s} s: {dict(counts)}"
    assert elapsed < hold_s + 3, f"took {elapsed:.1f} s"


def test_round_robin_weights_3_to_1_split_400_requests_about_300_to_100():
    with Backend(service("heavy")) as heavy, Backend(service("light")) as light:
        config = proxy_config({"address": heavy.address, "weight": 3},
                              {"address": light.address, "weight": 1},
                              upstream={"balance": "round_robin"})
        with Sluice(config) as proxy:
            responses = run_keepalive_clients(proxy.port, clients=4, requests_each=100)
    statuses = collections.Counter(r.status for rs in responses for r in rs)
    assert statuses == {200: 400}, f"statuses: {dict(statuses)}"
    assert served(heavy) + served(light) == 400, (served(heavy), served(light))
    assert 270 <= served(heavy) <= 330, \
        f"weight 3 got {served(heavy)}, weight 1 got {served(light)} of 400 (expected ~300/100)"


def test_random_two_serves_every_request_and_uses_every_backend():
    a, b, c = three_named_backends()
    with a, b, c, Sluice(proxy_config(a, b, c, upstream={"balance": "random_two"})) as proxy:
        responses = run_keepalive_clients(proxy.port, clients=4, requests_each=60)
    statuses = collections.Counter(r.status for rs in responses for r in rs)
    names = collections.Counter(r.body.decode() for rs in responses for r in rs)
    assert statuses == {200: 240}, f"statuses: {dict(statuses)}"
    assert set(names) == {"a", "b", "c"} and min(names.values()) >= 20, \
        f"240 requests over three equal backends: {dict(names)}"
