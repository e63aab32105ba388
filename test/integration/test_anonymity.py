"""Anonymity levels (a route's "forwarded"): the exact header names and values a real backend
received in each mode, and the Via the client saw on the response, over IPv4 and IPv6. EXPECTED
is the table of docs/anonymity.md: a change to one is a change to the other."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from harness import (HOST, HOST_HEADER, Backend, Response, Sluice, SocketReader,
                     assert_status, iter_body, parse_head, proxy_config, request_bytes,
                     response_framing, wait_for_log)

MODES = ("transparent", "anonymous", "elite")

# What a client sends of its own, as a client behind another proxy (or one that lies) would.
CLIENT_FIELDS = [
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "443"),
    ("Forwarded", "for=1.2.3.4"),
    ("X-Real-IP", "1.2.3.4"),
    ("Via", "1.0 corp-proxy"),
]
ORDINARY = [("Accept", "*/*")]  # passes unchanged in every mode, as Host does

# docs/anonymity.md, "Which field reaches the origin": for each level, the forwarding fields the
# backend receives from a client that sent CLIENT_FIELDS ("spoofing") and from one that sent
# none ("plain"), and the response's Via as the client sees it when the backend sent
# BACKEND_VIA ("backend_via") or no Via ("no_backend_via"; None: no Via field at all).
# {client}: the client's address; {node}: the same as Forwarded writes it; {host}: the host the
# client asked for; {host_param}: the same as a Forwarded parameter.
BACKEND_VIA = "1.1 origin-cache"
EXPECTED = {
    "transparent": {
        "spoofing": [
            ("X-Forwarded-For", "1.2.3.4, {client}"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "{host}"),
            ("X-Forwarded-Port", "443"),
            ("Forwarded", "for=1.2.3.4, for={node};proto=http;host={host_param}"),
            ("X-Real-IP", "1.2.3.4"),
            ("Via", "1.0 corp-proxy, 1.1 sluice"),
        ],
        "plain": [
            ("X-Forwarded-For", "{client}"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "{host}"),
            ("Forwarded", "for={node};proto=http;host={host_param}"),
            ("Via", "1.1 sluice"),
        ],
        "backend_via": "1.1 origin-cache, 1.1 sluice",
        "no_backend_via": "1.1 sluice",
    },
    "anonymous": {
        "spoofing": [("Via", "1.0 corp-proxy, 1.1 sluice")],
        "plain": [("Via", "1.1 sluice")],
        "backend_via": "1.1 origin-cache, 1.1 sluice",
        "no_backend_via": "1.1 sluice",
    },
    "elite": {
        "spoofing": [],
        "plain": [],
        "backend_via": "1.1 origin-cache",
        "no_backend_via": None,
    },
}


def answer_with_via(ex):
    """Answers 200; with a Via of its own when the target asks for one."""
    ex.read_body()
    ex.respond(200, b"ok", [("Via", BACKEND_VIA)] if ex.request.target.endswith("?via") else [])


def routes() -> list[dict]:
    """One route per level, on one upstream: /transparent/..., /anonymous/..., /elite/..."""
    return [{"path_prefix": f"/{mode}/", "upstream": "app", "forwarded": mode}
            for mode in MODES]


def config(backend) -> dict:
    # request_id "off": the heads compare exactly, without a random X-Request-Id.
    return {**proxy_config(backend, routes=routes()), "request_id": "off"}


class Sluice6(Sluice):
    """Sluice with its listener on [::1] instead of 127.0.0.1."""

    host = "::1"


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def get(address: str, port: int, target: str, headers, host: str) -> Response:
    """One GET on a fresh connection to address:port, with `host` as Host."""
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(request_bytes("GET", target, headers, host=host))
        reader = SocketReader(sock)
        head = reader.head()
        assert head is not None, "the connection closed before a response"
        response = parse_head(head, Response)
        response.body = b"".join(iter_body(reader, response_framing(response)))
    return response


def expected_fields(mode: str, client_kind: str, client: str, host: str) -> list[tuple[str, str]]:
    quoted = (lambda v: f'"{v}"')
    node = quoted(f"[{client}]") if ":" in client else client
    host_param = host if all(c.isalnum() or c in "-." for c in host) else quoted(host)
    values = {"client": client, "node": node, "host": host, "host_param": host_param}
    fields = [("Host", host), *ORDINARY]
    fields += [(name, value.format(**values)) for name, value in EXPECTED[mode][client_kind]]
    return fields


def as_set(fields) -> list[tuple[str, str]]:
    """Names compare without case; the order of different fields does not matter."""
    return sorted((name.lower(), value) for name, value in fields)


def check_every_level(proxy: Sluice, backend: Backend, address: str, client: str,
                      host: str) -> None:
    for mode in MODES:
        for client_kind, sent in (("spoofing", CLIENT_FIELDS), ("plain", [])):
            before = len(backend.requests)
            response = get(address, proxy.port, f"/{mode}/x?via", [*ORDINARY, *sent], host)
            assert_status(response, 200)
            assert len(backend.requests) == before + 1, backend.requests
            seen = backend.requests[-1]
            want = expected_fields(mode, client_kind, client, host)
            assert as_set(seen.headers) == as_set(want), (
                f"{mode}, {client_kind} client: the backend got\n{seen.describe()}\n"
                f"expected (any order):\n" + "\n".join(f"{n}: {v}" for n, v in want))
            assert response.header_values("Via") == [EXPECTED[mode]["backend_via"]], (
                f"{mode}: the client got\n{response.describe()}")
        response = get(address, proxy.port, f"/{mode}/x", ORDINARY, host)
        assert_status(response, 200)
        want_via = EXPECTED[mode]["no_backend_via"]
        assert response.header_values("Via") == ([want_via] if want_via else []), (
            f"{mode}, a backend without Via: the client got\n{response.describe()}")


def test_each_level_sends_the_documented_fields_over_ipv4():
    with Backend(answer_with_via) as backend, Sluice(config(backend)) as proxy:
        check_every_level(proxy, backend, HOST, "127.0.0.1", HOST_HEADER)


def test_each_level_sends_the_documented_fields_over_ipv6():
    if not ipv6_loopback():
        pytest.skip("IPv6 loopback (::1) is not available on this machine")
    with Backend(answer_with_via) as backend, Sluice6(config(backend)) as proxy:
        # A Host with a port and brackets: Forwarded must quote it.
        check_every_level(proxy, backend, "::1", "::1", f"[::1]:{proxy.port}")


def test_the_default_level_is_transparent():
    with Backend(answer_with_via) as backend, \
            Sluice({**proxy_config(backend), "request_id": "off"}) as proxy:
        response = get(HOST, proxy.port, "/x?via", [*ORDINARY, *CLIENT_FIELDS], HOST_HEADER)
    assert_status(response, 200)
    want = expected_fields("transparent", "spoofing", "127.0.0.1", HOST_HEADER)
    assert as_set(backend.requests[0].headers) == as_set(want), backend.requests[0].describe()
    assert response.header_values("Via") == [EXPECTED["transparent"]["backend_via"]]


def test_a_reload_changes_the_level_for_the_next_request():
    with Backend(answer_with_via) as backend, Sluice(config(backend)) as proxy:
        assert_status(get(HOST, proxy.port, "/elite/x", CLIENT_FIELDS, HOST_HEADER), 200)
        assert not backend.requests[-1].has("X-Forwarded-For"), backend.requests[-1].describe()
        # The same route without "forwarded": transparent from the next request on.
        with open(proxy.config_path, "w") as f:
            json.dump({**proxy.config, "routes": [{"path_prefix": "/elite/", "upstream": "app"}]}, f)
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
        assert_status(get(HOST, proxy.port, "/elite/x", [], HOST_HEADER), 200)
    assert backend.requests[-1].header_values("X-Forwarded-For") == ["127.0.0.1"], (
        backend.requests[-1].describe())
