"""Authentication on a running server: a credential added with the CLI works at once
(SMTP AUTH with smtplib and swaks, the API with urllib), and failed attempts are
throttled per client address and per user (454 4.7.0 / HTTP 429 with Retry-After)."""
from __future__ import annotations

import re
import smtplib
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from helpers import LOOPBACK, TernServer, make_message, unverified_tls_context

MAX_FAILURES = 10  # auth.max_failures_per_ip and auth.max_failures_per_user (defaults)
RETRY_RE = re.compile(r"try again in (\d+) s")


def smtp(server: TernServer, source_ip: str = LOOPBACK) -> smtplib.SMTP:
    """smtplib over STARTTLS, from `source_ip` (any 127.x address is loopback)."""
    s = smtplib.SMTP(LOOPBACK, server.submission_port, timeout=20, source_address=(source_ip, 0))
    s.ehlo("client.test")
    s.starttls(context=unverified_tls_context())
    s.ehlo("client.test")
    return s


def auth_plain(s: smtplib.SMTP, user: str, password: str) -> tuple[int, str]:
    """One AUTH PLAIN (smtplib's login() would go on to try LOGIN after a failure)."""
    s.user, s.password = user, password
    try:
        code, text = s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        code, text = e.smtp_code, e.smtp_error
    return code, text.decode() if isinstance(text, bytes) else text


def api(server: TernServer, token: str) -> tuple[int, dict, str]:
    """GET /api/v1/stats with `token`: status, headers, body."""
    req = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}/api/v1/stats")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_credential_added_while_serving_works_at_once(make_server, swaks_bin: str) -> None:
    server = make_server("auth-now")
    server.wait_http()
    for round in range(3):
        # A session opened first: its greeting has the server load its credentials now,
        # so the ones added below are not in that (fresh) snapshot.
        with smtp(server) as s:
            started = time.monotonic()
            cred = server.credential_add(f"new{round}-{uuid.uuid4().hex[:6]}", wait=False)
            cli_seconds = time.monotonic() - started
            assert auth_plain(s, cred.username, cred.password)[0] == 235
            marker = uuid.uuid4().hex
            refused = s.sendmail("sender@example.com", ["rcpt@example.net"], make_message(subject=marker))
            assert refused == {}
        server.store.wait_message_with(marker)
        # The snapshot is fresh again (the AUTH above read the store): the API finds a key
        # added after it at once, and so does a script that sends straight away.
        cred2 = server.credential_add(f"api{round}-{uuid.uuid4().hex[:6]}", wait=False)
        status, _, body = api(server, cred2.api_key)
        assert status == 200, body
        marker = uuid.uuid4().hex
        p = subprocess.run(
            [swaks_bin, "--server", f"{LOOPBACK}:{server.submission_port}", "--tls",
             "--auth-user", cred2.username, "--auth-password", cred2.password,
             "--from", "sender@example.com", "--to", "rcpt@example.net", "--header", f"Subject: {marker}",
             "--timeout", "20"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and "queued as" in p.stdout.lower(), p.stdout[-2000:]
        server.store.wait_message_with(marker)
        # Otherwise the server's 2 s cache could have expired while the CLI ran, and this
        # test would not show that a miss reads the store.
        print(f"credential add took {cli_seconds:.2f} s")


def test_wrong_passwords_are_throttled_per_client_and_per_user(make_server) -> None:
    server = make_server("auth-throttle")
    alice = server.credential_add("alice")
    bob = server.credential_add("bob")

    # MAX_FAILURES wrong passwords for alice from 127.0.0.1 (a new session every few, so
    # that smtp.limits.max_errors does not close one first): each one a plain 535.
    for first in range(0, MAX_FAILURES, 5):
        with smtp(server) as s:
            for _ in range(first, min(first + 5, MAX_FAILURES)):
                code, text = auth_plain(s, "alice", "wrong-" + uuid.uuid4().hex)
                assert code == 535 and text.startswith("5.7.8"), (code, text)

    # Then the client is throttled: 454 4.7.0 naming it, even for the right password.
    with smtp(server) as s:
        for password in ("wrong", alice.password):
            code, text = auth_plain(s, "alice", password)
            assert code == 454 and text.startswith("4.7.0"), (code, text)
            assert "too many failed authentication attempts from 127.0.0.1" in text.lower(), text
            m = RETRY_RE.search(text)
            assert m and 0 < int(m.group(1)) <= 300, text
        code, text = auth_plain(s, "bob", bob.password)  # another user, same client
        assert code == 454, (code, text)

    # From another client, alice is throttled too (her own limit), bob is not.
    with smtp(server, source_ip="127.0.0.2") as s:
        code, text = auth_plain(s, "alice", alice.password)
        assert code == 454 and text.startswith("4.7.0") and "for this user" in text, (code, text)
    with smtp(server, source_ip="127.0.0.2") as s:
        assert auth_plain(s, "bob", bob.password)[0] == 235

    # One warning when the client became throttled, one for alice: not one per attempt.
    log = server.log_tail(400)
    assert len(re.findall(r"throttled.*client 127\.0\.0\.1", log)) == 1, log
    assert len(re.findall(r"throttled.*user alice", log)) == 1, log


def test_wrong_api_keys_are_throttled_with_429(make_server) -> None:
    server = make_server("api-throttle")
    cred = server.credential_add("app")
    server.wait_http()
    assert api(server, cred.api_key)[0] == 200
    # Well-formed keys with ids that do not exist: refused like a wrong secret (401).
    for _ in range(MAX_FAILURES):
        status, _, body = api(server, f"tern_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}")
        assert status == 401, body
    for token in (f"tern_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}", cred.api_key):
        status, headers, body = api(server, token)
        assert status == 429, body
        retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
        assert retry is not None and 0 < int(retry) <= 300, headers
        assert f"try again in {retry} s" in body, body
    assert len(re.findall(r"throttled.*client 127\.0\.0\.1", server.log_tail(400))) == 1
