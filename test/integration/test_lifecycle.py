"""Process lifecycle: SIGTERM drains in-flight requests and exits 0."""

import signal
import time

from harness import Backend, Sluice, assert_status, ok, proxy_config


def test_sigterm_exits_zero():
    with Backend(ok()) as backend:
        proxy = Sluice(proxy_config(backend)).start()
        assert_status(proxy.get("/"), 200)
        status = proxy.terminate()
    assert status == 0, f"exit status {status} after SIGTERM\n{proxy.log_tail()}"


def test_sigterm_lets_an_in_flight_request_finish():
    def slow(ex):
        ex.read_body()
        time.sleep(1.0)
        ex.respond(200, b"finished")

    with Backend(slow) as backend:
        proxy = Sluice(proxy_config(backend, timeouts={"drain_ms": 5000})).start()
        with proxy.client() as client:
            client.request("GET", "/slow")
            assert backend.wait_for(lambda b: b.requests, 3), "request never reached the backend"
            proxy.send_signal(signal.SIGTERM)
            response = client.read_final_response()
        status = proxy.wait(8)
    assert_status(response, 200)
    assert response.body == b"finished"
    assert status == 0, f"exit status {status} after draining\n{proxy.log_tail()}"
