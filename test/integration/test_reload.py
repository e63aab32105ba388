"""SIGHUP reloads the config file: a valid one takes effect for new requests, a broken one is
refused with its error logged and the running config keeps serving."""

import json
import signal

from harness import Backend, Sluice, assert_status, ok, proxy_config, wait_for_log


def rewrite_config(proxy: Sluice, config: dict) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)


def test_reload_sends_new_requests_to_the_new_upstream():
    with Backend(ok(b"old")) as old, Backend(ok(b"new")) as new, \
            Sluice(proxy_config(old)) as proxy, proxy.client() as client:
        assert client.exchange("GET", "/").body == b"old"
        rewrite_config(proxy, proxy_config(new))
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
        # The kept-alive connection picks the new snapshot up for its next request.
        assert client.exchange("GET", "/").body == b"new"
        assert proxy.get("/").body == b"new"


def test_broken_config_on_reload_is_refused_and_the_old_one_keeps_serving():
    with Backend(ok(b"running")) as backend, Sluice(proxy_config(backend)) as proxy:
        with open(proxy.config_path, "w") as f:
            f.write('{ "workers": 1,\n  "listeners": [ { "address": "127.0.0.1:1" } ],\n  oops }\n')
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"reload of .* failed; keeping the running config", 5), \
            proxy.log_tail()
        assert wait_for_log(proxy, r"line 3: invalid JSON", 1), proxy.log_tail()
        response = proxy.get("/")
        assert_status(response, 200)
        assert response.body == b"running"


def test_reload_keeps_a_backends_health_when_its_address_stays():
    with Backend(ok(b"a")) as a, Backend(ok(b"b")) as b:
        config = proxy_config(a, b, workers=1,
                              upstream={"passive": {"failures": 1, "ejection_ms": 60000}})
        with Sluice(config) as proxy:
            b.stop()  # b refuses connections: one failure ejects it for a minute
            for _ in range(4):
                assert_status(proxy.get("/"), 200)
            assert wait_for_log(proxy, r"backend .* ejected", 5), proxy.log_tail()
            rewrite_config(proxy, config)
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded", 5), proxy.log_tail()
            served_by_a = len(a.requests)
            for _ in range(6):
                assert_status(proxy.get("/"), 200)
            assert len(a.requests) == served_by_a + 6
            # Still ejected after the reload: b was not tried again, so it was not ejected again.
            assert proxy.log_text().count(" ejected for ") == 1, proxy.log_tail()
