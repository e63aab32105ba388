"""Stopping without losing a request during a rollout: with shutdown_delay_ms, SIGTERM turns
/readyz to 503 at once while the listeners keep accepting for the delay, then the drain runs as
without it; a second SIGTERM or SIGINT exits at once; a SIGHUP while stopping changes nothing."""

import signal
import time

import pytest

from harness import Backend, Client, ConnectionClosed, Sluice, assert_status, ok, proxy_config, \
    wait_for_log
from test_admin import admin, wait_for_page, with_admin


def stopping_proxy(backend, delay_ms: int, drain_ms: int = 5000) -> Sluice:
    config = with_admin(proxy_config(backend, timeouts={"drain_ms": drain_ms}))
    config["shutdown_delay_ms"] = delay_ms
    return Sluice(config).start()


def test_sigterm_with_a_shutdown_delay_fails_readiness_at_once_and_serves_new_connections():
    with Backend(ok()) as backend:
        proxy = stopping_proxy(backend, delay_ms=2000)
        assert_status(admin(proxy, "/readyz"), 200)
        signalled = time.monotonic()
        proxy.send_signal(signal.SIGTERM)
        readiness = wait_for_page(proxy, "/readyz", lambda r: r.status == 503, timeout=1.0)
        not_ready_after = time.monotonic() - signalled
        # Well inside the delay: a client that has not heard yet still gets served, on a new
        # connection, by every worker (several connections spread over the workers).
        during = [proxy.get("/during") for _ in range(6)]
        served_until = time.monotonic() - signalled
        status = proxy.wait(10)
        stopped_after = time.monotonic() - signalled
    assert_status(readiness, 503)
    assert not_ready_after < 1.0
    assert served_until < 2.0, "the checks took longer than the delay; nothing was shown"
    for response in during:
        assert_status(response, 200)
    assert stopped_after >= 2.0, f"stopped {stopped_after:.2f} s after SIGTERM, before the delay"
    assert status == 0, f"exit status {status}\n{proxy.log_tail()}"
    assert "accepting for 2000 ms more, then draining" in proxy.log_text(), proxy.log_tail()


def test_listeners_close_once_the_shutdown_delay_has_passed():
    def slow(ex):
        ex.read_body()
        time.sleep(1.5)
        ex.respond(200, b"finished")

    with Backend(slow) as backend:
        proxy = stopping_proxy(backend, delay_ms=300)
        with proxy.client() as client:
            client.request("GET", "/slow")
            assert backend.wait_for(lambda b: b.requests, 3), "request never reached the backend"
            proxy.send_signal(signal.SIGTERM)
            assert wait_for_log(proxy, r"closing the listeners", 3.0), proxy.log_tail()
            time.sleep(0.1)
            with pytest.raises((ConnectionRefusedError, ConnectionResetError, ConnectionClosed)):
                with Client(proxy.port) as late:
                    late.exchange("GET", "/late")
            response = client.read_final_response()
        status = proxy.wait(8)
    assert_status(response, 200)
    assert response.body == b"finished"
    assert status == 0, f"exit status {status}\n{proxy.log_tail()}"


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_stop_signal_exits_at_once(second):
    with Backend(ok()) as backend:
        proxy = stopping_proxy(backend, delay_ms=30000)
        proxy.send_signal(signal.SIGTERM)
        assert wait_for_log(proxy, r"accepting for 30000 ms more", 3.0), proxy.log_tail()
        signalled = time.monotonic()
        proxy.send_signal(second)
        status = proxy.wait(3)
        exited_after = time.monotonic() - signalled
    assert status == 1, f"exit status {status}\n{proxy.log_tail()}"
    assert exited_after < 1.0
    assert "a second stop signal: exiting at once" in proxy.log_text(), proxy.log_tail()


def test_sighup_while_stopping_neither_reloads_nor_kills():
    with Backend(ok()) as backend:
        proxy = stopping_proxy(backend, delay_ms=1000)
        proxy.send_signal(signal.SIGTERM)
        assert wait_for_log(proxy, r"accepting for 1000 ms more", 3.0), proxy.log_tail()
        proxy.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        during = proxy.get("/after-hup")
        status = proxy.wait(8)
    assert_status(during, 200)
    assert status == 0, f"exit status {status}\n{proxy.log_tail()}"
    assert "config reloaded" not in proxy.log_text(), proxy.log_tail()
