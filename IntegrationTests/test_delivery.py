"""Delivery with real peers on loopback: a dnslib name server answering MX/A records
that point at aiosmtpd servers on 127.0.0.x, and Postfix's smtp-source/smtp-sink for
the end-to-end load. Nothing leaves 127.0.0.0/8."""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from dnslib import QTYPE, RCODE, RR, A, MX
from dnslib.server import BaseResolver, DNSServer

from conftest import ServerFactory
from helpers import SMTPClient, assert_queued, free_ports, make_message, start_smtp_sink


# --------------------------------------------------------------------------- peers

class Zone(BaseResolver):
    """MX and A records for the test domains; everything else is NXDOMAIN."""

    def __init__(self, records: dict[str, list[tuple[str, object]]]):
        self.records = records

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        found = self.records.get(name)
        if found is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, rdata in found:
            if rtype == qtype:
                reply.add_answer(RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=60))
        return reply


class ScriptedMX:
    """An aiosmtpd server whose RCPT replies depend on the local part:
    ok → 250, perm → 550 5.1.1, soft → 552 5.2.2, temp → 450 the first time then 250."""

    def __init__(self, host: str, port: int):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname=host, port=port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        local = address.split("@")[0].lower()
        with self.lock:
            self.seen[address] = self.seen.get(address, 0) + 1
            count = self.seen[address]
        if local.startswith("perm"):
            return "550 5.1.1 <%s>: user unknown" % address
        if local.startswith("soft"):
            return "552 5.2.2 mailbox full"
        if local.startswith("temp") and count == 1:
            return "450 4.2.0 greylisted, try again"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 2.0.0 accepted"

    def __enter__(self) -> "ScriptedMX":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def mx_world():
    """Two MX servers (127.0.0.2 good, 127.0.0.3 nothing listening) on one port, and a zone."""
    (port, dns_port) = free_ports(2)
    zone = Zone({
        "good.test": [("MX", MX("mx1.good.test", 10))],
        "mx1.good.test": [("A", A("127.0.0.2"))],
        "fallback.test": [("MX", MX("dead.fallback.test", 10)), ("MX", MX("live.fallback.test", 20))],
        "dead.fallback.test": [("A", A("127.0.0.3"))],
        "live.fallback.test": [("A", A("127.0.0.2"))],
        "implicit.test": [("A", A("127.0.0.2"))],
        "nullmx.test": [("MX", MX(".", 0))],
        "down.test": [("MX", MX("mx.down.test", 10))],
        "mx.down.test": [("A", A("127.0.0.3"))],
    })
    dns = DNSServer(zone, port=dns_port, address="127.0.0.1")
    dns_tcp = DNSServer(zone, port=dns_port, address="127.0.0.1", tcp=True)
    dns.start_thread()
    dns_tcp.start_thread()
    with ScriptedMX("127.0.0.2", port) as mx:
        yield {"port": port, "dns": f"127.0.0.1:{dns_port}", "mx": mx}
    dns.stop()
    dns_tcp.stop()


def delivery_overrides(world: dict, **extra: object) -> dict:
    delivery = {
        "enabled": True,
        "dns_servers": [world["dns"]],
        "smtp_port": world["port"],
        "retry_schedule": [1],
        "connect_timeout": 2,
    }
    delivery.update(extra)
    return {"delivery": delivery, "hostname": "tern.test"}


def events(server, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = server.store.query(
        "SELECT r.address, e.details FROM events e JOIN recipients r ON r.id = e.recipient_id WHERE e.type = ? ORDER BY e.id",
        (type_,))
    return [{"address": a, **(json.loads(d) if d else {})} for a, d in rows]


def wait_until(predicate, timeout: float = 30, what: str = "condition", interval: float = 0.25):  # type: ignore[no-untyped-def]
    """Until `predicate()` is truthy (returned); every `interval` s: predicates that run `tern` CLI
    commands start a process each time, which competes with the server for the cores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def submit(server, rcpts: list[str], body: str = "Hello.\r\n") -> str:  # type: ignore[no-untyped-def]
    with SMTPClient("127.0.0.1", server.submission_port) as c:
        c.ehlo()
        queue_id = assert_queued(c.send_message("sender@example.com", rcpts, make_message(body=body)))
        c.quit()
    return queue_id


# --------------------------------------------------------------------------- tests

def test_outcomes_per_recipient_with_retry(make_server: ServerFactory, mx_world: dict):
    server = make_server("deliver", delivery_overrides(mx_world))
    server.credential_add("loop", networks=["127.0.0.0/8"])
    server.cli("suppression", "add", "blocked@good.test")
    submit(server, ["ok@good.test", "perm@good.test", "soft@good.test", "temp@good.test", "blocked@good.test"])

    # temp@ is deferred once (450) and sent on the retry a second later.
    wait_until(lambda: server.stats()["sent"] == 2, what="ok@ and temp@ sent")
    stats = server.stats()
    assert (stats["outbound"], stats["sent"], stats["failed"], stats["deferred"]) == (5, 2, 2, 1)

    sent = {e["address"]: e for e in events(server, "sent")}
    assert set(sent) == {"ok@good.test", "temp@good.test"}
    assert sent["ok@good.test"]["remote_host"] == "mx1.good.test"
    assert sent["ok@good.test"]["code"] == "250"
    assert sent["ok@good.test"]["tls"] in ("true", "false")
    failed = {e["address"]: e for e in events(server, "failed")}
    assert failed["perm@good.test"]["code"] == "550"
    assert "user unknown" in failed["perm@good.test"]["text"]
    assert failed["perm@good.test"]["bounce_class"] == "hard"
    assert failed["soft@good.test"]["code"] == "552"
    assert failed["soft@good.test"]["bounce_class"] == "soft"
    deferred = events(server, "deferred")
    assert [e["address"] for e in deferred] == ["temp@good.test"]
    assert "greylisted" in deferred[0]["text"]
    # The deferral keeps what the remote said, as sent and failed events do.
    assert deferred[0]["code"] == "450" and deferred[0]["enhanced_code"] == "4.2.0", deferred[0]
    assert deferred[0]["remote_host"] and deferred[0]["stage"] == "rcpt", deferred[0]
    assert [e["address"] for e in events(server, "suppressed")] == ["blocked@good.test"]
    assert mx_world["mx"].seen.get("blocked@good.test") is None

    # The MX got the message once per accepted recipient, with our trace header.
    delivered = [r for (_, rcpts, _) in mx_world["mx"].received for r in rcpts]
    assert sorted(delivered) == ["ok@good.test", "temp@good.test"]
    assert all(content.startswith(b"Received: ") for (_, _, content) in mx_world["mx"].received)
    assert json.loads(server.cli("queue", "list", "--json").stdout) == []


def test_mx_fallback_implicit_mx_null_mx_and_nxdomain(make_server: ServerFactory, mx_world: dict):
    server = make_server("routing", delivery_overrides(mx_world))
    server.credential_add("loop", networks=["127.0.0.0/8"])
    submit(server, ["a@fallback.test", "b@implicit.test", "c@nullmx.test", "d@nosuchdomain.test"])
    wait_until(lambda: server.stats()["sent"] + server.stats()["failed"] == 4, what="four final outcomes")
    sent = {e["address"]: e for e in events(server, "sent")}
    assert sent["a@fallback.test"]["remote_host"] == "live.fallback.test"
    assert sent["b@implicit.test"]["remote_host"] == "implicit.test"
    failed = {e["address"]: e for e in events(server, "failed")}
    assert failed["c@nullmx.test"]["enhanced_code"] == "5.1.10"
    assert failed["d@nosuchdomain.test"]["enhanced_code"] == "5.1.2"


def test_unreachable_mx_defers_then_expires(make_server: ServerFactory, mx_world: dict):
    server = make_server("expire", delivery_overrides(mx_world, max_age=3))
    server.credential_add("loop", networks=["127.0.0.0/8"])
    submit(server, ["x@down.test"])
    failed = wait_until(lambda: events(server, "failed"), timeout=30, what="expiry")
    assert failed[0]["address"] == "x@down.test"
    assert failed[0]["reason"] == "expired"
    assert failed[0]["enhanced_code"] == "4.4.7"
    assert len(events(server, "deferred")) >= 1
    stats = server.stats()
    assert (stats["sent"], stats["failed"]) == (0, 1)


@pytest.mark.timeout(600)  # two waits of up to 240 s
def test_smtp_source_through_tern_to_smtp_sink(make_server: ServerFactory, smtp_source_bin: str, tmp_path: Path):
    # Every message through intake, the queue and delivery; Benchmarks/ runs the big ones.
    count = 2_000
    # smtp-sink -c writes a counter line per event: to a file, never to a pipe nobody reads.
    sink_out = open(tmp_path / "sink.out", "wb")
    sink, sink_port = start_smtp_sink(["-u", "nobody", "-c", "256"], stdout=sink_out)
    try:
        server = make_server("e2e", {"delivery": {"enabled": True, "routes": {"*": f"127.0.0.1:{sink_port}"}}})
        server.credential_add("loop", networks=["127.0.0.0/8"])
        p = subprocess.run(
            [smtp_source_bin, "-s", "20", "-m", str(count), "-l", "5000", "-f", "a@example.com",
             "-t", "b@example.net", f"127.0.0.1:{server.submission_port}"],
            capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr[-2000:]
        wait_until(lambda: server.stats()["sent"] == count, timeout=240, what=f"{count} sent", interval=1)
        st = server.store
        # Every recipient ends sent, with exactly one sent event; nothing failed or is left.
        assert st.scalar("SELECT count(*) FROM recipients WHERE state = 'sent'") == count
        assert st.scalar(
            "SELECT count(*) FROM recipients r WHERE (SELECT count(*) FROM events e "
            "WHERE e.recipient_id = r.id AND e.type = 'sent') != 1") == 0
        assert server.stats()["failed"] == 0
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        sink_out.close()
    out = (tmp_path / "sink.out").read_bytes()
    # smtp-sink -c writes running counters; the last one is the number of messages it took.
    counters = [int(x) for x in re.findall(rb"mesg=(\d+)", out)]
    assert counters and counters[-1] == count
