"""Header rewriting: hop-by-hop headers stop at the proxy in both directions, forwarding
headers are added, everything else passes through unchanged."""

from harness import Backend, Sluice, assert_status, echo, ok, proxy_config


def request_seen_by_backend(headers=(), **kw):
    """Sends one GET with `headers` through sluice; returns the Request the backend received."""
    with Backend(ok()) as backend, Sluice(proxy_config(backend)) as proxy:
        assert_status(proxy.get("/path", headers, **kw), 200)
    assert len(backend.requests) == 1, backend.requests
    return backend.requests[0]


def test_headers_named_in_connection_are_not_forwarded():
    seen = request_seen_by_backend([("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"),
                                    ("X-Kept", "yes")])
    assert not seen.has("X-Hop"), seen.describe()
    assert "x-hop" not in seen.tokens("connection"), seen.describe()
    assert seen.header("X-Kept") == "yes", seen.describe()


def test_standard_hop_by_hop_request_headers_are_not_forwarded():
    seen = request_seen_by_backend([("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                                    ("TE", "trailers"), ("Trailer", "X-Checksum")])
    for name in ("Keep-Alive", "Proxy-Connection", "TE", "Trailer"):
        assert not seen.has(name), f"{name} was forwarded:\n{seen.describe()}"


def test_upgrade_without_connection_upgrade_is_not_forwarded():
    seen = request_seen_by_backend([("Upgrade", "h2c")])
    assert not seen.has("Upgrade"), f"Upgrade was forwarded:\n{seen.describe()}"
    assert "upgrade" not in seen.tokens("connection"), seen.describe()


def test_end_to_end_request_headers_are_forwarded_unchanged():
    seen = request_seen_by_backend([("Accept", "text/html, */*;q=0.5"), ("Cookie", "a=1; b=2"),
                                    ("X-Multi", "one"), ("X-Multi", "two"),
                                    ("User-Agent", "integration-test/1.0")])
    assert seen.header("Accept") == "text/html, */*;q=0.5", seen.describe()
    assert seen.header("Cookie") == "a=1; b=2", seen.describe()
    assert seen.joined("X-Multi") == "one, two", seen.describe()
    assert seen.header("User-Agent") == "integration-test/1.0", seen.describe()


def test_host_header_is_forwarded_unchanged():
    seen = request_seen_by_backend(host="Example.TEST:8080")
    assert seen.header_values("Host") == ["Example.TEST:8080"], seen.describe()


def test_x_forwarded_for_is_set_to_the_client_address():
    seen = request_seen_by_backend()
    assert seen.joined("X-Forwarded-For") == "127.0.0.1", seen.describe()


def test_x_forwarded_for_is_appended_to_an_existing_one():
    seen = request_seen_by_backend([("X-Forwarded-For", "1.2.3.4")])
    assert seen.joined("X-Forwarded-For") == "1.2.3.4, 127.0.0.1", seen.describe()


def test_x_forwarded_proto_is_http():
    seen = request_seen_by_backend()
    assert seen.header_values("X-Forwarded-Proto") == ["http"], seen.describe()


def test_hop_by_hop_response_headers_are_not_relayed():
    def handler(ex):
        ex.read_body()
        ex.respond(200, b"body", [("Connection", "close, X-Secret"), ("X-Secret", "1"),
                                  ("Keep-Alive", "timeout=5"), ("X-Public", "yes")])
        ex.close()

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == b"body"
    assert not response.has("X-Secret"), response.describe()
    assert not response.has("Keep-Alive"), response.describe()
    assert "x-secret" not in response.tokens("connection"), response.describe()
    assert response.header("X-Public") == "yes", response.describe()


def test_backend_connection_close_does_not_close_the_client_connection():
    def handler(ex):
        ex.read_body()
        ex.respond(200, b"once", [("Connection", "close")])
        ex.close()

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        for _ in range(3):
            response = client.exchange("GET", "/")
            assert_status(response, 200)
            assert response.body == b"once"
    assert backend.connections == 3


def test_connection_naming_content_length_cannot_smuggle_a_request():
    # Were Content-Length dropped as "named in Connection", the backend would read the body,
    # itself a request, as a second request on the pooled connection.
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: sluice.test\r\n\r\n"
    with Backend(echo()) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        response = client.exchange("POST", "/upload", [
            ("Connection", "content-length, transfer-encoding, host"),
            ("Content-Length", str(len(smuggled)))], smuggled)
        assert_status(client.exchange("GET", "/next"), 200)
    assert_status(response, 200)
    assert response.body == smuggled
    assert [r.target for r in backend.requests] == ["/upload", "/next"], backend.targets()
