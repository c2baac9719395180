"""Tern's MX end to end, with real peers on loopback: mail goes out through `tern serve`
to an aiosmtpd sink (which records the VERP envelope sender each copy got); a scripted
"remote MTA" (Python's smtplib) then sends reports to Tern's MX the way real ones do:
an RFC 3464 DSN to the VERP return path, a DSN that lost it, an ARF complaint to the
feedback address, an auto-reply, and unsubscribe mail to the List-Unsubscribe mailto.
Inbound mail for a customer's domain is posted to a Python http.server."""
from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import re
import smtplib
import subprocess
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerFactory
from helpers import SMTPClient, TernServer, assert_reply, free_ports
from test_delivery import wait_until
from test_tracking import Sink, sink, submit  # noqa: F401 (sink: the fixture)

SENDING = "shop.example"
RETURN_PATH = f"bounces.{SENDING}"
VERP_RE = rf"b-[a-z2-7]{{39,44}}@{re.escape(RETURN_PATH)}"
WEBHOOK_SECRET = b"inbound-webhook-secret-for-tests"


def mx_server(make_server: ServerFactory, sink: Sink, extra: dict | None = None) -> tuple[TernServer, Any]:
    """A server that delivers through the sink, knows shop.example as a sending domain
    (so bounces.shop.example is its return-path domain) and has an AUTH credential."""
    overrides = {
        "domains": {SENDING: None},
        "delivery": {"enabled": True, "routes": {"*": f"127.0.0.1:{sink.port}"},  # type: ignore[attr-defined]
                     "retry_schedule": [1], "connect_timeout": 2},
    }
    for key, value in (extra or {}).items():
        overrides[key] = value
    server = make_server("mx", overrides, start=False)
    cred = server.credential_add("app")
    server.start()
    server.wait_credential(cred)
    return server, cred


def message(marker: str, to: str, *, subject: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Shop <news@{SENDING}>"
    msg["To"] = to
    msg["Subject"] = subject or f"Order {marker}"
    msg["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<{marker}@{SENDING}>"
    msg.set_content(f"Your order ({marker}).\n")
    return msg.as_bytes(policy=email.policy.SMTP)


def send_and_deliver(server: TernServer, cred: Any, sink: Sink, to: str, marker: str) -> tuple[str, str, bytes]:
    """Submits a message, waits for its copy at the sink; returns (queue id, VERP sender, copy)."""
    queue_id = submit(server, cred, [to], message(marker, to))
    copy = sink.wait_copy(to, marker)
    (sender,) = [mail_from for (mail_from, rcpts, content) in sink.with_marker(marker) if to in rcpts]
    return queue_id, sender, copy


def to_mx(server: TernServer, rcpts: list[str], content: bytes, mail_from: str = "") -> None:
    """A remote MTA handing mail to Tern's MX (no AUTH, plain SMTP on its port)."""
    with smtplib.SMTP("127.0.0.1", server.mx_port, timeout=15) as smtp:
        refused = smtp.sendmail(mail_from, rcpts, content)
        assert not refused, refused


def dsn(original: bytes, recipient: str, *, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        headers_only: bool = True) -> bytes:
    """An RFC 3464 report as Postfix writes it, returning the original's header section."""
    boundary = "dsn-" + uuid.uuid4().hex
    head = original.split(b"\r\n\r\n", 1)[0].decode()
    text = ("This is the mail system at host mx.example.net.\r\n\r\n"
            "I'm sorry to have to inform you that your message could not\r\n"
            "be delivered to one or more recipients.\r\n")
    fields = (f"Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Sun, 29 Nov 2026 10:00:05 +0000\r\n\r\n"
              f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
              f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mailbox.example.net\r\n"
              f"Diagnostic-Code: {diagnostic.format(r=recipient)}\r\n")
    return (f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
            f"To: someone\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Date: Sun, 29 Nov 2026 10:00:06 +0000\r\nAuto-Submitted: auto-replied\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@mx.example.net>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{fields}\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{head}\r\n\r\n"
            f"--{boundary}--\r\n").encode()


def arf(delivered: bytes, recipient: str, verp: str, feedback_type: str = "abuse", sending: str = SENDING) -> bytes:
    """An RFC 5965 feedback report as a mailbox provider sends it, with the message as it
    was delivered (the provider's MTA put our VERP address in Return-Path), about mail
    from the sending domain `sending`."""
    boundary = "arf-" + uuid.uuid4().hex
    returned = f"Return-Path: <{verp}>\r\n".encode() + delivered
    return (f"From: <staff@fbl.example.net>\r\nTo: <fbl@bounces.{sending}>\r\nSubject: FW: complaint\r\n"
            f"Date: Sun, 29 Nov 2026 11:00:00 +0000\r\nMessage-ID: <{uuid.uuid4().hex}@fbl.example.net>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
            f"Feedback-Type: {feedback_type}\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
            f"Original-Mail-From: <{verp}>\r\nArrival-Date: Sun, 29 Nov 2026 10:00:05 +0000\r\n"
            f"Source-IP: 127.0.0.1\r\nReported-Domain: {sending}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").encode() + returned + \
        f"\r\n--{boundary}--\r\n".encode()


def events_of(server: TernServer, queue_id: str, address: str) -> list[dict]:
    view = server.cli_json("message", queue_id)
    (rcpt,) = [r for r in view["recipients"] if r["address"] == address]
    return rcpt["events"]


def wait_event(server: TernServer, queue_id: str, address: str, type_: str, timeout: float = 15) -> dict:
    def find() -> dict | None:
        found = [e for e in events_of(server, queue_id, address) if e["type"] == type_]
        return found[0] if found else None
    return wait_until(find, timeout=timeout, what=f"a {type_} event for {address}")


def suppressions(server: TernServer) -> set[tuple[str, str]]:
    return {(s["address"], s["domain"]) for s in server.cli_json("suppression", "list")}


def reconcile(stats: dict, queued: int = 0) -> None:
    """outbound = sent + failed_sync + suppressed + still queued; failed_async <= sent."""
    failed_sync = stats["failed"] - stats["failed_async"]
    assert stats["outbound"] == stats["sent"] + failed_sync + stats["suppressed"] + queued, stats
    assert stats["failed_async"] <= stats["sent"], stats


def test_bounces_reach_the_recipient_they_name(make_server: ServerFactory, sink: Sink):
    server, cred = mx_server(make_server, sink)

    # 1. A DSN to the VERP return path: failed (async), hard, suppressed everywhere.
    alice = "alice@example.net"
    queue_id, verp, copy = send_and_deliver(server, cred, sink, alice, "m1-" + uuid.uuid4().hex)
    assert re.fullmatch(VERP_RE, verp), verp
    assert b"From: Shop <news@shop.example>" in copy, "the From header stays as the client wrote it"
    wait_event(server, queue_id, alice, "sent")
    to_mx(server, [verp], dsn(copy, alice))
    failed = wait_event(server, queue_id, alice, "failed")
    d = failed["details"]
    assert d["async"] == "true" and d["status"] == "5.1.1" and d["bounce_class"] == "hard", d
    assert "User unknown" in d["diagnostic"] and d["remote_mta"] == "mailbox.example.net", d
    assert (alice, "") in suppressions(server)
    # The same DSN again (remote retries happen) adds nothing.
    to_mx(server, [verp], dsn(copy, alice))
    wait_until(lambda: all(m.get("kind") for m in server.cli_json("inbound", "list")), what="both reports read")
    assert [e["type"] for e in events_of(server, queue_id, alice)].count("failed") == 1
    # Suppressed now: the next message to alice is never attempted.
    later = submit(server, cred, [alice], message("m1b-" + uuid.uuid4().hex, alice))
    wait_event(server, later, alice, "suppressed")

    # 2. A DSN that lost the VERP address (sent to postmaster at the return-path domain):
    #    matched by the returned Message-ID and the address; mailbox full is soft, not suppressed.
    bob = "bob@example.net"
    queue_id2, _, copy2 = send_and_deliver(server, cred, sink, bob, "m2-" + uuid.uuid4().hex)
    wait_event(server, queue_id2, bob, "sent")
    to_mx(server, [f"postmaster@{RETURN_PATH}"], dsn(copy2, bob, status="5.2.2",
                                                      diagnostic="smtp; 552 5.2.2 <{r}>: Mailbox full"))
    d2 = wait_event(server, queue_id2, bob, "failed")["details"]
    assert d2["async"] == "true" and d2["status"] == "5.2.2" and d2["bounce_class"] == "soft", d2
    assert bob not in {a for (a, _) in suppressions(server)}

    # 3. A delay report: a delayed event, nothing final.
    carol = "carol@example.net"
    queue_id3, verp3, copy3 = send_and_deliver(server, cred, sink, carol, "m3-" + uuid.uuid4().hex)
    wait_event(server, queue_id3, carol, "sent")
    to_mx(server, [verp3], dsn(copy3, carol, action="delayed", status="4.4.1",
                               diagnostic="smtp; 421 4.4.1 connection timed out"))
    wait_event(server, queue_id3, carol, "delayed")

    # 4. An auto-reply to the return path is not a bounce.
    reply = (f"From: <{carol}>\r\nTo: <{verp3}>\r\nSubject: Out of Office: Order\r\n"
             f"Auto-Submitted: auto-replied\r\nIn-Reply-To: <m3@{SENDING}>\r\n"
             f"Date: Sun, 29 Nov 2026 10:01:00 +0000\r\n\r\n"
             "I am out of the office until Monday and will not be able to deliver your message promptly.\r\n").encode()
    to_mx(server, [verp3], reply, mail_from="")
    wait_event(server, queue_id3, carol, "auto_reply")

    # 5. A bounce that matches nothing is kept and counted.
    unknown = message("m5-" + uuid.uuid4().hex, "dave@example.net")
    to_mx(server, [f"postmaster@{RETURN_PATH}"], dsn(unknown, "dave@example.net"))

    def settled() -> dict | None:
        s = server.stats()
        return s if s["unmatched_reports"] == 1 and s["auto_replies"] == 1 else None
    stats = wait_until(settled, what="the unmatched report and the auto-reply counted")
    assert stats["sent"] == 3 and stats["failed"] == 2 and stats["failed_async"] == 2, stats
    assert stats["suppressed"] == 1 and stats["delayed"] == 1, stats
    assert not [e for e in events_of(server, queue_id3, carol) if e["type"] == "failed"]
    reconcile(stats)
    kinds = sorted(m["kind"] for m in server.cli_json("inbound", "list"))
    assert kinds == ["auto_reply", "bounce", "bounce", "bounce", "bounce", "delay"], kinds


def test_complaint_and_mailto_unsubscribe(make_server: ServerFactory, sink: Sink):
    server, cred = mx_server(make_server, sink, {"tracking": {"track": "unsubscribe"}})

    # An ARF complaint at the feedback address, matched by the VERP address in the returned Return-Path.
    erin = "erin@example.net"
    queue_id, verp, copy = send_and_deliver(server, cred, sink, erin, "c1-" + uuid.uuid4().hex)
    wait_event(server, queue_id, erin, "sent")
    to_mx(server, [f"fbl@{RETURN_PATH}"], arf(copy, erin, verp), mail_from="staff@fbl.example.net")
    complaint = wait_event(server, queue_id, erin, "complaint")
    assert complaint["details"]["feedback_type"] == "abuse", complaint
    # A complaint stops the sending tenant's mail to the address, from every one of its domains.
    assert (erin, "") in suppressions(server)

    # Unsubscribe by mail: to the mailto: address of the List-Unsubscribe header of the copy.
    frank = "frank@example.net"
    queue_id2, _, copy2 = send_and_deliver(server, cred, sink, frank, "u1-" + uuid.uuid4().hex)
    wait_event(server, queue_id2, frank, "sent")
    header = email.message_from_bytes(copy2, policy=email.policy.default)["List-Unsubscribe"]
    (mailto,) = re.findall(r"<mailto:([^>]+)>", str(header))
    assert re.fullmatch(rf"unsubscribe\+[a-z2-7]{{39,44}}@{re.escape(RETURN_PATH)}", mailto), mailto
    # Mail systems may change the case of a local part: the token still names frank.
    to_mx(server, [mailto.upper()], f"From: <{frank}>\r\nTo: <{mailto}>\r\nSubject: unsubscribe\r\n\r\n.\r\n".encode(),
          mail_from=frank)
    unsubscribe = wait_event(server, queue_id2, frank, "unsubscribe")
    assert unsubscribe["details"]["method"] == "mailto", unsubscribe
    assert (frank, SENDING) in suppressions(server)

    stats = wait_until(lambda: (s := server.stats())["unsubscribes"] == 1 and s, what="counters")
    assert stats["complaints"] == 1 and stats["failed"] == 0, stats
    reconcile(stats)


def test_mx_takes_only_its_own_addresses(make_server: ServerFactory, sink: Sink):
    server, _ = mx_server(make_server, sink, {"inbound": {"routes": {"inbound.example": "store"}}})
    with SMTPClient("127.0.0.1", server.mx_port) as c:
        ehlo = c.ehlo("remote.example.net")
        assert not any(line.startswith("AUTH") for line in ehlo.lines), ehlo.lines
        assert_reply(c.cmd("MAIL FROM:<someone@remote.example.net>"), 250)
        # No open relay, and no domain it was not given.
        assert_reply(c.cmd("RCPT TO:<victim@gmail.example>"), 550, "5.7.1")
        assert_reply(c.cmd("RCPT TO:<x@notconfigured.example>"), 550, "5.7.1")
        assert_reply(c.cmd("RCPT TO:<b-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.other.example>"), 550, "5.7.1")
        # Its own: the return-path domain, the feedback address, an inbound domain.
        assert_reply(c.cmd(f"RCPT TO:<postmaster@{RETURN_PATH}>"), 250)
        assert_reply(c.cmd(f"RCPT TO:<fbl@{RETURN_PATH}>"), 250)
        assert_reply(c.cmd("RCPT TO:<anyone@inbound.example>"), 250)
        assert_reply(c.cmd("RSET"), 250)
        c.quit()
    # AUTH is refused outright, so a credential cannot make the MX relay.
    with SMTPClient("127.0.0.1", server.mx_port) as c:
        c.ehlo()
        assert_reply(c.cmd("AUTH PLAIN AGFwcABzZWNyZXQ="), 502, "5.5.1")
        c.quit()
    # Inbound mail to a store-only route is kept and counted; nothing is relayed anywhere.
    to_mx(server, ["anyone@inbound.example"], b"From: <a@remote.example.net>\r\nSubject: hi\r\n\r\nhello\r\n",
          mail_from="a@remote.example.net")
    (arrived,) = wait_until(lambda: [m for m in server.cli_json("inbound", "list") if m["purpose"] == "inbound"],
                            what="the inbound message listed")
    assert arrived["kind"] == "inbound" and arrived["recipients"] == ["anyone@inbound.example"], arrived
    assert "webhook" not in arrived or arrived["webhook"] is None, arrived
    assert server.stats()["inbound"] == 1
    assert sink.received == []


def test_report_parse_cli(tern_bin: Path, tmp_path: Path):
    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(tern_bin), "report", "parse", *args], capture_output=True, text=True, timeout=60)
        assert not check or p.returncode == 0, p
        return p

    original = message("p1", "gina@example.net")
    files = {"bounce.eml": dsn(original, "gina@example.net"),
             "delay.eml": dsn(original, "gina@example.net", action="delayed", status="4.4.1"),
             "complaint.eml": arf(original, "gina@example.net", f"b-x@{RETURN_PATH}"),
             "plain.eml": b"From: a@b.example\r\nSubject: hello\r\n\r\nJust a note.\r\n"}
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    p = cli("--json", *paths)
    parsed = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert [r["kind"] for r in parsed] == ["bounce", "delay", "complaint", "unknown"], parsed
    bounce = parsed[0]["recipients"][0]
    assert bounce["address"] == "gina@example.net" and bounce["action"] == "failed", bounce
    assert bounce["status"] == "5.1.1" and bounce["bounce_class"] == "hard" and bounce["suppress"] is True, bounce
    assert parsed[1]["recipients"][0]["action"] == "delayed"
    assert parsed[2]["feedback"]["feedback_type"] == "abuse"
    text = cli(paths[0]).stdout
    assert "bounce" in text and "gina@example.net failed 5.1.1 hard" in text, text
    # A file that cannot be read is an error, and the others are still read.
    p = cli(str(tmp_path / "missing.eml"), paths[0], check=False)
    assert p.returncode != 0 and "cannot read" in p.stderr and "gina@example.net" in p.stdout


class WebhookReceiver:
    """A customer's endpoint: Python's http.server on loopback, recording every POST.
    It can be started late (the endpoint is down until then) and told to fail."""

    def __init__(self, port: int):
        self.port = port
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def verify_signature(headers: dict[str, str], body: bytes, secret: bytes) -> None:
    """X-Tern-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""
    parts = dict(p.split("=", 1) for p in headers["x-tern-signature"].split(","))
    expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), headers["x-tern-signature"]
    assert abs(int(parts["t"]) - time.time()) < 600, parts


def test_inbound_mail_is_posted_and_retried_until_the_endpoint_is_back(make_server: ServerFactory, sink: Sink):
    (hook_port,) = free_ports(1)
    receiver = WebhookReceiver(hook_port)
    server, cred = mx_server(make_server, sink, {"inbound": {
        "routes": {"support@inbound.example": f"http://127.0.0.1:{hook_port}/hooks/inbound",
                   "archive.example": "store"},
        "webhook_secret": base64.b64encode(WEBHOOK_SECRET).decode(),
        "retry_schedule": [1],
    }})
    try:
        # The endpoint is down: the message is stored (250) and its posting retried.
        msg = EmailMessage()
        msg["From"] = "Jane Customer <jane@remote.example>"
        msg["To"] = "Support <support@inbound.example>"
        msg["Cc"] = "archive@archive.example"
        msg["Subject"] = "=?utf-8?q?H=C3=A9lp_needed?="
        msg["Message-ID"] = "<inbound-1@remote.example>"
        msg.set_content("My order did not arrive. Café.\n")
        msg.add_alternative("<p>My order did not arrive. <b>Café</b>.</p>\n", subtype="html")
        msg.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf")
        to_mx(server, ["support@inbound.example", "archive@archive.example"], msg.as_bytes(policy=email.policy.SMTP),
              mail_from="jane@remote.example")

        def failing() -> dict | None:
            for m in server.cli_json("inbound", "list"):
                w = m.get("webhook")
                if w and w["attempts"] >= 2 and w["state"] == "pending" and w["last_error"]:
                    return m
            return None
        wait_until(failing, timeout=20, what="two failed posting attempts while the endpoint is down")
        assert receiver.posts == []

        # Back, but answering 503 once: tried again, then delivered exactly once.
        receiver.fail_next = 1
        receiver.start()
        wait_until(lambda: receiver.posts, timeout=20, what="the post once the endpoint is back")
        # Delivered is recorded once the post is answered: no attempt is due after it.
        def delivered() -> bool:
            return any((m.get("webhook") or {}).get("state") == "delivered" for m in server.cli_json("inbound", "list"))
        wait_until(delivered, timeout=30, what="the post recorded as delivered")
        assert len(receiver.posts) == 1, receiver.posts
        headers, body = receiver.posts[0]
        verify_signature(headers, body, WEBHOOK_SECRET)
        assert headers["content-type"].startswith("application/json")
        payload = json.loads(body)
        assert payload["envelope"]["mail_from"] == "jane@remote.example"
        assert payload["envelope"]["recipients"] == ["support@inbound.example"]
        assert payload["subject"] == "Hélp needed"
        assert payload["from"]["address"] == "jane@remote.example" and payload["from"]["name"] == "Jane Customer"
        assert payload["message_id"].strip("<>") == "inbound-1@remote.example"
        assert "Café" in payload["text"] and "<b>Café</b>" in payload["html"]
        (attachment,) = payload["attachments"]
        assert attachment["filename"] == "receipt.pdf" and attachment["content_type"] == "application/pdf"
        assert base64.b64decode(attachment["content"]) == b"%PDF-1.4 receipt"

        listed = {m["recipients"][0]: m for m in server.cli_json("inbound", "list")}
        hook = listed["support@inbound.example"]["webhook"]
        assert hook["state"] == "delivered" and hook["attempts"] >= 3 and hook["last_status"] == 200, hook
        # The store-only route kept its copy of the same transaction without posting it.
        assert listed["archive@archive.example"]["kind"] == "inbound" and not listed["archive@archive.example"].get("webhook")
        assert server.stats()["inbound"] == 2
        status, body = server.http("GET", "/api/v1/inbound", token=cred.api_key)
        assert status == 200 and len(json.loads(body)["messages"]) == 2
    finally:
        receiver.stop()
