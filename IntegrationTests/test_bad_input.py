"""Bad input and limits: each refused with its exact reply, while a second
client on another connection completes a normal transaction meanwhile."""
from __future__ import annotations

import contextlib
import random
import socket
import ssl
import time
import uuid
from typing import Iterator

import pytest

from conftest import ServerFactory
from helpers import (
    ConnectionClosed,
    Credential,
    Reply,
    SMTPClient,
    TernServer,
    assert_queued,
    assert_reply,
    make_message,
)

LIMITS = {
    "max_message_size": 20000,
    "max_recipients": 5,
    "max_command_line": 512,
    "max_text_line": 1000,
    "max_errors": 5,
    "max_connections_per_ip": 4,
}
BYSTANDER_IP = "127.0.0.2"   # the well-behaved client
CROWD_IP = "127.0.0.3"       # used only by the per-IP limit test
DEFAULT_COMMAND_TIMEOUT = 300  # SMTPServerLimits.defaultCommandTimeout: what a test of a shorter one must not wait for


@pytest.fixture(scope="module")
def limits_server(tern_bin, tmp_path_factory) -> Iterator[TernServer]:  # type: ignore[no-untyped-def]
    f = ServerFactory(tern_bin, tmp_path_factory.mktemp("limits"))
    s = f("limits", {"smtp": {"limits": LIMITS}})
    s.credential_add("loopback", networks=["127.0.0.0/8"])
    yield s
    f.stop_all()


@contextlib.contextmanager
def bystander(server: TernServer, cred: Credential | None = None) -> Iterator[SMTPClient]:
    """A second client that opens its transaction before the misbehaviour and
    finishes it afterwards: the server must keep serving it."""
    c = server.authed_client(cred, source_ip=BYSTANDER_IP) if cred else server.client(source_ip=BYSTANDER_IP)
    c.ehlo("bystander.test")
    assert_reply(c.cmd("MAIL FROM:<by@example.com>"), 250, "2.1.0")
    assert_reply(c.cmd("RCPT TO:<stander@example.net>"), 250, "2.1.5")
    yield c
    marker = f"bystander-{uuid.uuid4().hex}"
    assert_queued(c.data(make_message(subject=marker)))
    c.quit()
    server.store.wait_message_with(marker)


def start_txn(c: SMTPClient, rcpt: str = "r@example.net") -> None:
    assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250, "2.1.0")
    assert_reply(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5")


def assert_session_usable(c: SMTPClient) -> None:
    """The session is in a clean state afterwards: NOOP answers exactly once."""
    assert_reply(c.cmd("NOOP"), 250)
    assert c.no_reply_within(0.3), f"unexpected extra bytes: {c.buf!r}"


# --------------------------------------------------------------------------- limits


def test_max_recipients(limits_server: TernServer) -> None:
    marker = f"rcpts-{uuid.uuid4().hex}"
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250, "2.1.0")
        for i in range(LIMITS["max_recipients"]):
            assert_reply(c.cmd(f"RCPT TO:<r{i}@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<one-too-many@example.net>"), 452, "4.5.3")
        assert_reply(c.cmd("RCPT TO:<two-too-many@example.net>"), 452, "4.5.3")
        assert_queued(c.data(make_message(subject=marker)))
        c.quit()
    m = limits_server.store.wait_message_with(marker)
    assert len(m["recipients"]) == LIMITS["max_recipients"]


def test_size_declared_at_mail(limits_server: TernServer) -> None:
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        assert c.extensions.get("SIZE") == str(LIMITS["max_message_size"]), c.extensions
        assert_reply(c.cmd(f"MAIL FROM:<s@example.com> SIZE={LIMITS['max_message_size'] + 1}"), 552, "5.3.4")
        assert_reply(c.cmd("MAIL FROM:<s@example.com> SIZE=1000"), 250, "2.1.0")
        c.quit()


def test_oversized_data(limits_server: TernServer) -> None:
    marker = f"huge-{uuid.uuid4().hex}"
    body = ("x" * 98 + "\r\n") * 300  # 30,000 bytes > 20,000
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        c.send(make_message(subject=marker, body=body) + b".\r\n")
        assert_reply(c.read_reply(), 552, "5.3.4")
        assert_session_usable(c)
        # BDAT over the limit is refused too.
        start_txn(c)
        big = make_message(subject=marker + "-bdat", body=body)
        c.send(f"BDAT {len(big)} LAST\r\n".encode() + big)
        assert_reply(c.read_reply(), 552, "5.3.4")
        assert_session_usable(c)
        # And the same connection can still send a normal message.
        start_txn(c)
        assert_queued(c.data(make_message(subject=marker + "-small")))
        c.quit()
    assert limits_server.store.message_with(marker + "\r\n") is None
    assert limits_server.store.message_with(marker + "-bdat") is None
    limits_server.store.wait_message_with(marker + "-small")


def test_command_line_too_long(limits_server: TernServer) -> None:
    limit = LIMITS["max_command_line"]
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        # RFC 5321 §4.5.3.1.4: 512 octets including the CRLF is still fine.
        assert_reply(c.cmd("NOOP " + "x" * (limit - len("NOOP ") - 2)), 250)
        assert_reply(c.cmd("NOOP " + "x" * limit), 500, "5.5.2")
        assert_session_usable(c)
        assert_reply(c.cmd("MAIL FROM:<" + "a" * 600 + "@example.com>"), 500, "5.5.2")
        assert_session_usable(c)
        # 64 KiB with no line end at all: refused without buffering it forever.
        c.send(b"y" * 65536)
        c.send(b"\r\n")
        assert_reply(c.read_reply(), 500, "5.5.2")
        assert_session_usable(c)
        c.quit()


def test_text_line_too_long(limits_server: TernServer) -> None:
    marker = f"longline-{uuid.uuid4().hex}"
    limit = LIMITS["max_text_line"]
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        start_txn(c)
        body = "short\r\n" + "z" * 1500 + "\r\nshort again\r\n"
        assert_reply(c.data(make_message(subject=marker, body=body)), 550, "5.6.0")
        assert_session_usable(c)
        # A line of exactly the limit (998 + CRLF = 1000) is fine.
        start_txn(c)
        ok = make_message(subject=marker + "-ok", body="w" * (limit - 2) + "\r\n")
        assert_queued(c.data(ok))
        c.quit()
    assert limits_server.store.message_with(marker + "\r\n") is None
    limits_server.store.wait_message_with(marker + "-ok")


def test_max_errors(limits_server: TernServer) -> None:
    n = LIMITS["max_errors"]
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        # One pipelined write of more bad commands than allowed: n errors, then 421 and close.
        c.send(b"".join(f"BOGUS{i}\r\n".encode() for i in range(n + 3)))
        replies = []
        with contextlib.suppress(ConnectionClosed, ConnectionResetError, socket.timeout, TimeoutError):
            while len(replies) < n + 3:
                replies.append(c.read_reply(timeout=5))
                if replies[-1].code == 421:
                    break
        codes = [(r.code, r.enhanced) for r in replies]
        assert codes == [(500, "5.5.2")] * n + [(421, "4.7.0")], codes
        assert c.wait_closed(), "connection not closed after 421"


def test_connections_per_ip(limits_server: TernServer) -> None:
    limit = LIMITS["max_connections_per_ip"]
    crowd: list[SMTPClient] = []
    try:
        with bystander(limits_server):
            for _ in range(limit):
                c = limits_server.client(source_ip=CROWD_IP)
                assert_reply(c.greeting, 220)
                crowd.append(c)
            extra = limits_server.client(source_ip=CROWD_IP)
            assert_reply(extra.greeting, 421, "4.7.0")
            assert extra.wait_closed()
            extra.close()
        # Once one closes, that IP gets in again.
        crowd.pop().quit()
        deadline = time.monotonic() + 30
        while True:
            c = limits_server.client(source_ip=CROWD_IP)
            if c.greeting.code == 220:
                crowd.append(c)
                break
            c.close()
            assert time.monotonic() < deadline, f"still refused after a connection closed: {c.greeting}"
            time.sleep(0.2)
    finally:
        for c in crowd:
            c.close()


# --------------------------------------------------------------------------- smuggling-shaped input


def test_bare_lf_does_not_end_data(limits_server: TernServer) -> None:
    marker = f"barelf-{uuid.uuid4().hex}"
    with bystander(limits_server), limits_server.client() as c:
        c.ehlo()
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        head = make_message(subject=marker, body="line one\r\n")
        # "\n.\n" must not end DATA (SMTP smuggling): no reply may come yet.
        c.send(head + b"smuggled\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.net>\n")
        assert c.no_reply_within(1.0), f"server answered after a bare-LF dot: {c.buf!r}"
        c.send(b"still data\r\n.\r\n")
        assert_reply(c.read_reply(), 550, "5.6.0")
        assert_session_usable(c)
        # Bare CR too.
        start_txn(c)
        assert_reply(c.data(make_message(subject=marker + "-cr", body="a\rb\r\n")), 550, "5.6.0")
        assert_session_usable(c)
        # Nor is "\n.\r\n" (<LF>.<CR><LF>, the classic smuggling end).
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        c.send(make_message(subject=marker + "-lf-dot-crlf", body="x") + b"\n.\r\nRSET\r\n")
        assert c.no_reply_within(1.0), f"server answered after LF-dot-CRLF: {c.buf!r}"
        c.send(b"\r\n.\r\n")
        assert_reply(c.read_reply(), 550, "5.6.0")
        assert_session_usable(c)
        # "\r\n.\n" is no end either.
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        c.send(make_message(subject=marker + "-crlf-dot-lf", body="x\r\n") + b".\nmore\r\n")
        assert c.no_reply_within(1.0), f"server answered after CRLF-dot-LF: {c.buf!r}"
        c.send(b".\r\n")
        assert_reply(c.read_reply(), 550, "5.6.0")
        assert_session_usable(c)
        c.quit()
    st = limits_server.store
    assert st.message_with(marker) is None
    assert st.scalar("SELECT count(*) FROM messages WHERE mail_from = 'evil@example.com'") == 0


def test_garbage_bytes(limits_server: TernServer) -> None:
    rng = random.Random(5321)
    with bystander(limits_server):
        for round_ in range(3):
            with limits_server.client() as c:
                if round_ == 1:
                    c.ehlo()
                replies = []
                try:
                    # One garbage "line" at a time (a bare CR or LF does not end a line), each
                    # answered before the next, so a close after max_errors loses no reply.
                    for _ in range(limits_server.config()["smtp"]["limits"]["max_errors"] + 3):
                        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
                        c.send(blob.replace(b"\r\n", b"\n\r") + b"\r\n")
                        replies.append(c.read_reply(timeout=5))
                        if not c.no_reply_within(0.05):  # the 421 that follows the last error
                            replies.append(c.read_reply(timeout=5))
                        if replies[-1].code == 421:
                            break
                except (ConnectionClosed, ConnectionResetError, BrokenPipeError, socket.timeout, TimeoutError):
                    pass
                except AssertionError as e:  # a reply line we could not parse
                    pytest.fail(f"malformed reply to garbage: {e}")
                assert replies, "no reply at all to garbage"
                assert all(r.code >= 400 for r in replies), [str(r) for r in replies]
                assert replies[-1].code == 421, [str(r) for r in replies]
                assert c.wait_closed()
        # Garbage where a TLS ClientHello should be.
        s = socket.create_connection(("127.0.0.1", limits_server.tls_port), timeout=5)
        try:
            s.sendall(bytes(rng.randrange(256) for _ in range(4096)))
            s.settimeout(5)
            with contextlib.suppress(OSError):
                while s.recv(4096):
                    pass
        finally:
            s.close()
        # A TLS handshake that stops halfway does not wedge the listener either.
        half = socket.create_connection(("127.0.0.1", limits_server.tls_port), timeout=5)
        try:
            c = limits_server.tls_client()
            c.ehlo()
            c.quit()
        finally:
            half.close()
    with limits_server.client() as c:
        c.ehlo()
        start_txn(c)
        assert_queued(c.data(make_message()))
        c.quit()


# --------------------------------------------------------------------------- authentication


def test_auth_before_starttls_is_538(auth_server: TernServer, alice: Credential) -> None:
    with bystander(auth_server, alice), auth_server.client() as c:
        c.ehlo()
        assert "AUTH" not in c.extensions
        assert_reply(c.auth_plain(alice.username, alice.password), 538, "5.7.11")
        assert_reply(c.cmd("AUTH LOGIN"), 538, "5.7.11")
        assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 530, "5.7.0")
        c.quit()


def test_relay_without_auth_is_530(auth_server: TernServer, alice: Credential) -> None:
    with bystander(auth_server, alice):
        with auth_server.client() as c:
            c.ehlo()
            assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 530, "5.7.0")
            assert_reply(c.cmd("RCPT TO:<r@example.net>"), 503, "5.5.1")
            assert_reply(c.cmd("DATA"), 503, "5.5.1")
            c.starttls()
            c.ehlo()
            assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 530, "5.7.0")
            c.quit()
        with auth_server.tls_client() as c:
            c.ehlo()
            assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 530, "5.7.0")
            c.quit()


def test_insecure_auth_allowed_on_loopback_when_configured(make_server: ServerFactory) -> None:
    server = make_server("insecure-auth", {"smtp": {"submission": {"allow_insecure_auth": True}}})
    cred = server.credential_add("plain-user")
    with server.client() as c:
        c.ehlo()
        assert "AUTH" in c.extensions, c.extensions
        assert_reply(c.auth_plain(cred.username, cred.password), 235, "2.7.0")
        start_txn(c)
        assert_queued(c.data(make_message()))
        c.quit()


# --------------------------------------------------------------------------- timeouts


def test_command_and_data_timeouts(make_server: ServerFactory) -> None:
    server = make_server("timeouts", {"smtp": {"limits": {"command_timeout": 2, "data_timeout": 2}}})
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    idle = server.client()
    idle.ehlo()
    slow = server.client()
    slow.ehlo()
    start_txn(slow)
    assert_reply(slow.cmd("DATA"), 354)
    slow.send(b"Subject: half a message\r\n\r\nand then nothing")
    t0 = time.monotonic()
    # A busy client meanwhile: one message every 0.5 s, never idle for 2 s.
    with server.client(source_ip=BYSTANDER_IP) as busy:
        busy.ehlo()
        sent = 0
        while time.monotonic() - t0 < 3.5:
            start_txn(busy)
            assert_queued(busy.data(make_message()))
            sent += 1
            time.sleep(0.5)
        # Closed after the configured 2 s, not the default 300 s (the reads give up long before).
        r = idle.read_reply(timeout=60)
        assert_reply(r, 421, "4.4.2")
        assert idle.wait_closed(60)
        r = slow.read_reply(timeout=60)
        assert_reply(r, 421, "4.4.2")
        assert slow.wait_closed(60)
        assert 1.5 <= time.monotonic() - t0 < DEFAULT_COMMAND_TIMEOUT
        # The busy session, older than the timeout, is still served.
        start_txn(busy)
        assert_queued(busy.data(make_message()))
        busy.quit()
    assert sent >= 2
    assert server.store.scalar(
        "SELECT count(*) FROM messages WHERE instr(CAST(content AS BLOB), CAST('half a message' AS BLOB)) > 0") == 0
    idle.close()
    slow.close()


def trickle_until_answered(c: SMTPClient, line: bytes, interval: float = 0.5, limit: float = 30) -> Reply | None:
    """Sends `line` one octet every `interval` seconds, never its CRLF, until the server
    answers; None if it has not after `limit` seconds."""
    start = time.monotonic()
    for octet in line:
        if time.monotonic() - start > limit:
            break
        with contextlib.suppress(OSError):  # the server may have closed the connection already
            c.send(bytes([octet]))
        if not c.no_reply_within(interval):
            return c.read_reply(timeout=5)
    return None


def test_timeouts_are_deadlines_per_line(make_server: ServerFactory) -> None:
    """command_timeout and data_timeout bound each whole line (Postfix's
    smtpd_per_record_deadline): octets trickled without a line end do not restart them,
    complete lines do."""
    server = make_server("line-deadline", {"smtp": {"limits": {"command_timeout": 2, "data_timeout": 2}}})
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    never_ending = b"NOOP " + b"x" * 100
    with server.client() as c:
        c.ehlo()
        r = trickle_until_answered(c, never_ending)
        assert r is not None, "no reply to a command line trickled for 30 s"
        assert_reply(r, 421, "4.4.2")
        assert c.wait_closed()
    with server.client() as c:
        c.ehlo()
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        c.send(b"Subject: trickled\r\n\r\n")
        r = trickle_until_answered(c, b"a line of text " + b"y" * 100)
        assert r is not None, "no reply to a DATA line trickled for 30 s"
        assert_reply(r, 421, "4.4.2")
        assert c.wait_closed()
    # Whole lines, each well within the deadline, may take longer than it in all.
    with server.client() as c:
        c.ehlo()
        for _ in range(3):
            time.sleep(1)
            assert_reply(c.cmd("NOOP"), 250)
        start_txn(c)
        assert_reply(c.cmd("DATA"), 354)
        for line in [b"Subject: slow but steady\r\n", b"\r\n", b"one\r\n", b"two\r\n"]:
            time.sleep(1)
            c.send(line)
        time.sleep(1)
        c.send(b".\r\n")
        assert_queued(c.read_reply())
        c.quit()
    assert server.store.scalar(
        "SELECT count(*) FROM messages WHERE instr(CAST(content AS BLOB), CAST('trickled' AS BLOB)) > 0") == 0


def test_starttls_discards_pipelined_plaintext(auth_server: TernServer, alice: Credential) -> None:
    """Commands sent after STARTTLS in the same packet must not be run inside the TLS
    session (CVE-2011-0411 style injection)."""
    with bystander(auth_server, alice), auth_server.client() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nNOOP\r\n")
        # Tern answers STARTTLS and drops what came after it in the same packet (RFC 3207 §4.2).
        assert_reply(c.read_reply(), 220)
        assert not c.buf, f"plaintext reply after 220 to STARTTLS: {c.buf!r}"
        try:
            c._wrap_tls()
        except (ssl.SSLError, OSError) as e:
            pytest.fail(f"TLS handshake failed after injected command: {e}")
        r = c.cmd("EHLO client.test")
        assert r.code == 250 and len(r.lines) > 1, f"first reply inside TLS is not the EHLO reply: {r}"
        assert_reply(c.cmd("NOOP"), 250)
        assert c.no_reply_within(0.3), f"extra reply inside TLS: {c.buf!r}"
        c.quit()


def test_tls_handshake_failure_does_not_stop_server(auth_server: TernServer, alice: Credential) -> None:
    with bystander(auth_server, alice), auth_server.client() as c:
        c.ehlo()
        assert_reply(c.cmd("STARTTLS"), 220)
        c.send(b"\x16\x03\x01\x00\x05hello, not TLS\r\n")
        with contextlib.suppress(OSError, ssl.SSLError):
            c.wait_closed(5)
