"""The cache on the admin listener: per cached route, the sluice_cache_* series of /metrics
follow a known sequence of misses, hits and an invalidation exactly (and pass promtool), and
POST /cache/purge drops a URL's stored responses (every Vary variant) or every key under a
prefix, answering {"purged": N}. Only loopback clients may purge; that refusal is unit-tested
(test/core/admin), since every address here is loopback."""

import json
from urllib.parse import quote

from harness import Backend, Sluice, assert_status, ok, proxy_config, served
from test_admin import admin, promtool_check, samples, wait_for_page, with_admin

CACHED = [("Cache-Control", "max-age=60")]
BODY = b"stored for a minute"
HOST_NAME = "Cache.Test"  # the keys hold it in lower case
LABELS = '{route="*/",upstream="app"}'
DEFAULT_MAX_BYTES = 268435456


def cached_config(backend: Backend) -> dict:
    return with_admin(proxy_config(backend, routes=[{"upstream": "app", "cache": {}}]))


def fetch(proxy: Sluice, target: str, headers=()):
    response = proxy.get(target, headers, host=HOST_NAME)
    assert_status(response, 200)
    return response


def figures_of(text: str) -> dict[str, float]:
    """The route's sluice_cache_* samples, by name without "sluice_cache_"."""
    return {k[len("sluice_cache_"):-len(LABELS)]: v for k, v in samples(text).items()
            if k.startswith("sluice_cache_") and k.endswith(LABELS)}


def wait_for_figures(proxy: Sluice, **expected) -> dict[str, float]:
    """Polls /metrics until the route's figures include `expected`; returns them all. A
    response is stored once the backend's last byte is in, which may be just after the client
    has it: waiting keeps a sequence of requests exact."""
    response = wait_for_page(proxy, "/metrics", lambda r: all(
        figures_of(r.body.decode()).get(k) == v for k, v in expected.items()))
    figures = figures_of(response.body.decode())
    assert {k: figures.get(k) for k in expected} == expected, figures
    return figures


def purge(proxy: Sluice, method: str = "POST", **query: str):
    encoded = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
    return admin(proxy, f"/cache/purge?{encoded}", method)


def purged(response) -> int:
    assert_status(response, 200)
    assert response.header("Content-Type") == "application/json"
    return json.loads(response.body)["purged"]


def test_cache_metrics_follow_a_known_sequence_exactly_and_pass_promtool():
    with Backend(ok(BODY, headers=CACHED)) as backend, \
            Sluice(cached_config(backend)) as proxy:
        fetch(proxy, "/a")  # miss
        one = wait_for_figures(proxy, stored_total=1, entries=1)["bytes"]
        fetch(proxy, "/a")  # hit
        fetch(proxy, "/a")  # hit
        fetch(proxy, "/b")  # miss
        wait_for_figures(proxy, stored_total=2)
        fetch(proxy, "/b")  # hit
        after_gets = wait_for_figures(proxy, hits_total=3, misses_total=2)
        # A POST passes by the cache, and its 200 drops what /a had stored.
        with proxy.client() as client:
            assert_status(client.exchange("POST", "/a", body=b"x", host=HOST_NAME), 200)
        after_post = wait_for_figures(proxy, bypassed_total=1, invalidations_total=1)
        text = admin(proxy, "/metrics").body.decode()
    assert served(backend) == 3, "two misses and the POST reach the backend, no hit does"
    assert one > len(BODY), one
    assert after_gets == {
        "hits_total": 3, "misses_total": 2, "stale_total": 0, "revalidated_total": 0,
        "collapsed_total": 0, "bypassed_total": 0, "stored_total": 2, "evictions_total": 0,
        "invalidations_total": 0, "bytes": 2 * one, "entries": 2,
        "max_bytes": DEFAULT_MAX_BYTES,
    }, after_gets
    assert after_post["entries"] == 1 and after_post["bytes"] == one, after_post
    assert after_post["hits_total"] == 3 and after_post["stored_total"] == 2, after_post
    promtool_check(text)


def test_a_purge_by_url_sends_the_next_request_to_the_backend():
    with Backend(ok(BODY, headers=CACHED)) as backend, \
            Sluice(cached_config(backend)) as proxy:
        fetch(proxy, "/page?x=1")
        wait_for_figures(proxy, stored_total=1)
        fetch(proxy, "/page?x=1")
        assert served(backend) == 1, "the second request was not a hit"
        # The host in another case: keys hold it in lower case.
        first = purge(proxy, url="http://CACHE.TEST/page?x=1")
        again = purge(proxy, url="http://cache.test/page?x=1")
        emptied = wait_for_figures(proxy, entries=0, invalidations_total=1, bytes=0)
        fetch(proxy, "/page?x=1")
        assert served(backend) == 2, "the request after the purge did not reach the backend"
    assert purged(first) == 1
    assert purged(again) == 0
    assert emptied["hits_total"] == 1, emptied


def test_a_purge_by_url_drops_every_variant():
    headers = CACHED + [("Vary", "Accept-Encoding")]
    with Backend(ok(BODY, headers=headers)) as backend, \
            Sluice(cached_config(backend)) as proxy:
        fetch(proxy, "/v", [("Accept-Encoding", "gzip")])
        fetch(proxy, "/v", [("Accept-Encoding", "br")])
        wait_for_figures(proxy, entries=2)
        response = purge(proxy, url="http://cache.test/v")
        wait_for_figures(proxy, entries=0)
    assert purged(response) == 2


def test_a_purge_by_prefix_drops_every_key_under_it():
    with Backend(ok(BODY, headers=CACHED)) as backend, \
            Sluice(cached_config(backend)) as proxy:
        for target in ("/img/1", "/img/2", "/other"):
            fetch(proxy, target)
        wait_for_figures(proxy, entries=3)
        response = purge(proxy, prefix="http://Cache.Test/img/")
        wait_for_figures(proxy, entries=1, invalidations_total=2)
        fetch(proxy, "/other")
        assert served(backend) == 3, "/other was purged too"
        fetch(proxy, "/img/2")
        assert served(backend) == 4, "/img/2 was not purged"
    assert purged(response) == 2


def test_a_purge_takes_post_with_exactly_one_absolute_url_or_prefix():
    with Backend(ok(BODY, headers=CACHED)) as backend, \
            Sluice(cached_config(backend)) as proxy:
        get = purge(proxy, "GET", url="http://cache.test/")
        neither = admin(proxy, "/cache/purge", "POST")
        both = purge(proxy, url="http://cache.test/", prefix="http://cache.test/")
        relative = purge(proxy, url="/just/a/path")
        other_scheme = purge(proxy, url="ftp://cache.test/file")
    assert_status(get, 405)
    for response in (neither, both):
        assert_status(response, 400)
        assert b"exactly one of url=" in response.body, response.body
    for response in (relative, other_scheme):
        assert_status(response, 400)
        assert b"absolute http or https URL" in response.body, response.body
    assert not backend.requests, "an admin request reached the backend"
