"""Sending domains end to end: `tern domain add` prints the records to publish; a dnslib
name server on loopback serves them (right, missing or wrong) to `tern domain verify`;
mail sent through Tern reaches an aiosmtpd sink signed, and Python's dkimpy verifies
each signature with the public key fetched from that same name server. Sender
authorisation is checked with unverified and foreign domains."""
from __future__ import annotations

import email
import email.policy
import re
import uuid
from typing import Any

import dkim
import pytest
from dnslib import MX, QTYPE, TXT, DNSRecord
from dnslib.server import DNSServer

from conftest import ServerFactory
from helpers import Credential, TernServer, assert_reply, free_ports
from test_delivery import Zone
from test_tracking import Sink, newsletter, sink, submit  # noqa: F401 (sink: the fixture)

DOMAIN = "shop.example"
MX_HOST = "mx.tern.test"


@pytest.fixture
def zone() -> Any:
    (port,) = free_ports(1)
    z = Zone({})
    servers = [DNSServer(z, port=port, address="127.0.0.1"), DNSServer(z, port=port, address="127.0.0.1", tcp=True)]
    for s in servers:
        s.start_thread()
    z.port = port  # type: ignore[attr-defined]
    yield z
    for s in servers:
        s.stop()


def publish(zone: Zone, records: list[dict], skip: set[str] = frozenset(), alter: dict[str, str] | None = None) -> None:
    """Puts the records `tern domain add --json` printed into the zone."""
    zone.records.clear()
    for r in records:
        if r["kind"] in skip:
            continue
        value = (alter or {}).get(r["kind"], r["value"])
        if r["type"] == "TXT":
            data = value.encode()
            rdata: Any = TXT([data[i:i + 255] for i in range(0, len(data), 255)])
        elif r["type"] == "MX":
            pref, host = value.split()
            rdata = MX(host, int(pref))
        else:
            continue
        zone.records.setdefault(r["name"], []).append((r["type"], rdata))


def dkim_dns(zone: Any):  # type: ignore[no-untyped-def]
    """dkimpy's DNS lookup, answered by the test's real name server on loopback."""
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        reply = DNSRecord.parse(DNSRecord.question(name.decode().rstrip("."), "TXT").send("127.0.0.1", zone.port, timeout=timeout))
        txts = [rr.rdata for rr in reply.rr if rr.rtype == QTYPE.TXT]
        return b"".join(txts[0].data) if txts else None
    return lookup


def domain_server(make_server: ServerFactory, zone: Any, sink: Any, extra: dict | None = None) -> TernServer:
    overrides = {
        "hostname": MX_HOST,
        "sending": {"allow_unverified_domains": "false"},
        "delivery": {"enabled": True, "routes": {"*": f"127.0.0.1:{sink.port}"}, "retry_schedule": [1],
                     "dns_servers": [f"127.0.0.1:{zone.port}"]},
    }
    overrides.update(extra or {})
    return make_server("domains", overrides, start=False)


def signatures(copy: bytes) -> list[dict[str, str]]:
    msg = email.message_from_bytes(copy, policy=email.policy.compat32)
    out = []
    for value in msg.get_all("DKIM-Signature") or []:
        tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", value).split(";") if "=" in t)
        out.append(tags)
    return out


def test_domain_records_verify_against_a_real_name_server(make_server: ServerFactory, zone: Any, sink: Any):
    server = domain_server(make_server, zone, sink)
    added = server.cli_json("domain", "add", DOMAIN, "--ed25519")
    records = added["records"]
    kinds = [r["kind"] for r in records]
    assert kinds == ["dkim", "dkim", "return_path_mx", "spf", "dmarc"], kinds
    assert [k["algorithm"] for k in added["keys"]] in (["rsa", "ed25519"], ["ed25519", "rsa"])
    assert records[2] == {"kind": "return_path_mx", "name": f"bounces.{DOMAIN}", "type": "MX",
                          "value": f"10 {MX_HOST}.", "required": True}
    assert all(re.fullmatch(r"v=DKIM1; k=(rsa|ed25519); p=[A-Za-z0-9+/=]+", r["value"]) for r in records[:2])
    # The private keys never leave the store.
    assert "PRIVATE" not in server.cli("domain", "list", "--json").stdout

    def verify() -> tuple[int, dict]:
        p = server.cli("domain", "verify", DOMAIN, "--json", check=False)
        return p.returncode, json_of(p.stdout)

    # Nothing published.
    code, result = verify()
    assert code != 0 and not result["verified"]
    assert {c["record"]["kind"]: c["status"] for c in result["records"]}["dkim"] == "missing"
    # The DKIM key of another selector's record, and an MX elsewhere: wrong.
    publish(zone, records, alter={"dkim": "v=DKIM1; k=rsa; p=AAAA", "return_path_mx": "10 mx.elsewhere.example."})
    code, result = verify()
    statuses = [c["status"] for c in result["records"]]
    assert code != 0 and statuses[:3] == ["wrong", "wrong", "wrong"], result
    assert result["records"][2]["found"] == ["10 mx.elsewhere.example."]
    # Everything but the suggestions: verified (SPF and DMARC are reported, not required).
    publish(zone, records, skip={"spf", "dmarc"})
    code, result = verify()
    assert code == 0 and result["verified"], result
    assert [c["status"] for c in result["records"]] == ["ok", "ok", "ok", "missing", "missing"]
    assert server.cli_json("domain", "list")[0]["verified_at"]

    # A rotation: new selectors, the old keys retired and the domain to be verified again.
    rotated = server.cli_json("domain", "rotate-dkim", DOMAIN)
    new = {k["selector"] for k in rotated["keys"] if not k.get("retired_at")}
    old = {k["selector"] for k in added["keys"]}
    assert len(new) == 2 and not new & old, rotated["keys"]
    assert not rotated.get("verified_at")


def json_of(text: str) -> Any:
    import json
    return json.loads(text)


def test_mail_is_signed_and_dkimpy_verifies_it(make_server: ServerFactory, zone: Any, sink: Any):
    server = domain_server(make_server, zone, sink, {"tracking": {"track": "all"}})
    records = server.cli_json("domain", "add", DOMAIN, "--ed25519")["records"]
    publish(zone, records)
    server.cli("domain", "verify", DOMAIN)
    cred = server.credential_add("app")
    server.start()
    server.wait_credential(cred)

    # A tracked newsletter (rewritten per recipient before signing), long folded headers,
    # an 8-bit body and trailing blank lines: every copy verifies, both signatures.
    marker = "dkim-" + uuid.uuid4().hex
    rcpts = ["alice@example.net", "bob@example.net"]
    long_subject = "A subject line long enough to be folded " * 4
    message = newsletter(marker, sender=f"news@{DOMAIN}", to=rcpts, extra_headers={"X-Long": long_subject})
    message = message.replace(b"Hello (", "Grüße (".encode()) + b"\r\n\r\n\r\n"
    submit(server, cred, rcpts, message, mail_from=f"news@{DOMAIN}")
    lookup = dkim_dns(zone)
    for rcpt in rcpts:
        copy = sink.wait_copy(rcpt, marker)
        sigs = signatures(copy)
        assert sorted(s["a"] for s in sigs) == ["ed25519-sha256", "rsa-sha256"], sigs
        for s in sigs:
            assert s["d"] == DOMAIN and s["c"] == "relaxed/relaxed" and "l" not in s, s
            signed = s["h"].lower().split(":")
            for name in ("from", "subject", "date", "to", "message-id", "list-unsubscribe", "list-unsubscribe-post"):
                assert signed.count(name) >= 2, (name, s["h"])  # over-signed
        # dkimpy checks the first signature; check each by moving it to the top.
        head, body = copy.split(b"\r\n\r\n", 1)
        fields = re.split(rb"\r\n(?![ \t])", head)
        sig_fields = [f for f in fields if f.lower().startswith(b"dkim-signature:")]
        others = [f for f in fields if not f.lower().startswith(b"dkim-signature:")]
        for sig in sig_fields:
            one = b"\r\n".join([sig] + others) + b"\r\n\r\n" + body
            assert dkim.verify(one, dnsfunc=lookup), sig[:80]
            # Tampering: one body byte, or a signed header, breaks it.
            assert not dkim.verify(one.replace(b"Sale", b"Sole", 1), dnsfunc=lookup)
            assert not dkim.verify(one.replace(b"Subject: Newsletter", b"Subject: NewsletteR", 1), dnsfunc=lookup)
            # An added From above (header injection) breaks it too: From is over-signed.
            assert not dkim.verify(b"From: evil@attacker.example\r\n" + one, dnsfunc=lookup)


def test_only_allowed_and_verified_domains_may_send(make_server: ServerFactory, zone: Any, sink: Any):
    server = domain_server(make_server, zone, sink)
    shop = server.cli_json("domain", "add", DOMAIN)["records"]
    other = server.cli_json("domain", "add", "other.example")["records"]
    server.cli_json("domain", "add", "unverified.example")
    publish(zone, shop + other)
    server.cli("domain", "verify", DOMAIN)
    server.cli("domain", "verify", "other.example")
    issued = server.cli_json("credential", "add", "shop-only", "--domain", DOMAIN)
    restricted = Credential(issued["username"], issued["password"], issued["api_key"])
    anyone = server.credential_add("anyone")
    server.start()
    server.wait_credential(restricted)

    def message(sender: str) -> bytes:
        return (f"From: <{sender}>\r\nTo: <a@example.net>\r\nSubject: auth {uuid.uuid4().hex}\r\n"
                "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n").encode()

    with server.authed_client(anyone) as c:
        # Unverified and unknown domains: refused at MAIL FROM, and in From at the end of DATA.
        assert_reply(c.cmd("MAIL FROM:<news@unverified.example>"), 550, "5.7.1", "not verified")
        assert_reply(c.cmd("MAIL FROM:<news@nowhere.example>"), 550, "5.7.1", "not a sending domain")
        assert_reply(c.cmd(f"MAIL FROM:<news@{DOMAIN}>"), 250)
        assert_reply(c.cmd("RCPT TO:<a@example.net>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(message("news@unverified.example") + b".\r\n")
        assert_reply(c.read_reply(), 550, "5.7.1", "From domain unverified.example is not verified")
        # A credential without a list may use any verified domain.
        assert_reply(c.send_message("news@other.example", ["any@example.net"], message("news@other.example")), 250)
        c.quit()
    sink.wait_copy("any@example.net", "auth ")

    with server.authed_client(restricted) as c:
        # Not one of its domains: refused at MAIL FROM, though other.example is verified.
        assert_reply(c.cmd("MAIL FROM:<news@other.example>"), 550, "5.7.1", "shop-only")
        # An allowed envelope but a From of another (verified) domain: refused at the end of DATA.
        assert_reply(c.cmd(f"MAIL FROM:<news@{DOMAIN}>"), 250)
        assert_reply(c.cmd("RCPT TO:<a@example.net>"), 250)
        assert_reply(c.cmd("DATA"), 354)
        c.send(message("news@other.example") + b".\r\n")
        assert_reply(c.read_reply(), 550, "5.7.1", "From domain other.example")
        # A subdomain of an allowed, verified domain: delivered.
        reply = c.send_message(f"news@mail.{DOMAIN}", ["ok@example.net"], message(f"news@mail.{DOMAIN}"))
        assert_reply(reply, 250)
        c.quit()
    sink.wait_copy("ok@example.net", "auth ")
