"""Routes pick an upstream by path prefix and by host, first match in config order."""

from harness import ok, proxy_config


def test_route_by_path_prefix_selects_the_upstream(start_backend, start_sluice):
    api, web = start_backend(ok(b"api")), start_backend(ok(b"web"))
    proxy = start_sluice(proxy_config(upstreams={"api": [api], "web": [web]},
                                      routes=[{"path_prefix": "/api/", "upstream": "api"},
                                              {"upstream": "web"}]))
    assert proxy.get("/api/users").body == b"api"
    assert proxy.get("/index.html").body == b"web"
    assert proxy.get("/apiary").body == b"web"


def test_route_by_host_selects_the_upstream(start_backend, start_sluice):
    a, other = start_backend(ok(b"a")), start_backend(ok(b"other"))
    proxy = start_sluice(proxy_config(upstreams={"a": [a], "other": [other]},
                                      routes=[{"host": "a.test", "upstream": "a"},
                                              {"upstream": "other"}]))
    assert proxy.get("/", host="a.test").body == b"a"
    assert proxy.get("/", host="A.Test:8080").body == b"a"
    assert proxy.get("/", host="b.test").body == b"other"
