"""The shared cache on a route ("cache", RFC 9111), against a backend that counts what it is asked:
what is stored and what never is, freshness and Age, Vary, revalidation with a 304 that updates
the stored fields, invalidation by unsafe methods, request directives, conditional and range
requests answered from a stored response, stale-while-revalidate and stale-if-error, concurrent
misses collapsed into one fetch, eviction under max_bytes, and a large response passing through.
docs/cache.md's table names the test behind each of its rows."""

import json
import signal
import socket
import struct
import threading
import time

import pytest

from harness import (HOST, Backend, Client, ClosedPort, MiB, Sluice, assert_status,
                     client_requests, proxy_config, wait_for_log)
from test_access import access_lines

pytestmark = pytest.mark.timeout(60)


def cached(backend, cache=None, *, workers=1, **kwargs) -> dict:
    return proxy_config(backend, workers=workers, routes=[
        {"upstream": "app", "cache": cache if cache is not None else {}}], **kwargs)


def answering(table: dict):
    """A backend handler: target -> (status, headers, body) or a callable(ex) for that target;
    anything else gets 200 "ok" with max-age=60."""
    def handler(ex):
        entry = table.get(ex.request.target)
        if callable(entry):
            return entry(ex)
        status, headers, body = entry or (200, [("Cache-Control", "max-age=60")], b"ok")
        ex.respond(status, body, headers, framing="none" if status == 304 else "length")
    return handler


def asked(backend, target: str) -> list:
    """The requests for `target` that reached the backend."""
    return [r for r in client_requests(backend) if r.target == target]


def status_of(response) -> str:
    return response.header("Cache-Status") or ""


def reload(proxy, config: dict, generation: int) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)
    proxy.send_signal(signal.SIGHUP)
    assert wait_for_log(proxy, rf"config reloaded \(generation {generation}\)", 5), proxy.log_tail()


# --------------------------------------------------------------------------- storing

def test_a_cacheable_response_is_fetched_once_for_a_thousand_requests():
    with Backend(answering({})) as backend, Sluice(cached(backend, workers=2)) as proxy:
        with Client(proxy.port) as c:
            first = c.exchange("GET", "/page")
            assert_status(first, 200)
            assert "fwd=uri-miss" in status_of(first) and "stored" in status_of(first)
            for _ in range(999):
                r = c.exchange("GET", "/page")
                assert r.status == 200 and r.body == b"ok"
            assert "hit" in status_of(r)
        assert len(asked(backend, "/page")) == 1


@pytest.mark.parametrize("headers", [
    [("Cache-Control", "no-store, max-age=60")],
    [("Cache-Control", "private, max-age=60")],
    [("Cache-Control", "max-age=60"), ("Set-Cookie", "id=1")],
    [("Cache-Control", "max-age=60"), ("Vary", "*")],
], ids=["no-store", "private", "set-cookie", "vary-star"])
def test_responses_the_rfc_forbids_storing_are_fetched_every_time(headers):
    with Backend(answering({"/x": (200, headers, b"secret")})) as backend, \
            Sluice(cached(backend)) as proxy:
        for _ in range(3):
            r = proxy.get("/x")
            assert_status(r, 200)
            assert "stored" not in status_of(r)
        assert len(asked(backend, "/x")) == 3


def test_a_request_with_no_store_is_neither_served_from_nor_stored():
    with Backend(answering({})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/a", [("Cache-Control", "no-store")])
        proxy.get("/a", [("Cache-Control", "no-store")])
        assert len(asked(backend, "/a")) == 2
        assert "stored" in status_of(proxy.get("/a"))
        assert len(asked(backend, "/a")) == 3


def test_a_response_to_a_request_with_authorization_is_not_stored_unless_public():
    with Backend(answering({
            "/p": (200, [("Cache-Control", "public, max-age=60")], b"p"),
    })) as backend, Sluice(cached(backend)) as proxy:
        auth = [("Authorization", "Basic dTpw")]
        for _ in range(2):
            proxy.get("/a", auth)
            proxy.get("/p", auth)
        assert len(asked(backend, "/a")) == 2
        assert len(asked(backend, "/p")) == 1


def test_only_get_responses_are_stored_and_head_is_answered_from_them():
    with Backend(answering({})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/h")
        with Client(proxy.port) as c:
            c.request("HEAD", "/h")
            r = c.read_response(head_request=True)
            assert_status(r, 200)
            assert r.header("Content-Length") == "2" and "hit" in status_of(r)
        assert len(asked(backend, "/h")) == 1


def test_a_status_without_explicit_freshness_is_stored_only_when_heuristically_cacheable():
    with Backend(answering({
            "/moved": (302, [("Location", "/x"), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")],
                       b""),
            "/dated": (200, [("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")], b"d"),
    })) as backend, Sluice(cached(backend)) as proxy:
        for _ in range(2):
            proxy.get("/moved")
            proxy.get("/dated")
        assert len(asked(backend, "/moved")) == 2
        assert len(asked(backend, "/dated")) == 1  # 10% of its age since Last-Modified


def test_default_ttl_applies_to_responses_that_state_no_freshness():
    with Backend(answering({"/plain": (200, [], b"plain")})) as backend, \
            Sluice(cached(backend, {"default_ttl_s": 60})) as proxy:
        for _ in range(3):
            assert proxy.get("/plain").body == b"plain"
        assert len(asked(backend, "/plain")) == 1


def test_an_invalid_expires_means_already_stale():
    with Backend(answering({"/e": (200, [("Expires", "0"), ("ETag", '"e"')], b"e")})) as backend, \
            Sluice(cached(backend)) as proxy:
        proxy.get("/e")
        proxy.get("/e")
        assert len(asked(backend, "/e")) == 2


def test_s_maxage_wins_over_max_age():
    with Backend(answering({
            "/s": (200, [("Cache-Control", "max-age=0, s-maxage=60")], b"s"),
    })) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/s")
        assert "hit" in status_of(proxy.get("/s"))
        assert len(asked(backend, "/s")) == 1


# --------------------------------------------------------------------------- Age and Vary

def test_age_grows_while_a_response_is_stored_and_counts_the_age_it_came_with():
    with Backend(answering({
            "/aged": (200, [("Cache-Control", "max-age=600"), ("Age", "100")], b"a"),
    })) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/aged")
        first = int(proxy.get("/aged").header("Age"))
        time.sleep(2.1)
        later = int(proxy.get("/aged").header("Age"))
        assert first >= 100 and later >= first + 2


def test_vary_keeps_one_entry_per_value_of_the_fields_it_names():
    def by_encoding(ex):
        enc = ex.request.header("accept-encoding") or "none"
        ex.respond(200, enc.encode(), [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")])

    with Backend(answering({"/v": by_encoding})) as backend, Sluice(cached(backend)) as proxy:
        for _ in range(2):
            assert proxy.get("/v", [("Accept-Encoding", "gzip")]).body == b"gzip"
            assert proxy.get("/v", [("Accept-Encoding", "br")]).body == b"br"
            assert proxy.get("/v").body == b"none"
        # Values are normalised: case and spaces around commas do not make a new entry.
        assert proxy.get("/v", [("Accept-Encoding", "GZIP")]).body == b"gzip"
        assert len(asked(backend, "/v")) == 3


# --------------------------------------------------------------------------- validation

def test_a_stale_entry_is_revalidated_and_a_304_refreshes_it_with_updated_fields():
    version = {"n": 0}

    def validated(ex):
        version["n"] += 1
        if ex.request.header("if-none-match") == '"v1"':
            ex.respond(304, b"", [("ETag", '"v1"'), ("Cache-Control", "max-age=1"),
                                  ("X-Version", str(version["n"]))], framing="none")
        else:
            ex.respond(200, b"body-v1", [("ETag", '"v1"'), ("Cache-Control", "max-age=1"),
                                         ("X-Version", str(version["n"]))])

    with Backend(answering({"/r": validated})) as backend, Sluice(cached(backend)) as proxy:
        assert proxy.get("/r").header("X-Version") == "1"
        time.sleep(1.1)
        r = proxy.get("/r")
        assert_status(r, 200)
        assert r.body == b"body-v1" and r.header("X-Version") == "2"
        assert "fwd=stale" in status_of(r) and "fwd-status=304" in status_of(r)
        second = asked(backend, "/r")[1]
        assert second.header("if-none-match") == '"v1"'
        # Fresh again for another second, with the updated field.
        again = proxy.get("/r")
        assert "hit" in status_of(again) and again.header("X-Version") == "2"
        assert len(asked(backend, "/r")) == 2


def test_a_head_that_revalidates_with_a_304_refreshes_the_stored_response():
    def validated(ex):
        if ex.request.header("if-none-match") == '"h"':
            ex.respond(304, b"", [("ETag", '"h"'), ("Cache-Control", "max-age=60")],
                       framing="none")
        else:
            ex.respond(200, b"hbody", [("ETag", '"h"'), ("Cache-Control", "max-age=1")])

    with Backend(answering({"/hr": validated})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/hr")
        time.sleep(1.1)
        with Client(proxy.port) as c:
            c.request("HEAD", "/hr")
            r = c.read_response(head_request=True)
            assert_status(r, 200)
            assert r.header("Content-Length") == "5" and r.body == b""
        assert asked(backend, "/hr")[1].method == "HEAD"
        assert "hit" in status_of(proxy.get("/hr"))  # fresh for a minute now
        assert len(asked(backend, "/hr")) == 2


def test_a_client_conditional_request_gets_304_from_a_fresh_entry():
    with Backend(answering({
            "/c": (200, [("Cache-Control", "max-age=60"), ("ETag", 'W/"abc"'),
                         ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")], b"cond"),
    })) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/c")
        with Client(proxy.port) as c:
            for headers in ([("If-None-Match", '"x", "abc"')],  # weak comparison
                            [("If-Modified-Since", "Tue, 02 Jan 2024 00:00:00 GMT")]):
                c.request("GET", "/c", headers)
                r = c.read_response()
                assert_status(r, 304)
                assert r.body == b"" and r.header("ETag") == 'W/"abc"'
            assert c.exchange("GET", "/c", [("If-None-Match", '"other"')]).body == b"cond"
        assert len(asked(backend, "/c")) == 1


def test_request_directives_no_cache_and_max_age_send_the_request_on():
    with Backend(answering({
            "/d": (200, [("Cache-Control", "max-age=60"), ("ETag", '"d"')], b"d"),
    })) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/d")
        proxy.get("/d", [("Cache-Control", "no-cache")])
        time.sleep(1.1)  # ages are whole seconds: max-age=0 takes a response of age 0
        proxy.get("/d", [("Cache-Control", "max-age=0")])
        assert "hit" in status_of(proxy.get("/d", [("Cache-Control", "max-age=30")]))
        assert len(asked(backend, "/d")) == 3


def test_only_if_cached_gets_504_when_nothing_is_stored():
    with Backend(answering({})) as backend, Sluice(cached(backend)) as proxy:
        assert_status(proxy.get("/none", [("Cache-Control", "only-if-cached")]), 504)
        proxy.get("/none")
        assert_status(proxy.get("/none", [("Cache-Control", "only-if-cached")]), 200)
        assert len(asked(backend, "/none")) == 1


def test_max_stale_lets_a_request_take_a_stale_response():
    with Backend(answering({
            "/ms": (200, [("Cache-Control", "max-age=1"), ("ETag", '"m"')], b"m"),
    })) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/ms")
        time.sleep(1.1)
        r = proxy.get("/ms", [("Cache-Control", "max-stale=30")])
        assert "hit" in status_of(r) and "max-stale" in status_of(r)
        assert len(asked(backend, "/ms")) == 1


def test_a_304_that_brings_fields_the_cache_may_not_store_answers_but_drops_the_entry():
    def cookie_on_304(ex):
        if ex.request.header("if-none-match") == '"c"':
            ex.respond(304, b"", [("ETag", '"c"'), ("Cache-Control", "max-age=60"),
                                  ("Set-Cookie", "session=2")], framing="none")
        else:
            ex.respond(200, b"page", [("ETag", '"c"'), ("Cache-Control", "max-age=1")])

    with Backend(answering({"/k": cookie_on_304})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/k")
        time.sleep(1.1)
        r = proxy.get("/k")
        assert r.body == b"page" and r.header("Set-Cookie") == "session=2"
        after = proxy.get("/k")  # the cookie was never stored for others
        assert after.header("Set-Cookie") is None
        assert len(asked(backend, "/k")) == 3


def test_a_revalidation_asks_for_the_whole_response_whatever_range_the_client_wants():
    body = b"0123456789"

    def validated(ex):
        if ex.request.header("if-none-match") == '"r"':
            ex.respond(304, b"", [("ETag", '"r"'), ("Cache-Control", "max-age=60")],
                       framing="none")
        else:
            ex.respond(200, body, [("ETag", '"r"'), ("Cache-Control", "max-age=1")])

    with Backend(answering({"/rr": validated})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/rr")
        time.sleep(1.1)
        r = proxy.get("/rr", [("Range", "bytes=2-4"), ("If-Range", '"r"')])
        assert_status(r, 206)
        assert r.body == b"234"
        second = asked(backend, "/rr")[1]
        assert second.header("range") is None and second.header("if-range") is None
        assert second.header("if-none-match") == '"r"'


def test_a_request_id_the_backend_echoed_is_not_served_to_later_requests():
    def echo_id(ex):
        ex.respond(200, b"e", [("Cache-Control", "max-age=60"),
                               ("X-Request-Id", ex.request.header("x-request-id") or "none")])

    with Backend(answering({"/id": echo_id})) as backend, Sluice(cached(backend)) as proxy:
        first = proxy.get("/id", [("X-Request-Id", "first-request")])
        assert first.header("X-Request-Id") == "first-request"
        second = proxy.get("/id", [("X-Request-Id", "second-request")])
        assert "hit" in status_of(second)
        assert second.header("X-Request-Id") == "second-request"


def test_vary_on_several_lines_counts_every_line():
    def by_both(ex):
        body = "%s/%s" % (ex.request.header("accept-encoding"), ex.request.header("origin"))
        ex.respond(200, body.encode(), [("Cache-Control", "max-age=60"),
                                        ("Vary", "Accept-Encoding"), ("Vary", "Origin")])

    with Backend(answering({"/vv": by_both})) as backend, Sluice(cached(backend)) as proxy:
        a = [("Accept-Encoding", "gzip"), ("Origin", "https://a.test")]
        b = [("Accept-Encoding", "gzip"), ("Origin", "https://b.test")]
        assert proxy.get("/vv", a).body == b"gzip/https://a.test"
        assert proxy.get("/vv", b).body == b"gzip/https://b.test"
        assert proxy.get("/vv", a).body == b"gzip/https://a.test"
        assert len(asked(backend, "/vv")) == 2


def test_requests_with_a_body_keep_their_connection_on_a_cached_route():
    def post(ex):
        ex.read_body()
        ex.respond(200, b"posted", [])

    with Backend(answering({"/form": post})) as backend, Sluice(cached(backend)) as proxy:
        with Client(proxy.port) as c:
            for _ in range(3):
                r = c.exchange("POST", "/form", body=b"a=1")
                assert_status(r, 200)
                assert (r.header("Connection") or "").lower() != "close"
        assert len(asked(backend, "/form")) == 3


# --------------------------------------------------------------------------- invalidation

def test_a_successful_post_invalidates_the_target_and_its_location():
    def post(ex):
        ex.read_body()
        ex.respond(201, b"made", [("Location", "/other")])

    with Backend(answering({"/item": lambda ex: post(ex) if ex.request.method == "POST" else
                            ex.respond(200, b"item", [("Cache-Control", "max-age=60")])})) \
            as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/item")
        proxy.get("/other")
        assert "hit" in status_of(proxy.get("/item"))
        with Client(proxy.port) as c:
            assert_status(c.exchange("POST", "/item", body=b"x"), 201)
        assert "stored" in status_of(proxy.get("/item"))
        assert "stored" in status_of(proxy.get("/other"))
        assert len(asked(backend, "/other")) == 2


def test_an_absolute_location_invalidates_only_on_the_same_origin():
    def put(ex):
        ex.read_body()
        where = "HTTP://Sluice.Test/same" if ex.request.target == "/a" else "http://elsewhere.test/far"
        ex.respond(204, b"", [("Content-Location", where)], framing="none")

    with Backend(answering({"/a": lambda ex: put(ex) if ex.request.method == "PUT" else
                            ex.respond(200, b"a", [("Cache-Control", "max-age=60")]),
                            "/b": lambda ex: put(ex)})) as backend, \
            Sluice(cached(backend)) as proxy:
        for target in ("/same", "/far"):
            proxy.get(target)
        with Client(proxy.port) as c:
            assert_status(c.exchange("PUT", "/a", body=b"x"), 204)
            assert_status(c.exchange("PUT", "/b", body=b"x"), 204)
        assert "stored" in status_of(proxy.get("/same"))  # same origin, whatever its case
        assert "hit" in status_of(proxy.get("/far"))  # another host: left alone


# --------------------------------------------------------------------------- ranges

def test_a_range_request_is_answered_from_a_stored_response():
    body = bytes(range(256)) * 4
    with Backend(answering({"/bin": (200, [("Cache-Control", "max-age=60")], body)})) as backend, \
            Sluice(cached(backend)) as proxy:
        proxy.get("/bin")
        r = proxy.get("/bin", [("Range", "bytes=10-19")])
        assert_status(r, 206)
        assert r.body == body[10:20] and r.header("Content-Range") == "bytes 10-19/1024"
        assert proxy.get("/bin", [("Range", "bytes=-4")]).body == body[-4:]
        out = proxy.get("/bin", [("Range", "bytes=5000-")])
        assert_status(out, 416)
        assert out.header("Content-Range") == "bytes */1024"
        assert len(asked(backend, "/bin")) == 1


# --------------------------------------------------------------------------- stale answers

def test_stale_while_revalidate_answers_at_once_and_refreshes_once():
    count = {"n": 0}

    def slow_refresh(ex):
        count["n"] += 1
        if count["n"] > 1:
            time.sleep(1.0)  # the refresh is slow; the stale answers must not wait for it
        ex.respond(200, b"gen%d" % count["n"],
                   [("Cache-Control", "max-age=%d, stale-while-revalidate=30" %
                     (1 if count["n"] == 1 else 60))])

    with Backend(answering({"/swr": slow_refresh})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/swr")
        time.sleep(1.1)
        for _ in range(5):  # each on its own connection
            started = time.monotonic()
            r = proxy.get("/swr")
            assert r.body == b"gen1" and "stale-while-revalidate" in status_of(r)
            assert time.monotonic() - started < 0.5
        assert backend.wait_for(lambda _: len(asked(backend, "/swr")) == 2, 5.0)  # once
        deadline = time.monotonic() + 5
        while proxy.get("/swr").body != b"gen2":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(asked(backend, "/swr")) == 2


def test_a_refresh_with_a_slow_body_leaves_the_client_connection_free():
    count = {"n": 0}

    def slow_second_body(ex):
        count["n"] += 1
        body = b"gen%d" % count["n"]
        ex.send_head(200, [("Cache-Control", "max-age=%d, stale-while-revalidate=30" %
                            (1 if count["n"] == 1 else 60)),
                           ("Content-Length", str(len(body)))])
        if count["n"] > 1:
            time.sleep(1.5)  # the refresh's body comes slowly
        ex.send(body)

    with Backend(answering({"/slowb": slow_second_body})) as backend, \
            Sluice(cached(backend)) as proxy:
        proxy.get("/slowb")
        time.sleep(1.1)
        with Client(proxy.port) as c:
            assert c.exchange("GET", "/slowb").body == b"gen1"  # stale; starts the refresh
            started = time.monotonic()
            assert c.exchange("GET", "/slowb").body == b"gen1"  # the same connection, at once
            assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 5
        while proxy.get("/slowb").body != b"gen2":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(asked(backend, "/slowb")) == 2
        assert wait_for_log(proxy, r'"target":"/slowb".*"cache":"stale"', 3.0), proxy.log_tail()


def test_a_refresh_of_an_empty_body_ends_at_once():
    count = {"n": 0}

    def empty(ex):
        count["n"] += 1
        ex.respond(200, b"", [("Cache-Control", "max-age=%d, stale-while-revalidate=30" %
                                (1 if count["n"] == 1 else 60)), ("X-Gen", str(count["n"]))])

    with Backend(answering({"/empty": empty})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/empty")
        time.sleep(1.1)
        assert proxy.get("/empty").header("X-Gen") == "1"  # stale; starts the refresh
        deadline = time.monotonic() + 1.0  # well inside any backend timeout
        while proxy.get("/empty").header("X-Gen") != "2":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(asked(backend, "/empty")) == 2


def test_a_failed_background_refresh_is_tried_again_by_the_next_stale_hit():
    count = {"n": 0}

    def failing_once(ex):
        count["n"] += 1
        if count["n"] == 2:
            ex.respond(503, b"busy", [])
        else:
            ex.respond(200, b"gen%d" % count["n"],
                       [("Cache-Control", "max-age=%d, stale-while-revalidate=30" %
                         (1 if count["n"] == 1 else 60))])

    with Backend(answering({"/again": failing_once})) as backend, \
            Sluice(cached(backend)) as proxy:
        proxy.get("/again")
        time.sleep(1.1)
        assert proxy.get("/again").body == b"gen1"  # starts a refresh, which gets 503
        assert backend.wait_for(lambda _: len(asked(backend, "/again")) == 2, 5.0)
        time.sleep(0.2)
        assert proxy.get("/again").body == b"gen1"  # stale still, and a second refresh
        assert backend.wait_for(lambda _: len(asked(backend, "/again")) == 3, 5.0)
        deadline = time.monotonic() + 5
        while proxy.get("/again").body != b"gen3":
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_stale_if_error_answers_when_the_backend_is_down_or_fails():
    failing = {"on": False}

    def flaky(ex):
        if failing["on"]:
            ex.respond(503, b"down", [])
        else:
            ex.respond(200, b"good", [("Cache-Control", "max-age=1"), ("ETag", '"g"')])

    with Backend(answering({"/sie": flaky})) as backend, \
            Sluice(cached(backend, {"stale_if_error_s": 60})) as proxy:
        proxy.get("/sie")
        time.sleep(1.1)
        failing["on"] = True
        r = proxy.get("/sie")
        assert_status(r, 200)
        assert r.body == b"good" and "stale-if-error" in status_of(r)
        assert "fwd-status=503" in status_of(r)
        backend.stop()
        down = proxy.get("/sie")
        assert_status(down, 200)
        assert down.body == b"good" and "stale-if-error" in status_of(down)


def test_without_stale_if_error_a_backend_error_reaches_the_client():
    with Backend(answering({
            "/e": (200, [("Cache-Control", "max-age=1"), ("ETag", '"g"')], b"good"),
    })) as backend:
        closed = ClosedPort()
        config = cached(backend)
        with Sluice(config) as proxy:
            proxy.get("/e")
            time.sleep(1.1)
            backend.stop()
            assert proxy.get("/e").status in (502, 503)
        closed.close()


# --------------------------------------------------------------------------- collapsing

def half_then_rest(size: int, release: threading.Event):
    """A cacheable body of `size` bytes: "a" for its first half at once, then "b" for the rest
    once `release` is set."""
    def handler(ex):
        ex.send_head(200, [("Cache-Control", "max-age=60"), ("Content-Length", str(size))])
        ex.send(b"a" * (size // 2))
        release.wait(20)
        ex.send(b"b" * (size - size // 2))
    return handler


def test_concurrent_misses_make_one_backend_request_and_are_served_as_it_streams():
    size = 2 * MiB
    release = threading.Event()

    # Four workers: the clients' connections land on all of them, and every one waits on the
    # one fetch, whichever worker makes it.
    with Backend(answering({"/big": half_then_rest(size, release)})) as backend, \
            Sluice(cached(backend, workers=4)) as proxy:
        clients = [Client(proxy.port, timeout=20) for _ in range(100)]
        try:
            clients[0].request("GET", "/big")
            assert backend.wait_for(lambda _: len(asked(backend, "/big")) == 1, 5.0)
            for c in clients[1:]:
                c.request("GET", "/big")
            # Every client has its head and the first half before the backend sends the rest.
            heads = [c.read_head() for c in clients]
            for c, head in zip(clients, heads):
                assert_status(head, 200)
                assert c.recv_exact(size // 2) == b"a" * (size // 2)
            assert "collapsed" in status_of(heads[-1])
            release.set()
            for c in clients:
                assert c.recv_exact(size - size // 2) == b"b" * (size - size // 2)
        finally:
            release.set()
            for c in clients:
                c.close()
        assert len(asked(backend, "/big")) == 1
        assert "hit" in status_of(proxy.get("/big"))


def test_waiting_requests_get_the_whole_response_when_the_fetching_client_goes_away():
    size = 2 * MiB
    release = threading.Event()

    with Backend(answering({"/gone": half_then_rest(size, release)})) as backend, \
            Sluice(cached(backend, workers=2)) as proxy:
        fetching = Client(proxy.port, timeout=20)
        waiting = [Client(proxy.port, timeout=20) for _ in range(10)]
        try:
            fetching.request("GET", "/gone")
            assert backend.wait_for(lambda _: len(asked(backend, "/gone")) == 1, 5.0)
            assert_status(fetching.read_head(), 200)
            for c in waiting:
                c.request("GET", "/gone")
            for c in waiting:
                assert_status(c.read_head(), 200)
                assert c.recv_exact(size // 2) == b"a" * (size // 2)
            fetching.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            fetching.close()  # a reset, mid-body
            time.sleep(0.3)
            release.set()
            for c in waiting:
                assert c.recv_exact(size - size // 2) == b"b" * (size - size // 2)
        finally:
            release.set()
            for c in waiting:
                c.close()
        assert len(asked(backend, "/gone")) == 1
        assert "hit" in status_of(proxy.get("/gone"))  # and it was stored


def test_a_miss_that_waits_longer_than_collapse_wait_ms_fetches_for_itself():
    release = threading.Event()

    def first_hangs(ex):
        if ex.request.header("x-first"):
            release.wait(10)
        ex.respond(200, b"w", [("Cache-Control", "max-age=60")])

    with Backend(answering({"/w": first_hangs})) as backend, \
            Sluice(cached(backend, {"collapse_wait_ms": 300})) as proxy:
        with Client(proxy.port, timeout=10) as first, Client(proxy.port, timeout=10) as second:
            try:
                first.request("GET", "/w", [("X-First", "1")])
                assert backend.wait_for(lambda _: len(asked(backend, "/w")) == 1, 5.0)
                started = time.monotonic()
                second.request("GET", "/w")
                r = second.read_response()
                waited = time.monotonic() - started
                assert r.status == 200 and r.body == b"w"
                assert 0.25 <= waited < 3.0, waited
                assert len(asked(backend, "/w")) == 2
            finally:
                release.set()
            assert first.read_response().status == 200


def test_requests_waiting_on_a_fetch_that_may_not_be_stored_fetch_for_themselves():
    release = threading.Event()

    def cookie(ex):
        release.wait(10)
        ex.respond(200, b"mine", [("Cache-Control", "max-age=60"), ("Set-Cookie", "s=1")])

    with Backend(answering({"/c": cookie})) as backend, \
            Sluice(cached(backend, workers=2)) as proxy:
        clients = [Client(proxy.port, timeout=10) for _ in range(5)]
        try:
            clients[0].request("GET", "/c")
            assert backend.wait_for(lambda _: len(asked(backend, "/c")) == 1, 5.0)
            for c in clients[1:]:
                c.request("GET", "/c")
            time.sleep(0.2)
            assert len(asked(backend, "/c")) == 1  # the others wait
            release.set()
            for c in clients:
                r = c.read_response()
                assert r.status == 200 and r.body == b"mine"
        finally:
            release.set()
            for c in clients:
                c.close()
        assert len(asked(backend, "/c")) == 5


# --------------------------------------------------------------------------- bounds

def test_eviction_keeps_the_store_under_max_bytes_least_recently_used_first():
    body = b"x" * 60000
    with Backend(answering({f"/e{i}": (200, [("Cache-Control", "max-age=60")], body)
                            for i in range(40)})) as backend, \
            Sluice(cached(backend, {"max_bytes": 1048576, "max_object_bytes": 65536})) as proxy:
        for i in range(40):
            proxy.get(f"/e{i}")
            proxy.get("/e0")  # kept in use: never the least recently used
        for i in (0, 39, 38):
            assert "hit" in status_of(proxy.get(f"/e{i}")), i
        for i in (1, 2, 3):
            assert "stored" in status_of(proxy.get(f"/e{i}")), i


def test_a_response_over_max_object_bytes_streams_through_uncached_in_bounded_memory():
    total = 100 * MiB
    piece = b"z" * (256 * 1024)

    def huge(ex):
        ex.send_head(200, [("Cache-Control", "max-age=60"), ("Transfer-Encoding", "chunked")])
        for _ in range(total // len(piece)):
            ex.send_chunk(piece)
        ex.end_chunks()

    with Backend(answering({"/huge": huge})) as backend, Sluice(cached(backend)) as proxy:
        before = proxy.rss_bytes()
        peak = before
        for _ in range(2):
            with Client(proxy.port, timeout=30) as c:
                c.request("GET", "/huge")
                r = c.read_head()
                got = 0
                for chunk in c.body_pieces(r, 1 * MiB):
                    got += len(chunk)
                    peak = max(peak, proxy.rss_bytes())
                assert got == total
        assert peak - before < 32 * MiB, (before, peak)
        assert len(asked(backend, "/huge")) == 2


def test_the_access_log_says_what_the_cache_did():
    with Backend(answering({})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/log")
        proxy.get("/log")
        lines = wait_for_log(proxy, r'"cache":"hit"', 3.0)
        assert lines
        outcomes = [line["cache"] for line in access_lines(proxy) if line["target"] == "/log"]
        assert outcomes == ["miss", "hit"]


def test_entries_survive_a_reload_that_keeps_the_cache_settings():
    with Backend(answering({})) as backend, Sluice(cached(backend)) as proxy:
        proxy.get("/kept")
        reload(proxy, proxy.config, 2)
        assert "hit" in status_of(proxy.get("/kept"))
        reload(proxy, cached(backend, {"max_bytes": 16 * MiB}), 3)
        assert "stored" in status_of(proxy.get("/kept"))
        assert len(asked(backend, "/kept")) == 2
