"""Engagement tracking end to end, with real peers on loopback: `tern serve` with
`tracking` configured delivers (through `delivery.routes`) to an aiosmtpd sink that
keeps every message; the tests read the tracked copies as a mail client would, fetch
the pixel and links with real HTTP clients (urllib, and curl when installed), and check
what Tern recorded: events, timelines (CLI and API), counters and suppressions.

Every server gets a signing secret chosen by the test (written to
data_dir/signing-secret before it starts). `TokenCodec` implements the token format
documented in Sources/TernCore/Tracking/TrackingToken.swift; it is checked against
the tokens Tern put in the mail (it must reproduce them byte for byte) before it is
used to sign a click token with a link index the message does not have."""
from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import html.parser
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerFactory
from helpers import Credential, TernServer, assert_queued, free_ports
from test_delivery import ScriptedMX, wait_until

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
MPP_UA = "Mozilla/5.0"  # what Apple's image proxy sends
FROM_DOMAIN = "shop.example"
LINK0 = "https://shop.example/sale?x=1&y=2"  # written &amp; in the HTML: the redirect must decode it
LINK1 = "http://blog.example/post/42"
KEPT_MAILTO = "mailto:help@shop.example"
KEPT_NOTRACK = "https://shop.example/account"
TOKEN_RE = r"[A-Za-z0-9_-]{16,64}"
EPOCH_MS = 1_735_689_600_000  # TimeOrderedID's epoch: ids carry their acceptance time


# --------------------------------------------------------------------------- tokens


def _hkdf_sha256(key: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with no salt (a zero-filled salt of hash length, §2.2)."""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


class TokenCodec:
    """Tracking tokens as TrackingToken.swift documents them: version/kind byte, key id,
    varint message id, zigzag varint (recipient - message), varint link index (clicks),
    then HMAC-SHA256 truncated to 12 bytes; base64url without padding."""

    KINDS = {"open": 1, "click": 2, "unsubscribe": 3}
    MASK = (1 << 64) - 1

    def __init__(self, secret: bytes):
        self.key_id = _hkdf_sha256(secret, b"tern-token-v1/key-id", 1)[0]
        self.keys = {k: _hkdf_sha256(secret, f"tern-token-v1/{k}".encode(), 32) for k in self.KINDS}

    def sign(self, kind: str, message_id: int, recipient_id: int, link: int = 0) -> str:
        code = self.KINDS[kind]
        delta = ((recipient_id - message_id + (1 << 63)) & self.MASK) - (1 << 63)
        body = bytes([0x10 | code, self.key_id]) + _varint(message_id & self.MASK)
        body += _varint(((delta << 1) ^ (delta >> 63)) & self.MASK)
        if kind == "click":
            body += _varint(link)
        mac = hmac.new(self.keys[kind], b"tern-token-v1" + bytes([code]) + body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()

    @staticmethod
    def address_form(token: str) -> str:
        """The same token as it goes into a local part: lower-case base32 without padding."""
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return base64.b32encode(raw).rstrip(b"=").decode().lower()

    @classmethod
    def decode(cls, token: str) -> dict:
        """The fields of a token (not verified: that is Tern's job)."""
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        kind = {v: k for k, v in cls.KINDS.items()}[raw[0] & 0x0F]
        body = raw[:-12]
        message, pos = _read_varint(body, 2)
        zz, pos = _read_varint(body, pos)
        link = _read_varint(body, pos)[0] if kind == "click" else None
        delta = (zz >> 1) ^ -(zz & 1)
        return {"kind": kind, "message_id": message, "recipient_id": message + delta, "link": link}


def hex_id(n: int) -> str:
    return f"{n:016x}"


def accepted_at(message_id: str) -> float:
    """When Tern accepted a message (epoch seconds), read from its time-ordered id."""
    return ((int(message_id, 16) >> 22) + EPOCH_MS) / 1000


def sleep_until_after(message_id: str, seconds: float) -> None:
    """Until `seconds` have passed since the message was accepted (so that opens/clicks
    are not `too_fast_after_delivery`)."""
    delay = accepted_at(message_id) + seconds - time.time()
    if delay > 0:
        time.sleep(delay)


# --------------------------------------------------------------------------- servers and mail


class Sink(ScriptedMX):
    """test_delivery's aiosmtpd server (accepts every ordinary local part), with lookups."""

    def copies_for(self, address: str) -> list[bytes]:
        with self.lock:
            return [c for (_, rcpts, c) in self.received if address in rcpts]

    def with_marker(self, marker: str) -> list[tuple[str, list[str], bytes]]:
        with self.lock:
            return [m for m in self.received if marker.encode() in m[2]]

    def wait_copy(self, address: str, marker: str, timeout: float = 20) -> bytes:
        def find() -> bytes | None:
            found = [c for c in self.copies_for(address) if marker.encode() in c]
            assert len(found) <= 1, f"{len(found)} copies of {marker} delivered to {address}"
            return found[0] if found else None
        return wait_until(find, timeout=timeout, what=f"delivery of {marker} to {address}")


@pytest.fixture
def sink() -> Any:
    (port,) = free_ports(1)
    with Sink("127.0.0.1", port) as s:
        s.port = port  # type: ignore[attr-defined]
        yield s


def tracking_servers(make_server: ServerFactory, tmp_path: Path, sink: Sink,
                     *specs: dict) -> list[tuple[TernServer, Credential, TokenCodec]]:
    """Starts one server per spec ({"track": ..., "rules": {...}}) at once, each with a
    signing secret of the test's choosing, delivery routed to the sink, and an AUTH credential."""
    started = []
    for i, spec in enumerate(specs):
        tracking: dict[str, Any] = {"track": spec.get("track", "all")}
        if "rules" in spec:
            rules_path = tmp_path / f"rules-{i}.json"
            rules_path.write_text(json.dumps(spec["rules"]))
            tracking["rules_file"] = str(rules_path)
        overrides = {
            "tracking": tracking,
            "delivery": {"enabled": True, "routes": {"*": f"127.0.0.1:{sink.port}"},  # type: ignore[attr-defined]
                         "retry_schedule": [1], "connect_timeout": 2},
        }
        server = make_server(f"track{i}", overrides, start=False)
        secret = os.urandom(32)
        server.data_dir.mkdir(parents=True, exist_ok=True)
        (server.data_dir / "signing-secret").write_text(base64.b64encode(secret).decode() + "\n")
        # Made before the start, the credential is there from the first moment (no cache to wait out).
        cred = server.credential_add("app")
        server.start(wait=False)
        started.append((server, cred, secret))
    out = []
    for server, cred, secret in started:
        server.wait_ready()
        server.wait_http()
        server.wait_credential(cred)
        out.append((server, cred, TokenCodec(secret)))
    return out


def newsletter(marker: str, *, sender: str = f"news@{FROM_DOMAIN}", to: list[str],
               extra_headers: dict[str, str] | None = None, links: bool = True) -> bytes:
    """multipart/alternative: text (with the placeholder and a bare URL) and quoted-printable
    HTML with two http(s) links, a mailto link, a data-tern-notrack link and the placeholder."""
    msg = EmailMessage()
    msg["From"] = f"Shop <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"Newsletter {marker}"
    msg["Date"] = "Sat, 28 Nov 2026 12:00:00 +0000"
    msg["Message-ID"] = f"<{marker}@tests.tern>"
    for k, v in (extra_headers or {}).items():
        msg[k] = v
    msg.set_content(f"Hello ({marker}).\nSale: {LINK0}\nUnsubscribe: {{{{unsubscribe_url}}}}\n")
    anchors = (f'<p><a href="{LINK0.replace("&", "&amp;")}">Sale</a> and <a href=\'{LINK1}\'>blog</a></p>\n'
               if links else "")
    html = (f"<html><head><title>{marker}</title></head><body>\n<p>Hello ({marker}).</p>\n{anchors}"
            f'<p><a href="{KEPT_MAILTO}">Write to us</a></p>\n'
            f'<p><a data-tern-notrack href="{KEPT_NOTRACK}">Your account</a></p>\n'
            '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>\n</body></html>\n')
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=email.policy.SMTP)


def submit(server: TernServer, cred: Credential, rcpts: list[str], message: bytes,
           mail_from: str = f"news@{FROM_DOMAIN}") -> str:
    with server.authed_client(cred) as c:
        queue_id = assert_queued(c.send_message(mail_from, rcpts, message))
        c.quit()
    assert re.fullmatch(r"[0-9a-f]{16}", queue_id), queue_id
    return queue_id


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        elif tag == "img":
            self.images.append(dict(attrs))


class Copy:
    """A delivered message, parsed as a mail client would."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.html = self.text = ""
        for part in self.msg.walk():
            if part.get_content_type() == "text/html":
                self.html = part.get_content()
            elif part.get_content_type() == "text/plain":
                self.text = part.get_content()
        p = _Links()
        p.feed(self.html)
        self.anchors, self.images = p.anchors, p.images

    def header(self, name: str) -> str | None:
        v = self.msg[name]
        return None if v is None else str(v)


def tracked_urls(copy: Copy, public: str) -> dict:
    """The pixel, click and unsubscribe URLs of a copy tracked for everything (asserting the shape)."""
    pub = re.escape(public)
    pixels = [i for i in copy.images if re.fullmatch(f"{pub}/o/{TOKEN_RE}", i.get("src", ""))]
    assert len(pixels) == 1, f"expected one open pixel in the HTML, got images {copy.images}\n{copy.html}"
    assert (pixels[0].get("width"), pixels[0].get("height")) == ("1", "1"), pixels[0]
    assert re.search(r"<img [^>]*>\s*</body>", copy.html), f"the pixel is not just before </body>:\n{copy.html}"
    hrefs = [a.get("href") for a in copy.anchors]
    assert len(hrefs) == 5, hrefs
    clicks, mailto, notrack, unsub = hrefs[:2], hrefs[2], hrefs[3], hrefs[4]
    for h in clicks:
        assert re.fullmatch(f"{pub}/c/{TOKEN_RE}", h or ""), f"link not rewritten: {hrefs}"
    assert clicks[0] != clicks[1], hrefs
    assert mailto == KEPT_MAILTO, f"mailto: link must be kept: {hrefs}"
    assert notrack == KEPT_NOTRACK, f"data-tern-notrack link must be kept: {hrefs}"
    assert re.fullmatch(f"{pub}/u/{TOKEN_RE}", unsub or ""), f"placeholder href not replaced: {hrefs}"
    assert "{{unsubscribe_url}}" not in copy.html and "{{unsubscribe_url}}" not in copy.text
    assert f"Unsubscribe: {unsub}" in copy.text, f"text part placeholder not replaced:\n{copy.text}"
    assert f"Sale: {LINK0}" in copy.text, "links in text/plain are left alone"
    token = lambda u: u.rsplit("/", 1)[1]  # noqa: E731
    return {"open": pixels[0]["src"], "clicks": clicks, "unsubscribe": unsub,
            "open_token": token(pixels[0]["src"]), "click_tokens": [token(c) for c in clicks],
            "unsubscribe_token": token(unsub)}


# --------------------------------------------------------------------------- HTTP clients


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError(302): we read Location ourselves


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, method: str = "GET", ua: str = BROWSER_UA, data: bytes | None = None,
          content_type: str | None = None) -> tuple[int, dict, bytes]:
    """urllib, never following redirects: (status, lower-cased headers, body)."""
    req = urllib.request.Request(url, method=method, data=data, headers={"User-Agent": ua})
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


DEFAULT_UA = object()  # the client's own User-Agent


class HttpTool:
    """curl when installed, else http.client: one request, no redirect following,
    optionally from another loopback address. ua=DEFAULT_UA sends the tool's own UA,
    ua="" sends none."""

    def __init__(self) -> None:
        self.curl = shutil.which("curl")

    def __call__(self, url: str, method: str = "GET", ua: Any = DEFAULT_UA, data: bytes | None = None,
                 source_ip: str | None = None) -> tuple[int, dict, bytes]:
        if self.curl:
            args = [self.curl, "-sS", "--max-time", "10", "-i"]
            if method == "HEAD":
                args.append("-I")
            elif method != "GET":
                args += ["-X", method]
            if data is not None:
                args += ["--data-binary", "@-"]
            if ua == "":
                args += ["-H", "User-Agent:"]
            elif ua is not DEFAULT_UA:
                args += ["-A", ua]
            if source_ip:
                args += ["--interface", source_ip]
            p = subprocess.run(args + [url], input=data or b"", capture_output=True, timeout=20)
            assert p.returncode == 0, f"curl {url}: {p.stderr!r}"
            head, _, body = p.stdout.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            return status, headers, body
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10,
                                          source_address=(source_ip, 0) if source_ip else None)
        try:
            headers = {} if ua == "" else {"User-Agent": "Python-urllib/3.11" if ua is DEFAULT_UA else ua}
            if data is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, u.path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


# --------------------------------------------------------------------------- store and API views


def timeline(server: TernServer, message_id: str) -> dict:
    return server.cli_json("message", message_id)


def events_of(server: TernServer, message_id: str, address: str) -> list[dict]:
    view = timeline(server, message_id)
    (rcpt,) = [r for r in view["recipients"] if r["address"] == address]
    return rcpt["events"]


def wait_events(server: TernServer, message_id: str, address: str, predicate: Any,
                timeout: float = 5, what: str = "events") -> list[dict]:
    """Polls the timeline (events are written every 100 ms) until predicate(events)."""
    deadline = time.monotonic() + timeout
    while True:
        evs = events_of(server, message_id, address)
        if predicate(evs):
            return evs
        assert time.monotonic() < deadline, f"timed out waiting for {what}; timeline: {json.dumps(evs, indent=1)}"
        time.sleep(0.1)


def api_json(server: TernServer, path: str, cred: Credential) -> Any:
    status, body = server.http("GET", path, token=cred.api_key)
    assert status == 200, f"GET {path}: {status} {body[:300]!r}"
    return json.loads(body)


def assert_not_found(resp: tuple[int, dict, bytes], what: str) -> None:
    status, headers, body = resp
    assert status == 404, f"{what}: expected 404, got {status} {headers} {body[:200]!r}"
    assert "location" not in headers, f"{what}: a 404 must not carry a Location header: {headers}"


# --------------------------------------------------------------------------- 1. end to end


def test_tracked_newsletter_end_to_end(make_server: ServerFactory, tmp_path: Path, sink: Sink):
    ((server, cred, codec),) = tracking_servers(make_server, tmp_path, sink, {"track": "all"})
    public = f"http://127.0.0.1:{server.http_port}"
    marker = uuid.uuid4().hex
    alice, bob = "alice@example.net", "bob@example.org"
    first_id = submit(server, cred, [alice, bob], newsletter(marker, to=[alice, bob],
                                                             extra_headers={"X-Tern-Track": "all"}))

    copies = {a: Copy(sink.wait_copy(a, marker)) for a in (alice, bob)}
    # One delivery per recipient, each to that recipient alone.
    assert sorted(r for (_, rcpts, _) in sink.with_marker(marker) for r in rcpts) == [alice, bob]
    assert all(len(rcpts) == 1 for (_, rcpts, _) in sink.with_marker(marker))

    urls, ids = {}, {}
    for addr, copy in copies.items():
        assert copy.header("X-Tern-Track") is None and b"x-tern-track" not in copy.raw.lower(), \
            f"X-Tern-Track must be removed before delivery ({addr})"
        u = urls[addr] = tracked_urls(copy, public)
        assert copy.msg.get_all("List-Unsubscribe") and len(copy.msg.get_all("List-Unsubscribe")) == 1
        assert copy.header("List-Unsubscribe") == (
            f"<{u['unsubscribe']}>, "
            f"<mailto:unsubscribe+{TokenCodec.address_form(u['unsubscribe_token'])}@bounces.{FROM_DOMAIN}>"), \
            copy.header("List-Unsubscribe")
        assert copy.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        tokens = [TokenCodec.decode(u["open_token"]), *map(TokenCodec.decode, u["click_tokens"]),
                  TokenCodec.decode(u["unsubscribe_token"])]
        assert [t["kind"] for t in tokens] == ["open", "click", "click", "unsubscribe"]
        assert [t["link"] for t in tokens[1:3]] == [0, 1]
        assert len({(t["message_id"], t["recipient_id"]) for t in tokens}) == 1, tokens
        ids[addr] = (hex_id(tokens[0]["message_id"]), hex_id(tokens[0]["recipient_id"]))
        # The test's codec reproduces Tern's tokens exactly (it is used in the next test).
        m, r = tokens[0]["message_id"], tokens[0]["recipient_id"]
        assert codec.sign("open", m, r) == u["open_token"]
        assert [codec.sign("click", m, r, i) for i in (0, 1)] == u["click_tokens"]
        assert codec.sign("unsubscribe", m, r) == u["unsubscribe_token"]

    # The first recipient's copy keeps the id of the 250 reply; the other has its own.
    assert ids[alice][0] == first_id, (ids, first_id)
    assert ids[bob][0] != first_id
    assert urls[alice]["open_token"] != urls[bob]["open_token"]
    for addr, (mid, rid) in ids.items():
        view = timeline(server, mid)
        assert [(r["address"], r["id"]) for r in view["recipients"]] == [(addr, rid)], view

    # People open and click later than scanners: wait past the 1 s / 2 s "too fast" rules.
    sleep_until_after(first_id, 2.3)
    for addr, opens, clicks in ((alice, 1, [0, 1]), (bob, 2, [1])):
        u = urls[addr]
        for _ in range(opens):
            status, headers, body = fetch(u["open"])
            assert status == 200, (status, headers)
            assert headers.get("content-type") == "image/gif"
            assert len(body) == 43 and body.startswith(b"GIF89a"), body
            assert "no-store" in headers.get("cache-control", ""), headers
        for i in clicks:
            status, headers, _ = fetch(u["clicks"][i])
            assert status == 302, f"click {i}: {status} {headers}"
            assert headers.get("location") == [LINK0, LINK1][i], headers

    # Counters: 3 opens by 2 recipients, 3 clicks by 2, all human.
    def counted() -> dict | None:
        s = server.stats()
        return s if s["opens"] == 3 and s["clicks"] == 3 else None
    stats = wait_until(counted, timeout=30, what="3 opens and 3 clicks counted")
    expected = {"outbound": 2, "sent": 2, "opens": 3, "clicks": 3, "unique_opens": 2, "unique_clicks": 2,
                "human_opens": 3, "human_clicks": 3, "unsubscribes": 0}
    assert {k: stats[k] for k in expected} == expected, stats
    api_stats = api_json(server, "/api/v1/stats", cred)
    assert {k: api_stats[k] for k in expected} == expected, api_stats

    # Timeline of the 250 reply's id: alice's outbound, sent, open, click, click in order.
    view = timeline(server, first_id)
    assert view["id"] == first_id and view["mail_from"] == f"news@{FROM_DOMAIN}"
    assert view["message_id_header"] == f"<{marker}@tests.tern>"
    (rcpt,) = view["recipients"]
    assert (rcpt["address"], rcpt["state"]) == (alice, "sent")
    evs = rcpt["events"]
    assert [e["type"] for e in evs] == ["outbound", "sent", "open", "click", "click"], evs
    assert [e["at"] for e in evs] == sorted(e["at"] for e in evs)
    op, c0, c1 = evs[2]["details"], evs[3]["details"], evs[4]["details"]
    assert (op["machine"], op["reason"], op.get("user_agent"), op.get("ip")) == ("false", "human", BROWSER_UA, "127.0.0.1"), op
    assert (c0["url"], c0["link"], c0["machine"], c0["reason"]) == (LINK0, "0", "false", "human"), c0
    assert (c1["url"], c1["link"], c1["machine"], c1["reason"]) == (LINK1, "1", "false", "human"), c1
    assert api_json(server, f"/api/v1/messages/{first_id}", cred) == view

    bob_evs = events_of(server, ids[bob][0], bob)
    assert [e["type"] for e in bob_evs] == ["outbound", "sent", "open", "open", "click"], bob_evs
    assert bob_evs[4]["details"]["url"] == LINK1

    # Bob's copy, a message of its own, has its own unsubscribe page (a GET changes nothing) ...
    status, _, page = fetch(urls[bob]["unsubscribe"])
    assert status == 200 and bob in page.decode() and alice not in page.decode(), page
    # ... and its links are in the store: after a restart its clicks still redirect.
    server.stop()
    server.start()
    server.wait_http()
    status, headers, _ = fetch(urls[bob]["clicks"][0])
    assert (status, headers.get("location")) == (302, LINK0), f"Bob's click after a restart: {status} {headers}"
    assert server.stats()["unsubscribes"] == 0 and server.cli_json("suppression", "list") == []


# --------------------------------------------------------------------------- 2. HTTP endpoints


def test_tracking_endpoints_with_a_real_client(make_server: ServerFactory, tmp_path: Path, sink: Sink):
    # Only 127.0.0.2 is "Apple": requests from 127.0.0.1 keep the built-in verdicts.
    rules = {"replace_defaults": False,
             "rules": [{"reason": "apple_mpp", "kinds": ["open"], "ip_ranges": ["127.0.0.2/32"]}]}
    ((server, cred, codec),) = tracking_servers(make_server, tmp_path, sink, {"track": "all", "rules": rules})
    public = f"http://127.0.0.1:{server.http_port}"
    tool = HttpTool()
    carol = "carol@example.net"
    m1, m2 = uuid.uuid4().hex, uuid.uuid4().hex
    mid = submit(server, cred, [carol], newsletter(m1, to=[carol]))
    # A second message tracked for opens only: it has no stored links.
    mid2 = submit(server, cred, [carol], newsletter(m2, to=[carol], extra_headers={"X-Tern-Track": "opens"}))
    u = tracked_urls(Copy(sink.wait_copy(carol, m1)), public)
    copy2 = Copy(sink.wait_copy(carol, m2))
    (pixel2,) = [i["src"] for i in copy2.images if "/o/" in i.get("src", "")]
    t2 = TokenCodec.decode(pixel2.rsplit("/", 1)[1])
    assert hex_id(t2["message_id"]) == mid2
    t1 = TokenCodec.decode(u["open_token"])
    assert hex_id(t1["message_id"]) == mid
    assert codec.sign("click", t1["message_id"], t1["recipient_id"], 1) == u["click_tokens"][1], \
        "the test's token codec does not reproduce Tern's click token"

    expected: list[tuple[str, str, str]] = [("outbound", "", ""), ("sent", "", "")]  # (type, machine, reason)

    # Open with the tool's own User-Agent (curl/…): a known scanner.
    status, headers, body = tool(u["open"])
    assert (status, headers.get("content-type"), len(body)) == (200, "image/gif", 43), (status, headers, body)
    assert body.startswith(b"GIF8") and "no-store" in headers.get("cache-control", "")
    expected.append(("open", "true", "known_scanner_ua"))

    # Click: 302 to the original URL (decoded from &amp;), not followed.
    status, headers, _ = tool(u["clicks"][0])
    assert (status, headers.get("location")) == (302, LINK0), (status, headers)
    expected.append(("click", "true", "known_scanner_ua"))

    # HEAD requests, even with a browser's User-Agent, are link checkers.
    status, headers, body = tool(u["open"], method="HEAD", ua=BROWSER_UA)
    assert (status, headers.get("content-type")) == (200, "image/gif"), (status, headers)
    expected.append(("open", "true", "scanner_head"))
    status, headers, _ = tool(u["clicks"][1], method="HEAD", ua=BROWSER_UA)
    assert (status, headers.get("location")) == (302, LINK1), (status, headers)
    expected.append(("click", "true", "scanner_head"))

    # Apple Mail Privacy Protection: "Mozilla/5.0" from a listed address.
    status, _, _ = tool(u["open"], ua=MPP_UA, source_ip="127.0.0.2")
    assert status == 200
    expected.append(("open", "true", "apple_mpp"))

    # No User-Agent at all.
    assert tool(u["open"], ua="")[0] == 200
    expected.append(("open", "true", "empty_user_agent"))

    # Forged, truncated, garbage and wrong-kind tokens: 404, never a redirect, nothing recorded.
    ot, ct, ut = u["open_token"], u["click_tokens"][0], u["unsubscribe_token"]
    flip = lambda t, i: t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:]  # noqa: E731
    for path in (f"/o/{flip(ot, -6)}", f"/c/{flip(ct, -6)}", f"/c/{flip(ct, 3)}", f"/u/{flip(ut, -6)}",
                 f"/o/{ot[:-1]}", f"/c/{ct[:-1]}", f"/c/{ct[:-4]}", f"/c/{ct[:20]}", f"/u/{ut[:-2]}",
                 "/c/", "/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", f"/c/{ct}=", f"/c/{ct}xx",
                 f"/c/{ot}", f"/o/{ct}", f"/c/{ut}", f"/u/{ct}", f"/u/{ot}"):
        assert_not_found(tool(public + path, ua=BROWSER_UA), f"GET {path}")
    assert_not_found(tool(f"{public}/c/{flip(ct, -6)}", method="HEAD", ua=BROWSER_UA), "HEAD forged click")
    assert_not_found(tool(f"{public}/u/{flip(ut, -6)}", method="POST", data=b"List-Unsubscribe=One-Click"),
                     "POST forged unsubscribe")
    assert_not_found(tool(f"{public}/u/{ot}", method="POST", data=b"List-Unsubscribe=One-Click"),
                     "POST unsubscribe with an open token")
    # Correctly signed click tokens (the server's secret is the test's) for links that do not exist:
    # index 2 of a message with two links, and index 0 of a message tracked without clicks.
    wrong_index = codec.sign("click", t1["message_id"], t1["recipient_id"], 2)
    assert_not_found(tool(f"{public}/c/{wrong_index}", ua=BROWSER_UA), "click token for link index 2 of 2")
    assert_not_found(tool(f"{public}/c/{wrong_index}", method="HEAD", ua=BROWSER_UA), "HEAD link index 2 of 2")
    no_links = codec.sign("click", t2["message_id"], t2["recipient_id"], 0)
    assert_not_found(tool(f"{public}/c/{no_links}", ua=BROWSER_UA), "click token of a message without links")

    # The unsubscribe page names the address and changes nothing.
    status, headers, page = tool(u["unsubscribe"])
    assert status == 200 and headers.get("content-type", "").startswith("text/html"), (status, headers)
    text = page.decode()
    assert carol in text, text
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', text, re.S)
    assert form, f"no form on the unsubscribe page:\n{text}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
    barrier(server, tool, u["open"], mid, carol)
    expected.append(("open", "false", "human"))
    assert "unsubscribe" not in [e["type"] for e in events_of(server, mid, carol)], "GET must not unsubscribe"
    assert server.cli_json("suppression", "list") == [], "GET must not suppress"

    # The page's form, then RFC 8058 one-click twice more: one event, one suppression.
    status, _, body = tool(urllib.parse.urljoin(u["unsubscribe"], form.group(1)), method="POST",
                           ua=BROWSER_UA, data=urllib.parse.urlencode(fields).encode())
    assert status == 200 and b"unsubscribed" in body.lower(), (status, body)
    expected.append(("unsubscribe", "", ""))
    for _ in range(2):
        status, _, _ = tool(u["unsubscribe"], method="POST", data=b"List-Unsubscribe=One-Click")
        assert status == 200

    # After 2 s, the same "Mozilla/5.0" from 127.0.0.1 is a person (the range decides), and a
    # click from 127.0.0.2 is not apple_mpp (the rule is for opens).
    sleep_until_after(mid, 2.2)
    status, headers, _ = tool(u["clicks"][1], ua=MPP_UA, source_ip="127.0.0.2")
    assert (status, headers.get("location")) == (302, LINK1)
    expected.append(("click", "false", "human"))
    assert tool(u["open"], ua=MPP_UA)[0] == 200
    expected.append(("open", "false", "human"))

    wait_events(server, mid, carol, lambda e: len(e) >= len(expected), what="all requests recorded")
    # One more open, stored after anything the requests above could still have recorded.
    barrier(server, tool, u["open"], mid, carol)
    expected.append(("open", "false", "human"))
    evs = events_of(server, mid, carol)
    got = [(e["type"], e["details"].get("machine", ""), e["details"].get("reason", "")) for e in evs]
    assert got == expected, "timeline:\n" + "\n".join(map(str, got)) + "\nexpected:\n" + "\n".join(map(str, expected))
    mpp = [e for e in evs if e["details"].get("reason") == "apple_mpp"][0]["details"]
    assert (mpp["ip"], mpp["user_agent"]) == ("127.0.0.2", MPP_UA), mpp
    assert [e["details"].get("method") for e in evs if e["details"].get("reason") == "scanner_head"] == ["HEAD", "HEAD"]
    unsub = [e for e in evs if e["type"] == "unsubscribe"]
    assert len(unsub) == 1, unsub

    sup = server.cli_json("suppression", "list")
    assert [(s["address"], s["domain"], s["reason"]) for s in sup] == [(carol, FROM_DOMAIN, "unsubscribed")], sup
    stats = server.stats()
    assert (stats["opens"], stats["clicks"], stats["unsubscribes"]) == (7, 3, 1), stats
    assert (stats["unique_opens"], stats["unique_clicks"], stats["human_opens"], stats["human_clicks"]) == (1, 1, 3, 1), stats
    assert [e["type"] for e in events_of(server, mid2, carol)] == ["outbound", "sent"], "message 2 was never opened"

    # After a restart the links come from the store (not intake's memory) and the tokens still verify.
    server.stop()
    server.start()
    server.wait_http()
    status, headers, _ = tool(u["clicks"][0], ua=BROWSER_UA)
    assert (status, headers.get("location")) == (302, LINK0), f"click after restart: {status} {headers}"
    assert_not_found(tool(f"{public}/c/{wrong_index}", ua=BROWSER_UA), "link index 2 of 2, after a restart")
    assert_not_found(tool(f"{public}/c/{no_links}", ua=BROWSER_UA), "message without links, after a restart")
    assert tool(u["open"], ua=BROWSER_UA)[0] == 200
    wait_events(server, mid, carol, lambda e: [x["type"] for x in e][-2:] == ["click", "open"],
                what="the click and open after the restart")


def barrier(server: TernServer, tool: HttpTool, open_url: str, message_id: str, address: str) -> None:
    """Records one human open and waits until it is stored: everything recorded before it is
    stored by then (events are written in order, in batches)."""
    sleep_until_after(message_id, 1.2)
    before = len(events_of(server, message_id, address))
    assert tool(open_url, ua=BROWSER_UA)[0] == 200
    wait_events(server, message_id, address, lambda e: len(e) > before, what="the barrier open")


# --------------------------------------------------------------------------- 3. suppression


def test_one_click_unsubscribe_suppresses_that_sender_only(make_server: ServerFactory, tmp_path: Path, sink: Sink):
    ((server, cred, _),) = tracking_servers(make_server, tmp_path, sink, {"track": "all"})
    public = f"http://127.0.0.1:{server.http_port}"
    dave = "dave@example.net"
    m1 = uuid.uuid4().hex
    submit(server, cred, [dave], newsletter(m1, to=[dave]))
    copy = Copy(sink.wait_copy(dave, m1))
    # The client takes the https/http URL of List-Unsubscribe and POSTs the one-click body.
    lu = re.findall(r"<([^>]+)>", copy.header("List-Unsubscribe") or "")
    (url,) = [x for x in lu if x.startswith(public + "/u/")]
    # Opened and clicked at once, as a security gateway does: too fast for a person.
    first_id = hex_id(TokenCodec.decode(url.rsplit("/", 1)[1])["message_id"])
    fast = []
    for kind, target, limit in (("open", tracked_urls(copy, public)["open"], 1.0),
                                ("click", tracked_urls(copy, public)["clicks"][0], 2.0)):
        assert fetch(target)[0] == {"open": 200, "click": 302}[kind]
        if time.time() < accepted_at(first_id) + limit - 0.05:  # else too slow a machine to tell
            fast.append(kind)
    status, _, body = fetch(url, method="POST", data=b"List-Unsubscribe=One-Click",
                            content_type="application/x-www-form-urlencoded")
    assert status == 200, (status, body)
    evs = wait_events(server, first_id, dave, lambda e: "unsubscribe" in [x["type"] for x in e],
                      what="the unsubscribe event")
    verdicts = {e["type"]: (e["details"]["machine"], e["details"]["reason"]) for e in evs if e["type"] in fast}
    assert verdicts == {k: ("true", "too_fast_after_delivery") for k in fast}, evs
    wait_until(lambda: server.cli_json("suppression", "list"), timeout=30, what="the suppression entry")
    sup = server.cli_json("suppression", "list")
    assert [(s["address"], s["domain"]) for s in sup] == [(dave, FROM_DOMAIN)], sup

    # Same From domain (another mailbox of it), and the address in other case: suppressed.
    # Another From domain: delivered.
    same, upper, other = (uuid.uuid4().hex for _ in range(3))
    same_id = submit(server, cred, [dave], newsletter(same, sender=f"offers@{FROM_DOMAIN}", to=[dave]),
                     mail_from=f"offers@{FROM_DOMAIN}")
    upper_id = submit(server, cred, ["Dave@Example.NET"], newsletter(upper, to=["Dave@Example.NET"]))
    other_id = submit(server, cred, [dave], newsletter(other, sender="hello@other.example", to=[dave]),
                      mail_from="hello@other.example")
    # The sending domain is the From header's, whatever the envelope says.
    esp = uuid.uuid4().hex
    esp_id = submit(server, cred, [dave], newsletter(esp, to=[dave]), mail_from="bounce-123@esp.example")

    other_copy = Copy(sink.wait_copy(dave, other))
    assert "/u/" in (other_copy.header("List-Unsubscribe") or ""), "the other sender's mail is tracked too"
    for mid, addr in ((same_id, dave), (upper_id, "Dave@Example.NET"), (esp_id, dave)):
        evs = wait_events(server, mid, addr, lambda e: any(x["type"] in ("suppressed", "sent") for x in e),
                          timeout=15, what=f"an outcome for {mid}")
        view = timeline(server, mid)
        assert view["recipients"][0]["state"] == "suppressed", \
            f"mail from {FROM_DOMAIN} to an unsubscribed address must be suppressed: {json.dumps(view, indent=1)}"
        assert [e["type"] for e in evs] == ["outbound", "suppressed"], evs
    assert timeline(server, other_id)["recipients"][0]["state"] == "sent"
    assert not any(sink.with_marker(m) for m in (same, upper, esp)), "a suppressed message reached the sink"
    stats = server.stats()
    assert (stats["sent"], stats["unsubscribes"]) == (2, 1), stats


# --------------------------------------------------------------------------- 4. per-message control


def test_x_tern_track_header_overrides_configuration(make_server: ServerFactory, tmp_path: Path, sink: Sink):
    (off, off_cred, _), (on, on_cred, _) = tracking_servers(
        make_server, tmp_path, sink, {"track": "none"}, {"track": "all"})

    # track: none, but the message asks for opens: a pixel and nothing else.
    erin = "erin@example.net"
    m1 = uuid.uuid4().hex
    opens_id = submit(off, off_cred, [erin], newsletter(m1, to=[erin], extra_headers={"X-Tern-Track": "opens"}))

    # track: all, but the message asks for none: delivered as sent (plus Received), not split.
    frank, gina = "frank@example.net", "gina@example.org"
    m2 = uuid.uuid4().hex
    sent = newsletter(m2, to=[frank, gina], extra_headers={"X-Tern-Track": "none"})
    none_id = submit(on, on_cred, [frank, gina], sent)

    copy = Copy(sink.wait_copy(erin, m1))
    public = f"http://127.0.0.1:{off.http_port}"
    assert copy.header("X-Tern-Track") is None and b"x-tern-track" not in copy.raw.lower()
    pixels = [i["src"] for i in copy.images if re.fullmatch(f"{re.escape(public)}/o/{TOKEN_RE}", i.get("src", ""))]
    assert len(pixels) == 1, copy.html
    assert [a.get("href") for a in copy.anchors] == [LINK0, LINK1, KEPT_MAILTO, KEPT_NOTRACK, "{{unsubscribe_url}}"], \
        "only opens were asked for: links must be untouched"
    assert "/c/" not in copy.html and "/u/" not in copy.html and "/u/" not in copy.text
    assert copy.header("List-Unsubscribe") is None and copy.header("List-Unsubscribe-Post") is None
    assert fetch(pixels[0])[0] == 200
    wait_events(off, opens_id, erin, lambda e: [x["type"] for x in e] == ["outbound", "sent", "open"],
                what="the open of the per-message tracked mail")

    raws = {a: sink.wait_copy(a, m2) for a in (frank, gina)}
    expected = sent.replace(b"X-Tern-Track: none\r\n", b"")
    assert expected != sent
    for addr, raw in raws.items():
        assert raw.startswith(b"Received: "), raw[:200]
        stripped = re.sub(rb"\AReceived: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", b"", raw, count=1)
        assert stripped.split(b"\r\n\r\n", 1)[1] == sent.split(b"\r\n\r\n", 1)[1], \
            f"body delivered to {addr} differs from the body sent"
        assert stripped == expected, f"{addr}: delivered message is not the sent one minus X-Tern-Track:\n{raw.decode()}"
    view = timeline(on, none_id)
    assert sorted(r["address"] for r in view["recipients"]) == [frank, gina], "X-Tern-Track: none must not split"


def test_own_list_unsubscribe_is_kept(make_server: ServerFactory, tmp_path: Path, sink: Sink):
    ((server, cred, _),) = tracking_servers(make_server, tmp_path, sink, {"track": "all"})
    hank = "hank@example.net"
    marker = uuid.uuid4().hex
    own = "<mailto:leave@shop.example?subject=unsubscribe>"
    submit(server, cred, [hank], newsletter(marker, to=[hank], extra_headers={"List-Unsubscribe": own}))
    copy = Copy(sink.wait_copy(hank, marker))
    assert copy.msg.get_all("List-Unsubscribe") == [own], copy.msg.get_all("List-Unsubscribe")
    assert copy.header("List-Unsubscribe-Post") is None, "no one-click header for the sender's own List-Unsubscribe"
    # The body is still tracked, placeholder included.
    tracked_urls(copy, f"http://127.0.0.1:{server.http_port}")
