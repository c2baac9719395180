"""Submission with real clients: STARTTLS + AUTH, implicit TLS, PIPELINING,
SMTPUTF8, BDAT; what intake stores; the counters (CLI and HTTP)."""
from __future__ import annotations

import datetime as dt
import json
import smtplib
import time
import uuid

import pytest

from helpers import (
    COUNTER_KEYS,
    LOOPBACK,
    Credential,
    TernServer,
    assert_queued,
    assert_reply,
    content_bytes,
    header_block,
    headers_named,
    make_message,
    strip_angles,
    unique_id,
    unverified_tls_context,
)


def smtplib_queued(resp: tuple[int, bytes]) -> str:
    code, text = resp
    assert code == 250, resp
    assert text.startswith(b"2.0.0"), resp
    assert b"queued as" in text.lower(), resp
    return text.decode()


def check_stored(server: TernServer, marker: str, *, mail_from: str, rcpts: list[str], credential: str,
                 t0_ms: int) -> dict:
    msg = server.store.wait_message_with(marker)
    content = content_bytes(msg)
    assert msg["mail_from"] == mail_from
    assert sorted(r["address"] for r in msg["recipients"]) == sorted(rcpts)
    assert msg["credential"] == credential
    assert LOOPBACK in (msg["client_ip"] or "")
    assert isinstance(msg["size"], int) and msg["size"] > 0
    now_ms = int(time.time() * 1000)
    assert t0_ms - 5000 <= msg["received_at"] <= now_ms + 5000, msg["received_at"]
    # Intake prepends Received (naming our hostname) ...
    hdrs = header_block(content)
    assert hdrs[0][0].lower() == "received", f"first header is {hdrs[0]!r}, not Received"
    assert "tern.test" in hdrs[0][1]
    # ... and records one `outbound` event per recipient.
    outbound = [e for e in msg["events"] if e["type"] == "outbound"]
    assert len(outbound) == len(rcpts), msg["events"]
    assert sorted(e["recipient_id"] for e in outbound) == sorted(r["id"] for r in msg["recipients"])
    return msg


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- smtplib


def test_ehlo_before_tls_hides_auth(auth_server: TernServer) -> None:
    with auth_server.client() as c:
        assert_reply(c.greeting, 220, contains="tern.test")
        c.ehlo()
        for ext in ("STARTTLS", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "SIZE"):
            assert ext in c.extensions, f"{ext} not advertised: {c.extensions}"
        assert c.extensions["SIZE"] == "26214400"
        assert "AUTH" not in c.extensions, "AUTH advertised before TLS"
        c.starttls()
        c.ehlo()
        assert "STARTTLS" not in c.extensions, "STARTTLS advertised again inside TLS"
        mechs = c.extensions.get("AUTH", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs, c.extensions
        c.quit()


def test_starttls_auth_plain_adds_received_message_id_date(auth_server: TernServer, alice: Credential) -> None:
    t0 = now_ms()
    marker = f"plain-{uuid.uuid4().hex}"
    rcpts = ["one@example.net", "two@example.org"]
    with smtplib.SMTP(LOOPBACK, auth_server.submission_port, timeout=15) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        code, _ = s.starttls(context=unverified_tls_context())
        assert code == 220
        s.ehlo("client.test")
        assert s.has_extn("auth")
        s.user, s.password = alice.username, alice.password
        code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
        assert code == 235 and resp.startswith(b"2.7.0"), (code, resp)
        code, resp = s.mail("sender@example.com")
        assert code == 250 and resp.startswith(b"2.1.0"), (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250 and resp.startswith(b"2.1.5"), (code, resp)
        smtplib_queued(s.data(make_message(subject=marker, message_id=None, date=False)))
    msg = check_stored(auth_server, marker, mail_from="sender@example.com", rcpts=rcpts,
                       credential=alice.username, t0_ms=t0)
    content = content_bytes(msg)
    mids = headers_named(content, "Message-ID")
    assert len(mids) == 1, f"Message-ID headers: {mids}"
    assert strip_angles(msg["message_id_header"]) == strip_angles(mids[0])
    assert len(headers_named(content, "Date")) == 1, "Date was not added exactly once"


def test_starttls_auth_login_keeps_message_id(auth_server: TernServer, alice: Credential) -> None:
    t0 = now_ms()
    mid = unique_id("login")
    with smtplib.SMTP(LOOPBACK, auth_server.submission_port, timeout=15) as s:
        s.starttls(context=unverified_tls_context())
        s.ehlo("client.test")
        s.user, s.password = alice.username, alice.password
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235 and resp.startswith(b"2.7.0"), (code, resp)
        assert s.mail("sender@example.com")[0] == 250
        assert s.rcpt("rcpt@example.net")[0] == 250
        smtplib_queued(s.data(make_message(message_id=mid)))
    msg = check_stored(auth_server, mid, mail_from="sender@example.com", rcpts=["rcpt@example.net"],
                       credential=alice.username, t0_ms=t0)
    content = content_bytes(msg)
    assert [strip_angles(m) for m in headers_named(content, "Message-ID")] == [mid]
    assert strip_angles(msg["message_id_header"]) == mid
    assert len(headers_named(content, "Date")) == 1


def test_wrong_password_is_535(auth_server: TernServer, alice: Credential) -> None:
    with auth_server.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(alice.username, alice.password + "x"), 535, "5.7.8")
        assert_reply(c.auth_login("nobody", "nothing"), 535, "5.7.8")
        assert_reply(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0")
        assert_reply(c.auth_plain(alice.username, alice.password), 235, "2.7.0")
        assert_reply(c.cmd("AUTH PLAIN AGFsaWNlAHg="), 503, "5.5.1")  # already authenticated
        c.quit()


def test_implicit_tls_auth(auth_server: TernServer, alice: Credential) -> None:
    t0 = now_ms()
    marker = f"implicit-{uuid.uuid4().hex}"
    with smtplib.SMTP_SSL(LOOPBACK, auth_server.tls_port, timeout=15, context=unverified_tls_context()) as s:
        s.ehlo("client.test")
        assert s.has_extn("auth"), s.esmtp_features
        assert not s.has_extn("starttls"), "STARTTLS advertised on the implicit-TLS port"
        code, resp = s.login(alice.username, alice.password)
        assert code == 235 and resp.startswith(b"2.7.0")
        assert s.mail("sender@example.com")[0] == 250
        assert s.rcpt("rcpt@example.net")[0] == 250
        smtplib_queued(s.data(make_message(subject=marker)))
    check_stored(auth_server, marker, mail_from="sender@example.com", rcpts=["rcpt@example.net"],
                 credential=alice.username, t0_ms=t0)


def test_smtputf8_addresses(auth_server: TernServer, alice: Credential) -> None:
    t0 = now_ms()
    marker = f"utf8-{uuid.uuid4().hex}"
    sender, rcpt = "jörg@bücher.example", "用户@例子.example"
    body = "Grüße, 你好 — ünïcödé body\r\n"
    msg = make_message(subject=marker, sender=sender, to=rcpt, body=body)
    with smtplib.SMTP(LOOPBACK, auth_server.submission_port, timeout=15) as s:
        s.starttls(context=unverified_tls_context())
        s.ehlo("client.test")
        assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
        s.login(alice.username, alice.password)
        code, resp = s.mail(sender, ["SMTPUTF8", "BODY=8BITMIME"])
        assert code == 250 and resp.startswith(b"2.1.0"), (code, resp)
        code, resp = s.rcpt(rcpt)
        assert code == 250 and resp.startswith(b"2.1.5"), (code, resp)
        smtplib_queued(s.data(msg))
    stored = check_stored(auth_server, marker, mail_from=sender, rcpts=[rcpt], credential=alice.username, t0_ms=t0)
    assert body.encode() in content_bytes(stored)


def test_utf8_address_without_smtputf8_is_refused(auth_server: TernServer, alice: Credential) -> None:
    with auth_server.authed_client(alice) as c:
        r = c.cmd("MAIL FROM:<jörg@bücher.example>".encode())
        assert 500 <= r.code < 600, f"non-ASCII MAIL FROM without SMTPUTF8 accepted: {r}"
        assert_reply(c.cmd("NOOP"), 250)
        c.quit()


# --------------------------------------------------------------------------- raw protocol


def test_pipelining_batch_reply_order(auth_server: TernServer, alice: Credential) -> None:
    marker = f"pipe-{uuid.uuid4().hex}"
    with auth_server.authed_client(alice) as c:
        c.ehlo()
        assert "PIPELINING" in c.extensions
        c.send(b"MAIL FROM:<sender@example.com>\r\n"
               b"RCPT TO:<a@example.net>\r\n"
               b"RCPT TO:<b@example.net>\r\n"
               b"DATA\r\n")
        r = c.read_replies(4)
        assert_reply(r[0], 250, "2.1.0")
        assert_reply(r[1], 250, "2.1.5")
        assert_reply(r[2], 250, "2.1.5")
        assert_reply(r[3], 354)
        c.send(make_message(subject=marker) + b".\r\n")
        assert_queued(c.read_reply())
        # A second batch, with a bad recipient in the middle: replies stay in order.
        c.send(b"RSET\r\nMAIL FROM:<sender@example.com>\r\nRCPT TO:<no-at-sign>\r\n"
               b"RCPT TO:<c@example.net>\r\nDATA\r\n")
        r = c.read_replies(5)
        assert_reply(r[0], 250, "2.0.0")
        assert_reply(r[1], 250, "2.1.0")
        assert 500 <= r[2].code < 600, f"bad address accepted: {r[2]}"
        assert_reply(r[3], 250, "2.1.5")
        assert_reply(r[4], 354)
        c.send(make_message(subject=marker + "-2") + b".\r\n")
        assert_queued(c.read_reply())
        # The whole next transaction and QUIT after the message, in one write each.
        c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n")
        assert [x.code for x in c.read_replies(3)] == [250, 250, 354]
        c.send(make_message(subject=marker + "-3") + b".\r\nQUIT\r\n")
        assert_queued(c.read_reply())
        assert_reply(c.read_reply(), 221)
    m = auth_server.store.wait_message_with(marker + "\r\n")
    assert sorted(r["address"] for r in m["recipients"]) == ["a@example.net", "b@example.net"]
    m2 = auth_server.store.wait_message_with(marker + "-2")
    assert [r["address"] for r in m2["recipients"]] == ["c@example.net"]
    auth_server.store.wait_message_with(marker + "-3")


def test_bdat_chunks_are_stored_verbatim(auth_server: TernServer, alice: Credential) -> None:
    marker = f"bdat-{uuid.uuid4().hex}"
    # BDAT content is not dot-stuffed and "\r\n.\r\n" inside it does not end anything.
    body = b"first line\r\n.\r\n..two dots stay two\r\n.leading dot\r\nlast line\r\n"
    msg = make_message(subject=marker, body=body)
    chunk1, chunk2, chunk3 = msg[:50], msg[50:120], msg[120:]
    with auth_server.authed_client(alice) as c:
        c.ehlo()
        assert "CHUNKING" in c.extensions
        assert_reply(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<bdat@example.net>"), 250, "2.1.5")
        c.send(f"BDAT {len(chunk1)}\r\n".encode() + chunk1)
        assert_reply(c.read_reply(), 250)
        # With PIPELINING the remaining chunks may go in one write.
        c.send(f"BDAT {len(chunk2)}\r\n".encode() + chunk2 + f"BDAT {len(chunk3)} LAST\r\n".encode() + chunk3)
        assert_reply(c.read_reply(), 250)
        assert_queued(c.read_reply())
        # BDAT 0 LAST closes a message too.
        marker2 = marker + "-zero-last"
        msg2 = make_message(subject=marker2)
        assert_reply(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<bdat@example.net>"), 250, "2.1.5")
        c.send(f"BDAT {len(msg2)}\r\n".encode() + msg2)
        assert_reply(c.read_reply(), 250)
        assert_queued(c.cmd("BDAT 0 LAST"))
        c.quit()
    stored = auth_server.store.wait_message_with(marker + "\r\n")
    assert content_bytes(stored).endswith(msg), "BDAT content was altered"
    assert content_bytes(auth_server.store.wait_message_with(marker2)).endswith(msg2)


def test_bdat_and_data_mixed_is_refused(auth_server: TernServer, alice: Credential) -> None:
    with auth_server.authed_client(alice) as c:
        assert_reply(c.cmd("MAIL FROM:<sender@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<x@example.net>"), 250)
        c.send(b"BDAT 5\r\nHello")
        assert_reply(c.read_reply(), 250)
        assert_reply(c.cmd("DATA"), 503, "5.5.1")
        assert_reply(c.cmd("RSET"), 250)
        c.quit()


def test_misc_commands(auth_server: TernServer) -> None:
    with auth_server.client() as c:
        assert_reply(c.cmd("HELO client.test"), 250)
        c.ehlo()
        assert_reply(c.cmd("NOOP"), 250, "2.0.0")
        assert_reply(c.cmd("VRFY postmaster"), 252)
        assert_reply(c.cmd("FROBNICATE now"), 500, "5.5.2")
        assert_reply(c.cmd("RCPT TO:<x@example.net>"), 503, "5.5.1")  # no MAIL yet
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        assert_reply(c.cmd("MAIL FROM:<>"), 530, "5.7.0")  # not authenticated
        assert_reply(c.cmd("QUIT"), 221, "2.0.0")
        assert c.wait_closed()


def test_dot_stuffing_and_rset(ip_server: TernServer) -> None:
    marker = f"dots-{uuid.uuid4().hex}"
    body = b".leading dot\r\n..two dots\r\n.\r\n. \r\nend\r\n"
    msg = make_message(subject=marker, body=body)
    with ip_server.client() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<r@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RSET"), 250, "2.0.0")
        assert_reply(c.cmd("DATA"), 503, "5.5.1")  # RSET ended the transaction
        assert_reply(c.cmd("MAIL FROM:<>"), 250, "2.1.0")  # the null sender is allowed
        assert_reply(c.cmd("RCPT TO:<r@example.net>"), 250, "2.1.5")
        assert_queued(c.data(msg))  # SMTPClient.data dot-stuffs
        c.quit()
    stored = ip_server.store.wait_message_with(marker)
    assert content_bytes(stored).endswith(msg), "dot-unstuffing did not restore the message"
    assert stored["mail_from"] == ""
    assert stored["credential"] == ip_server.ip_credential.username  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- counters


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_counters_cli_and_http(auth_server: TernServer, alice: Credential) -> None:
    before = auth_server.stats()
    for k in COUNTER_KEYS:
        assert isinstance(before.get(k), int), f"stats --json lacks integer {k}: {before}"
    with auth_server.authed_client(alice) as c:
        assert_queued(c.send_message("s@example.com", ["a@example.net", "b@example.net", "c@example.net"],
                                     make_message()))
        assert_queued(c.send_message("s@example.com", ["d@example.net"], make_message()))
        c.quit()
    after = auth_server.stats()
    assert after["outbound"] - before["outbound"] == 4, (before, after)
    assert after["inbound"] == before["inbound"]

    now = dt.datetime.now(dt.timezone.utc)
    future = auth_server.stats(**{"from": iso(now + dt.timedelta(hours=1))})
    assert future["outbound"] == 0, future
    window = auth_server.stats(**{"from": iso(now - dt.timedelta(hours=1)), "to": iso(now + dt.timedelta(hours=1))})
    assert window["outbound"] >= 4

    auth_server.wait_http()
    assert auth_server.http("GET", "/healthz")[0] == 200
    status, body = auth_server.http("GET", "/api/v1/stats", token=alice.api_key)
    assert status == 200, body
    http_stats = json.loads(body)
    for k in COUNTER_KEYS:
        assert isinstance(http_stats.get(k), int), f"/api/v1/stats lacks integer {k}: {http_stats}"
    assert http_stats["outbound"] == after["outbound"], (http_stats, after)

    status, body = auth_server.http("GET", f"/api/v1/stats?from={iso(now + dt.timedelta(hours=1))}", token=alice.api_key)
    assert status == 200 and json.loads(body)["outbound"] == 0, body
    status, body = auth_server.http(
        "GET", f"/api/v1/stats?from={iso(now - dt.timedelta(hours=1))}&to={iso(now + dt.timedelta(hours=1))}",
        token=alice.api_key)
    assert status == 200 and json.loads(body)["outbound"] >= 4, body

    assert auth_server.http("GET", "/api/v1/stats")[0] == 401
    assert auth_server.http("GET", "/api/v1/stats", token="not-a-key")[0] == 401
    assert auth_server.http("GET", "/api/v1/stats", token=alice.password)[0] == 401  # the SMTP password is no API key
    assert auth_server.http("GET", "/api/v1/stats?from=yesterday", token=alice.api_key)[0] == 400
    assert auth_server.http("GET", "/api/v1/stats?to=2026-13-45T99:00:00Z", token=alice.api_key)[0] == 400
    assert auth_server.http(
        "GET", f"/api/v1/stats?from={iso(now)}&to={iso(now - dt.timedelta(days=1))}", token=alice.api_key)[0] == 400
    bad = auth_server.cli("stats", "--json", "--from", "yesterday", check=False)
    assert bad.returncode != 0 and "from" in bad.stderr.lower(), bad


def test_credential_list_and_remove(auth_server: TernServer) -> None:
    name = f"temp-{uuid.uuid4().hex[:8]}"
    cred = auth_server.credential_add(name)
    assert cred.username == name and cred.password and cred.api_key
    listed = auth_server.cli_json("credential", "list")
    if isinstance(listed, dict):  # {"credentials": [...]} or {name: {...}}
        listed = listed.get("credentials", [{"username": k} for k in listed])
    names = [c.get("username", c.get("name")) if isinstance(c, dict) else c for c in listed]
    assert name in names, listed
    with auth_server.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(cred.username, cred.password), 235, "2.7.0")
        c.quit()
    auth_server.wait_http()
    assert auth_server.http("GET", "/api/v1/stats", token=cred.api_key)[0] == 200
    auth_server.cli("credential", "remove", name)
    auth_server.wait_credential(cred, present=False)  # the server re-reads credentials within seconds
    with auth_server.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(cred.username, cred.password), 535, "5.7.8")
        c.quit()
    assert auth_server.http("GET", "/api/v1/stats", token=cred.api_key)[0] == 401
    assert auth_server.cli("credential", "remove", name, check=False).returncode != 0
