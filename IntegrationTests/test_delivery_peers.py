"""Delivery to receiving servers that misbehave: a 421 greeting, a connection cut in the
middle of DATA, no STARTTLS, no SMTPUTF8. The peers are the dnslib zone and aiosmtpd
server of test_delivery.py, and `RawMX` below, a hand-written SMTP server on a plain
socket for what aiosmtpd will not do. Every peer listens on 127.0.0.x; nothing leaves
127.0.0.0/8."""
from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller
from dnslib import A, MX
from dnslib.server import DNSServer

from conftest import ServerFactory
from helpers import SMTPClient, assert_queued, assert_reply, content_bytes, free_ports, make_message, unique_id
from test_delivery import ScriptedMX, Zone, delivery_overrides, events, submit, wait_until


# --------------------------------------------------------------------------- peers


class RawMX:
    """An SMTP server written by hand on a plain socket, one thread per connection.

    `greeting` is sent first; anything but 220 ends the connection there (a 421 greeting:
    RFC 5321 §3.1). `extensions` are the EHLO keywords. The first `cut_data` DATA transfers
    are cut off: the server reads at least `CUT_AFTER` octets of content and closes the
    connection without a reply. Later ones are taken whole and answered 250.

    Records every command line per connection (`sessions`), every message it took
    (`messages`: mail_from, rcpts, content with the dot-stuffing undone) and what each cut
    had read (`cuts`: octets, whether the end-of-data mark was among them)."""

    CUT_AFTER = 32 * 1024

    def __init__(self, host: str, port: int, *, greeting: str = "220 raw.test ESMTP",
                 extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"),
                 cut_data: int = 0):
        self.greeting, self.extensions, self.cut_data = greeting, extensions, cut_data
        self.sessions: list[list[bytes]] = []
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.cuts: list[tuple[int, bool]] = []
        self.cuts_started = 0  # decided under the lock: concurrent connections never both cut one too many
        self.lock = threading.Lock()
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.open: list[socket.socket] = []  # connections, closed at exit (Tern may keep one idle)

    # -- lifecycle
    def __enter__(self) -> "RawMX":
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        with self.lock:
            for conn in self.open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for t in list(self.threads):
            t.join(timeout=5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    # -- one connection
    def _serve(self, conn: socket.socket) -> None:
        lines: list[bytes] = []
        with self.lock:
            self.sessions.append(lines)
            self.open.append(conn)
        conn.settimeout(10)
        buf = bytearray()

        def fill() -> None:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionAbortedError("client closed")
            buf.extend(chunk)

        def line() -> bytes:
            while b"\r\n" not in buf:
                fill()
            i = buf.index(b"\r\n")
            out = bytes(buf[:i])
            del buf[:i + 2]
            return out

        def reply(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        try:
            reply(self.greeting)
            if not self.greeting.startswith("220"):
                return
            mail_from, rcpts = "", []
            while not self.stopping.is_set():
                cmd = line()
                lines.append(cmd)
                verb = cmd.split(b" ", 1)[0].split(b":", 1)[0].upper()
                if verb == b"EHLO":
                    names = ["raw.test", *self.extensions]
                    reply("\r\n".join(f"250{'-' if i < len(names) - 1 else ' '}{n}" for i, n in enumerate(names)))
                elif verb == b"HELO":
                    reply("250 raw.test")
                elif verb == b"MAIL":
                    mail_from, rcpts = cmd.split(b"<", 1)[1].split(b">", 1)[0].decode("utf-8", "replace"), []
                    reply("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    rcpts.append(cmd.split(b"<", 1)[1].split(b">", 1)[0].decode("utf-8", "replace"))
                    reply("250 2.1.5 Ok")
                elif verb == b"DATA":
                    if not rcpts:
                        reply("503 5.5.1 No valid recipients")
                        continue
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    with self.lock:
                        cut = self.cuts_started < self.cut_data
                        self.cuts_started += cut
                    if cut:
                        while len(buf) < self.CUT_AFTER:
                            fill()
                        with self.lock:
                            self.cuts.append((len(buf), b"\r\n.\r\n" in buf))
                        return  # closed with content unread and no reply
                    while b"\r\n.\r\n" not in buf:
                        fill()
                    i = buf.index(b"\r\n.\r\n")
                    content = bytes(buf[:i + 2])
                    del buf[:i + 5]
                    unstuffed = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in content.split(b"\r\n"))
                    with self.lock:
                        self.messages.append((mail_from, list(rcpts), unstuffed))
                    mail_from, rcpts = "", []
                    reply("250 2.0.0 Ok: queued")
                elif verb == b"RSET":
                    mail_from, rcpts = "", []
                    reply("250 2.0.0 Ok")
                elif verb == b"NOOP":
                    reply("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    reply("221 2.0.0 Bye")
                    return
                else:
                    reply("502 5.5.2 Command not recognized")
        except OSError:
            pass
        finally:
            conn.close()

    def verbs(self) -> list[list[str]]:
        """The command verbs of each connection, in order."""
        with self.lock:
            return [[l.split(b" ", 1)[0].split(b":", 1)[0].upper().decode() for l in s] for s in self.sessions]


class OptionsMX(ScriptedMX):
    """test_delivery's ScriptedMX with aiosmtpd SMTP options (enable_SMTPUTF8, tls_context, …),
    also recording each message's MAIL parameters."""

    def __init__(self, host: str, port: int, **smtp_options: object):
        super().__init__(host, port)
        self.controller = Controller(self, hostname=host, port=port, **smtp_options)
        self.mail_options: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.mail_options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


class World:
    """A name server on 127.0.0.1 and SMTP peers on 127.0.0.x, all on one port
    (delivery.smtp_port); stopped when the test ends."""

    def __init__(self, stack: contextlib.ExitStack):
        self.port, dns_port = free_ports(2)
        self.dns = f"127.0.0.1:{dns_port}"
        self.zone = Zone({})
        self.stack = stack
        for tcp in (False, True):
            server = DNSServer(self.zone, port=dns_port, address="127.0.0.1", tcp=tcp)
            server.start_thread()
            stack.callback(server.stop)

    def mx(self, domain: str, *hosts: tuple[str, str, int]) -> None:
        """MX records for `domain`: (host name, address, preference) each."""
        self.zone.records[domain] = [("MX", MX(name, pref)) for (name, _, pref) in hosts]
        for (name, address, _) in hosts:
            self.zone.records[name] = [("A", A(address))]

    def raw(self, address: str, **options: object) -> RawMX:
        return self.stack.enter_context(RawMX(address, self.port, **options))  # type: ignore[arg-type]

    def aiosmtpd(self, address: str, **smtp_options: object) -> OptionsMX:
        return self.stack.enter_context(OptionsMX(address, self.port, **smtp_options))

    def overrides(self, **extra: object) -> dict:
        return delivery_overrides({"dns": self.dns, "port": self.port}, **extra)


@pytest.fixture
def world() -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        yield World(stack)


# --------------------------------------------------------------------------- store views


def history(server, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Event types of one recipient, oldest first."""
    return [t for (t,) in server.store.query(
        "SELECT e.type FROM events e JOIN recipients r ON r.id = e.recipient_id WHERE r.address = ? ORDER BY e.id",
        (address,))]


def recipient(server, address: str) -> dict:  # type: ignore[no-untyped-def]
    rows = server.store.query("SELECT state, attempts FROM recipients WHERE address = ?", (address,))
    assert len(rows) == 1, f"{len(rows)} recipients {address}"
    return {"state": rows[0][0], "attempts": rows[0][1]}


def counters(server) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    s = server.stats()
    return (s["outbound"], s["sent"], s["failed"], s["deferred"])


def start_tern(make_server: ServerFactory, name: str, overrides: dict):  # type: ignore[no-untyped-def]
    server = make_server(name, overrides)
    server.credential_add("loop", networks=["127.0.0.0/8"])
    return server


# --------------------------------------------------------------------------- 421 greeting


BUSY = "421 4.3.2 mx1.busy.test is too busy, come back later"


def test_421_greeting_falls_back_to_the_next_mx(make_server: ServerFactory, world: World):
    refusing = world.raw("127.0.0.4", greeting=BUSY)
    working = world.aiosmtpd("127.0.0.5")
    world.mx("busy.test", ("mx1.busy.test", "127.0.0.4", 10), ("mx2.busy.test", "127.0.0.5", 20))
    server = start_tern(make_server, "greeting-fallback", world.overrides())

    submit(server, ["someone@busy.test"])
    sent = wait_until(lambda: events(server, "sent"), timeout=20, what="sent via the second MX")

    # The preferred MX was tried first, refused at the greeting, and never got a command.
    assert refusing.verbs() == [[]]
    assert sent[0]["address"] == "someone@busy.test"
    assert sent[0]["remote_host"] == "mx2.busy.test"
    assert sent[0]["code"] == "250"
    assert [r for (_, rcpts, _) in working.received for r in rcpts] == ["someone@busy.test"]
    # One attempt, no deferral: the refused greeting is not an outcome of its own.
    assert history(server, "someone@busy.test") == ["outbound", "sent"]
    assert recipient(server, "someone@busy.test") == {"state": "sent", "attempts": 1}
    assert counters(server) == (1, 1, 0, 0)


def test_421_greeting_from_the_only_mx_defers(make_server: ServerFactory, world: World):
    refusing = world.raw("127.0.0.4", greeting=BUSY)
    world.mx("busy.test", ("mx1.busy.test", "127.0.0.4", 10))
    server = start_tern(make_server, "greeting-only", world.overrides())

    submit(server, ["someone@busy.test"])
    # Two attempts a second apart, each refused and deferred: a 421 is never final.
    wait_until(lambda: len(events(server, "deferred")) >= 2 or sum(counters(server)[1:3]) > 0,
               timeout=20, what="two deferrals")
    deferred = events(server, "deferred")
    assert len(refusing.sessions) >= 2
    assert all(s == [] for s in refusing.sessions), refusing.verbs()
    for e in deferred:
        assert e["address"] == "someone@busy.test"
        # The event keeps the remote's own words.
        assert "421" in e["text"] and "too busy, come back later" in e["text"], e
    assert events(server, "failed") == [] and events(server, "sent") == []
    state = recipient(server, "someone@busy.test")
    assert state["state"] == "queued" and state["attempts"] >= 2
    outbound, sent, failed, n_deferred = counters(server)
    assert (outbound, sent, failed) == (1, 0, 0) and n_deferred >= 2
    queue = json.loads(server.cli("queue", "list", "--json").stdout)
    assert [q["address"] for q in queue] == ["someone@busy.test"]
    assert "too busy, come back later" in queue[0]["last_reason"]


# --------------------------------------------------------------------------- cut in DATA


def test_connection_cut_in_data_defers_then_delivers_once(make_server: ServerFactory, world: World):
    cutting = world.raw("127.0.0.6", cut_data=1)
    world.mx("cut.test", ("mx.cut.test", "127.0.0.6", 10))
    server = start_tern(make_server, "cut", world.overrides(retry_schedule=[1]))

    # Far more content than the peer reads before it hangs up (RawMX.CUT_AFTER).
    marker = unique_id("end-of-body")
    body = ("x" * 998 + "\r\n") * 300 + f"{marker}\r\n"
    rcpts = ["a@cut.test", "b@cut.test"]
    submit(server, rcpts, body=body)
    wait_until(lambda: server.stats()["sent"] == 2, timeout=20, what="both sent after the retry")

    # The first connection was really cut in the middle of the content.
    assert len(cutting.cuts) == 1
    read, saw_end = cutting.cuts[0]
    assert read >= RawMX.CUT_AFTER and not saw_end
    # Later connections carried the whole message to each recipient exactly once, one
    # transaction per recipient, each with its own VERP envelope sender.
    delivered = sorted(r for (_, got, _) in cutting.messages for r in got)
    assert delivered == rcpts, cutting.verbs()
    stored = server.store.wait_message_with(marker)
    senders = [mail_from for (mail_from, _, _) in cutting.messages]
    assert all(re.fullmatch(r"b-[a-z2-7]{39,44}@bounces\.example\.com", s) for s in senders), senders
    assert len(set(senders)) == len(rcpts), senders
    for (_, _, content) in cutting.messages:
        assert content == content_bytes(stored)

    # The recipient whose transaction was cut: deferred (never failed, never sent on it),
    # then sent once. The other (its own transaction, VERP) went through at once.
    histories = sorted((history(server, r), r) for r in rcpts)
    assert [h for (h, _) in histories] == [["outbound", "deferred", "sent"], ["outbound", "sent"]], histories
    assert recipient(server, histories[0][1]) == {"state": "sent", "attempts": 2}
    assert recipient(server, histories[1][1]) == {"state": "sent", "attempts": 1}
    for e in events(server, "deferred"):
        assert e["attempted"] == "true"
        assert "connection lost" in e["text"].lower(), e
    assert counters(server) == (2, 2, 0, 1)

    # Nothing comes after: no second copy. A later message, cut once too, is retried with the
    # same delay: a retry of a or b would have been due before it.
    sessions, messages = len(cutting.sessions), len(cutting.messages)
    with cutting.lock:
        cutting.cut_data += 1
    later = unique_id("later")
    submit(server, ["c@cut.test"], body=("x" * 998 + "\r\n") * 300 + f"{later}\r\n")
    wait_until(lambda: any(later.encode() in content for (_, _, content) in cutting.messages), timeout=20,
               what="the later message sent after its retry")
    # Its outcome is written at the delivery loop's next tick: then nothing is queued.
    wait_until(lambda: json.loads(server.cli("queue", "list", "--json").stdout) == [], timeout=20,
               what="the later message's outcome stored")
    assert len(cutting.cuts) == 2
    assert [got for (_, got, _) in cutting.messages[messages:]] == [["c@cut.test"]], cutting.verbs()
    later_rcpts = [l for s in cutting.sessions[sessions:] for l in s if l.upper().startswith(b"RCPT")]
    assert all(b"c@cut.test" in l for l in later_rcpts), later_rcpts


# --------------------------------------------------------------------------- no STARTTLS


def server_tls_context(server) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    """A context with the self-signed certificate Tern generated into its data_dir."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(server.data_dir / "tls" / "cert.pem"), str(server.data_dir / "tls" / "key.pem"))
    return ctx


def test_no_starttls_plaintext_when_opportunistic_never_when_required(make_server: ServerFactory, world: World):
    server = start_tern(make_server, "tls", world.overrides(max_age=3, routes={
        "plain.test": f"127.0.0.7:{world.port}",
        "strict.test": f"127.0.0.7:{world.port} tls=required",
        "tls.test": f"127.0.0.8:{world.port} tls=required",
    }))
    plain = world.aiosmtpd("127.0.0.7")  # no tls_context: EHLO offers no STARTTLS
    with_tls = world.aiosmtpd("127.0.0.8", tls_context=server_tls_context(server))

    submit(server, ["a@plain.test", "b@strict.test", "c@tls.test"])
    # strict.test never gets TLS: deferred on every attempt until max_age, then failed.
    wait_until(lambda: sum(counters(server)[1:3]) == 3, timeout=20, what="three final outcomes")

    sent = {e["address"]: e for e in events(server, "sent")}
    assert set(sent) == {"a@plain.test", "c@tls.test"}
    # Opportunistic TLS with a peer that offers none: delivered in clear, and the event says so.
    assert sent["a@plain.test"]["tls"] == "false"
    assert sent["a@plain.test"]["remote_host"] == "127.0.0.7"
    # The same route syntax with a peer that offers STARTTLS: delivered encrypted.
    assert sent["c@tls.test"]["tls"] == "true"
    assert [r for (_, rcpts, _) in with_tls.received for r in rcpts] == ["c@tls.test"]

    # tls=required and no STARTTLS: not a single RCPT in clear; deferred, then expired (4.4.7).
    assert [r for (_, rcpts, _) in plain.received for r in rcpts] == ["a@plain.test"]
    assert "b@strict.test" not in plain.seen
    deferred = events(server, "deferred")
    assert deferred and all(e["address"] == "b@strict.test" for e in deferred)
    assert all("TLS is required, but was not offered" in e["text"] for e in deferred), deferred
    (failed,) = events(server, "failed")
    assert failed["address"] == "b@strict.test"
    assert failed["reason"] == "expired" and failed["enhanced_code"] == "4.4.7"
    assert "TLS is required" in failed["text"]
    h = history(server, "b@strict.test")
    assert h[0] == "outbound" and h[-1] == "failed" and set(h[1:-1]) == {"deferred"}, h
    assert recipient(server, "b@strict.test")["state"] == "failed"
    assert counters(server) == (3, 2, 1, len(deferred))


# --------------------------------------------------------------------------- no SMTPUTF8


def submit_smtputf8(server, rcpts: list[str], marker: str) -> str:  # type: ignore[no-untyped-def]
    """A message whose envelope needs SMTPUTF8 (non-ASCII local parts), submitted with it."""
    message = make_message(to=rcpts[0], body=f"Grüße. {marker}\r\n")
    with SMTPClient("127.0.0.1", server.submission_port) as c:
        c.ehlo()
        assert "SMTPUTF8" in c.extensions
        assert_reply(c.cmd("MAIL FROM:<sender@example.com> SMTPUTF8"), 250, "2.1.0")
        for r in rcpts:
            assert_reply(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")
        queue_id = assert_queued(c.data(message))
        c.quit()
    return queue_id


def test_smtputf8_message_fails_5_6_7_where_not_offered(make_server: ServerFactory, world: World):
    ascii_only = world.raw("127.0.0.9")  # EHLO: PIPELINING 8BITMIME ENHANCEDSTATUSCODES
    intl = world.aiosmtpd("127.0.0.10", enable_SMTPUTF8=True)
    world.mx("ascii.test", ("mx.ascii.test", "127.0.0.9", 10))
    world.mx("intl.test", ("mx.intl.test", "127.0.0.10", 10))
    server = start_tern(make_server, "utf8", world.overrides())

    marker = unique_id("utf8")
    submit_smtputf8(server, ["jörg@ascii.test", "jörg@intl.test"], marker)
    assert server.store.wait_message_with(marker)["smtp_utf8"] == 1
    wait_until(lambda: sum(counters(server)[1:3]) == 2, timeout=20, what="two final outcomes")

    # Where SMTPUTF8 is not offered: a permanent failure decided before MAIL, nothing sent.
    (failed,) = events(server, "failed")
    assert failed["address"] == "jörg@ascii.test"
    assert (failed["code"], failed["enhanced_code"]) == ("550", "5.6.7")
    assert failed["remote_reply"] == "false" and failed["stage"] == "beforeMail"
    assert failed["remote_host"] == "mx.ascii.test"
    assert "SMTPUTF8" in failed["text"]
    (verbs,) = ascii_only.verbs()
    assert verbs[0] == "EHLO" and not {"MAIL", "RCPT", "DATA", "BDAT"} & set(verbs), verbs
    assert ascii_only.messages == []
    assert history(server, "jörg@ascii.test") == ["outbound", "failed"]

    # Where it is offered: delivered, with SMTPUTF8 on MAIL and the UTF-8 address intact.
    (sent,) = events(server, "sent")
    assert sent["address"] == "jörg@intl.test" and sent["remote_host"] == "mx.intl.test"
    assert [rcpts for (_, rcpts, _) in intl.received] == [["jörg@intl.test"]]
    assert "SMTPUTF8" in intl.mail_options[0]
    assert marker.encode() in intl.received[0][2]
    assert history(server, "jörg@intl.test") == ["outbound", "sent"]
    assert counters(server) == (2, 1, 1, 0)
