"""SIGHUP adds, moves and removes the admin listener like any other: its sockets open on every
worker before the reload is published, an address in use fails the reload whole, and the
metrics registry lives as long as the process, so counters never start over."""

import socket
import time

from harness import HOST, Backend, Sluice, assert_status, free_port, ok, proxy_config
from test_admin import admin, samples, with_admin
from test_reload_listeners import refuses, reload, wait_until


def admin_at(port: int) -> dict:
    return {"address": f"{HOST}:{port}"}


def requests_counted(proxy: Sluice) -> float:
    page = samples(admin(proxy, "/metrics").body.decode())
    return sum(v for k, v in page.items() if k.startswith("sluice_requests_total"))


def admin_serves(proxy: Sluice) -> bool:
    try:
        return admin(proxy, "/healthz", attempts=1).status == 200
    except OSError:
        return False


def test_an_admin_listener_added_by_reload_serves_and_counts_from_then_on():
    with Backend(ok()) as backend, Sluice(proxy_config(backend)) as proxy:
        assert_status(proxy.get("/before"), 200)
        text = reload(proxy, [proxy.address], admin=admin_at(free_port()))
        assert "config reloaded" in text, text
        assert f"admin listener on {proxy.config['admin']['address']}" in text, text
        assert wait_until(lambda: admin_serves(proxy), 3.0), proxy.log_tail()
        assert_status(admin(proxy, "/readyz"), 200)
        for _ in range(5):
            assert_status(proxy.get("/after"), 200)
        assert wait_until(lambda: requests_counted(proxy) == 5, 3.0), requests_counted(proxy)


def test_a_moved_admin_listener_serves_on_its_new_address_only():
    with Backend(ok()) as backend, Sluice(with_admin(proxy_config(backend))) as proxy:
        old = proxy.config["admin"]["address"]
        assert_status(proxy.get("/counted"), 200)
        before = requests_counted(proxy)
        text = reload(proxy, [proxy.address], admin=admin_at(free_port()))
        assert "config reloaded" in text, text
        assert wait_until(lambda: admin_serves(proxy), 3.0), proxy.log_tail()
        assert refuses(old), f"the old admin address {old} still accepts"
        assert requests_counted(proxy) >= before == 1


def test_an_admin_listener_removed_by_reload_closes_and_the_proxy_serves_on():
    with Backend(ok()) as backend, Sluice(with_admin(proxy_config(backend))) as proxy:
        address = proxy.config["admin"]["address"]
        config = dict(proxy.config)
        del config["admin"]
        proxy.config = config
        text = reload(proxy, [proxy.address])
        assert "admin listener closed" in text, text
        assert refuses(address), f"the removed admin address {address} still accepts"
        assert_status(proxy.get("/still"), 200)


def test_an_admin_address_in_use_fails_the_reload_and_the_old_admin_serves_on():
    with Backend(ok()) as backend, Sluice(with_admin(proxy_config(backend))) as proxy, \
            socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        old_config = proxy.config
        text = reload(proxy, [proxy.address], admin=admin_at(taken))
        assert "reload of" in text and "failed" in text, text
        assert f"cannot open the admin listener on {HOST}:{taken}" in text, text
        proxy.config = old_config
        assert_status(admin(proxy, "/healthz"), 200)
        time.sleep(0.1)
        assert_status(proxy.get("/still"), 200)
