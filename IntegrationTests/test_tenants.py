"""Tenants end to end (issue 21), with real peers on loopback: two tenants send through
`tern serve` with their own credentials and sending domains (one with smtplib, one with
swaks), the mail is delivered to an aiosmtpd sink (through `delivery.routes`), and what
comes back — a DSN to the VERP return path, an ARF complaint, an open and a click, and
inbound mail to each tenant's domain — must be attributed to the tenant whose mail it
was. Then the HTTP API is asked with each tenant's key and with an operator key: a tenant
sees exactly its own counters, messages and inbound mail, and another tenant's ids answer
as unknown ones do.

Also: a hard bounce suppresses for the sending tenant only; the per-tenant limits
(`max_messages_per_hour`, `max_recipients_per_message`) with their SMTP replies and a
change on the running server; and a credential added while the server runs."""
from __future__ import annotations

import json
import re
import smtplib
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from conftest import ServerFactory
from helpers import Credential, SMTPClient, TernServer, assert_queued, assert_reply, free_ports, make_message, \
    unverified_tls_context
from test_delivery import wait_until
from test_inbound import arf, dsn, to_mx
from test_tracking import BROWSER_UA, Copy, Sink, fetch, newsletter, tracked_urls
from test_tracking import sink  # noqa: F401 (the fixture)

QUEUED_AS = re.compile(r"queued as ([0-9a-f]{16})", re.I)


def sink_delivery(sink: Sink) -> dict:
    """Overrides that deliver every domain to the sink and retry after a second."""
    return {"delivery": {"enabled": True, "routes": {"*": f"127.0.0.1:{sink.port}"},  # type: ignore[attr-defined]
                         "retry_schedule": [1], "connect_timeout": 2}}


def add_tenant(server: TernServer, name: str, domain: str, *limits: str) -> Credential:
    """`tern tenant add NAME [limits]`, a sending domain of its own that takes inbound mail
    into the store, and an AUTH credential; done before the server starts (nothing to wait out)."""
    server.cli("tenant", "add", name, *limits)
    server.cli("domain", "add", domain, "--tenant", name, "--inbound-route", "store")
    d = server.cli_json("credential", "add", f"app-{name}", "--tenant", name)
    return Credential(d["username"], d["password"], d["api_key"])


def api(server: TernServer, path: str, key: str) -> tuple[int, Any]:
    """GET with `Authorization: Bearer key`: (status, JSON body or the raw bytes)."""
    status, body = server.http("GET", path, token=key)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def api_ok(server: TernServer, path: str, key: str) -> Any:
    status, body = api(server, path, key)
    assert status == 200, f"GET {path}: {status} {body!r}"
    return body


def counters(stats: dict) -> dict:
    """The counters of a stats body (without the period it covers)."""
    return {k: v for k, v in stats.items() if k not in ("from", "to")}


def wait_event(server: TernServer, key: str, message_id: str, address: str, type_: str, timeout: float = 20) -> dict:
    """Until the message's timeline (through the API, with the owner's key) has a `type_` event for `address`."""
    def find() -> dict | None:
        view = api_ok(server, f"/api/v1/messages/{message_id}", key)
        found = [e for r in view["recipients"] if r["address"] == address for e in r["events"] if e["type"] == type_]
        return found[0] if found else None
    return wait_until(find, timeout=timeout, what=f"a {type_} event for {address} in {message_id}", interval=0.1)


def smtplib_send(server: TernServer, cred: Credential, mail_from: str, rcpt: str, content: bytes) -> str:
    """Submits one message with Python's smtplib (STARTTLS, AUTH); returns its queue id."""
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=15) as smtp:
        smtp.starttls(context=unverified_tls_context())
        smtp.login(cred.username, cred.password)
        assert smtp.mail(mail_from)[0] == 250
        assert smtp.rcpt(rcpt)[0] == 250
        code, text = smtp.data(content)
    m = QUEUED_AS.search(text.decode())
    assert code == 250 and m, (code, text)
    return m.group(1)


def swaks_send(binary: str, server: TernServer, cred: Credential, mail_from: str, rcpt: str, content: bytes) -> str:
    """Submits one message with swaks (STARTTLS, AUTH, the content on stdin); returns its queue id."""
    p = subprocess.run(
        [binary, "--server", f"127.0.0.1:{server.submission_port}", "--tls", "--auth-user", cred.username,
         "--auth-password", cred.password, "--helo", "swaks.test", "--from", mail_from, "--to", rcpt,
         "--data", "-", "--timeout", "20"],
        input=content, capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    m = QUEUED_AS.search(out)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and m, f"swaks exited {p.returncode}\n{out[-3000:]}\n{err[-2000:]}"
    return m.group(1)


# --------------------------------------------------------------------------- two tenants


@dataclass
class TenantMail:
    """One tenant of the two-tenant world and everything it sent and got back."""

    name: str
    domain: str
    cred: Credential
    bounced: str  # its recipient whose mail bounced (a DSN to the VERP address)
    complained: str  # its recipient who complained (ARF)
    engaged: str  # its recipient who opened and clicked
    ids: dict[str, str] = field(default_factory=dict)  # recipient -> message id
    inbound_to: str = ""
    expected: dict[str, int] = field(default_factory=dict)


@dataclass
class TwoTenants:
    server: TernServer
    operator: Credential
    a: TenantMail
    b: TenantMail


@pytest.fixture(scope="module")
def module_sink() -> Iterator[Sink]:
    (port,) = free_ports(1)
    with Sink("127.0.0.1", port) as s:
        s.port = port  # type: ignore[attr-defined]
        yield s


@pytest.fixture(scope="module")
def two_tenants(session_factory: ServerFactory, module_sink: Sink, swaks_bin: str) -> TwoTenants:
    """Tenants `alpha` (sends with smtplib) and `bravo` (sends with swaks), each with its own
    credential and sending domain (which also takes inbound mail into the store), and an
    operator credential. Each tenant's mail is delivered, bounced, complained about, opened
    and clicked; then one inbound message arrives at each tenant's domain."""
    sink = module_sink
    server = session_factory("tenants", {"tracking": {"track": "all"}, **sink_delivery(sink)}, start=False)
    a = TenantMail("alpha", "alpha.example", add_tenant(server, "alpha", "alpha.example"),
                   bounced="ann@example.net", complained="amy@example.net", engaged="abe@example.org")
    b = TenantMail("bravo", "bravo.example", add_tenant(server, "bravo", "bravo.example"),
                   bounced="bob@example.net", complained="bea@example.net", engaged="ben@example.org")
    d = server.cli_json("credential", "add", "ops", "--operator")
    operator = Credential(d["username"], d["password"], d["api_key"])
    server.start()
    server.wait_http()
    public = f"http://127.0.0.1:{server.http_port}"

    def send(t: TenantMail, rcpt: str) -> tuple[str, str]:
        marker = f"{t.name}-{uuid.uuid4().hex}"
        content = newsletter(marker, sender=f"news@{t.domain}", to=[rcpt])
        if t is a:
            message_id = smtplib_send(server, t.cred, f"news@{t.domain}", rcpt, content)
        else:
            message_id = swaks_send(swaks_bin, server, t.cred, f"news@{t.domain}", rcpt, content)
        t.ids[rcpt] = message_id
        return message_id, marker

    # b also sends to a fourth recipient, and opens and clicks twice: where a's and b's counters
    # differ, a count that took the other tenant's events in shows.
    b_quiet = "bud@example.org"
    sends = {t.name: [(r, *send(t, r)) for r in (t.bounced, t.complained, t.engaged)] for t in (a, b)}
    sends["bravo"].append((b_quiet, *send(b, b_quiet)))

    for t in (a, b):
        copies = {}
        for rcpt, message_id, marker in sends[t.name]:
            copy = sink.wait_copy(rcpt, marker)
            (verp,) = [mail_from for (mail_from, rcpts, _) in sink.with_marker(marker) if rcpt in rcpts]
            assert re.fullmatch(rf"b-[a-z2-7]{{39,44}}@bounces\.{re.escape(t.domain)}", verp), verp
            wait_event(server, t.cred.api_key, message_id, rcpt, "sent")
            copies[rcpt] = (message_id, verp, copy)

        message_id, verp, copy = copies[t.bounced]
        to_mx(server, [verp], dsn(copy, t.bounced))
        failed = wait_event(server, t.cred.api_key, message_id, t.bounced, "failed")
        assert failed["details"]["bounce_class"] == "hard", failed

        message_id, verp, copy = copies[t.complained]
        to_mx(server, [f"fbl@bounces.{t.domain}"], arf(copy, t.complained, verp, sending=t.domain),
              mail_from="staff@fbl.example.net")
        wait_event(server, t.cred.api_key, message_id, t.complained, "complaint")

        message_id, _, copy = copies[t.engaged]
        urls = tracked_urls(Copy(copy), public)
        engagements = 1 if t is a else 2
        for i in range(engagements):
            assert fetch(urls["open"], ua=BROWSER_UA)[0] == 200
            status, headers, _ = fetch(urls["clicks"][i], ua=BROWSER_UA)
            assert status == 302, (status, headers)

        def engaged(t: TenantMail = t, message_id: str = message_id, n: int = engagements) -> bool:
            view = api_ok(server, f"/api/v1/messages/{message_id}", t.cred.api_key)
            types = [e["type"] for r in view["recipients"] for e in r["events"]]
            return types.count("open") == n and types.count("click") == n
        wait_until(engaged, timeout=15, what=f"{engagements} opens and clicks of {t.name}", interval=0.1)

        t.inbound_to = f"support@{t.domain}"
        to_mx(server, [t.inbound_to], f"From: <jane@remote.example>\r\nTo: <{t.inbound_to}>\r\n"
              f"Subject: question for {t.name}\r\n\r\nHello {t.name}.\r\n".encode(), mail_from="jane@remote.example")
        sent = len(sends[t.name])
        t.expected = {"outbound": sent, "sent": sent, "failed": 1, "failed_async": 1, "suppressed": 0,
                      "complaints": 1, "opens": engagements, "clicks": engagements, "unsubscribes": 0,
                      "inbound": 1, "throttled": 0}

    def inbound_read() -> bool:
        listed = api_ok(server, "/api/v1/inbound", operator.api_key)["messages"]
        return len(listed) == 6 and all(m.get("kind") for m in listed)
    wait_until(inbound_read, timeout=20, what="two bounces, two complaints and two inbound messages read", interval=0.1)
    return TwoTenants(server, operator, a, b)


def assert_counters(stats: dict, expected: dict, who: str) -> None:
    got = {k: stats[k] for k in expected}
    assert got == expected, f"{who}: counters {got}, expected {expected}\n(all: {stats})"


def test_two_tenants_each_see_their_own(two_tenants: TwoTenants):
    w = two_tenants
    server, a, b, op = w.server, w.a, w.b, w.operator.api_key

    # Each tenant's key: exactly its own counters.
    for t in (a, b):
        assert_counters(api_ok(server, "/api/v1/stats", t.cred.api_key), t.expected, f"{t.name}'s key")
        assert_counters(server.stats(tenant=t.name), t.expected, f"tern stats --tenant {t.name}")

    # Messages: a's key reads a's, and b's id answers exactly as an unknown id does.
    for rcpt, message_id in a.ids.items():
        view = api_ok(server, f"/api/v1/messages/{message_id}", a.cred.api_key)
        assert [r["address"] for r in view["recipients"]] == [rcpt], view
    unknown = "0000000000000001"
    status_unknown, body_unknown = server.http("GET", f"/api/v1/messages/{unknown}", token=a.cred.api_key)
    assert status_unknown == 404, (status_unknown, body_unknown)
    for message_id in b.ids.values():
        status, body = server.http("GET", f"/api/v1/messages/{message_id}", token=a.cred.api_key)
        assert (status, body.replace(message_id.encode(), b"<id>")) == \
               (404, body_unknown.replace(unknown.encode(), b"<id>")), (status, body)

    # Inbound: each tenant lists its own inbound mail, and nothing of the other's.
    # (Whether it also lists the reports about its mail: test_matched_reports_are_listed_for_their_tenant.)
    lists = {t.name: api_ok(server, "/api/v1/inbound", t.cred.api_key)["messages"] for t in (a, b)}
    for t in (a, b):
        mine = lists[t.name]
        assert [m["recipients"] for m in mine if m["kind"] == "inbound"] == [[t.inbound_to]], mine
        assert all(owned_by(r, t) for m in mine for r in m["recipients"]), f"{t.name} lists: {mine}"
        other = b if t is a else a
        assert not {m["id"] for m in mine} & {m["id"] for m in lists[other.name]}, lists
        assert other.domain not in json.dumps(mine), f"{t.name} sees {other.name}'s inbound mail: {mine}"
        cli = server.cli_json("inbound", "list", "--tenant", t.name)
        assert sorted(m["id"] for m in cli) == sorted(m["id"] for m in mine), (cli, mine)

    # Suppressions: each tenant's hard bounce and complaint, for that tenant only.
    rows = server.cli_json("suppression", "list")
    got = sorted((r["tenant"], r["address"]) for r in rows)
    assert got == sorted([("alpha", a.bounced), ("alpha", a.complained), ("bravo", b.bounced),
                          ("bravo", b.complained)]), rows

    # The operator sees both: everything without ?tenant=, one tenant's with it.
    everything = api_ok(server, "/api/v1/stats", op)
    assert_counters(everything, {k: a.expected[k] + b.expected[k] for k in a.expected}, "the operator's key")
    for t in (a, b):
        assert counters(api_ok(server, f"/api/v1/stats?tenant={t.name}", op)) == \
               counters(api_ok(server, "/api/v1/stats", t.cred.api_key)), f"?tenant={t.name}"
        for message_id in t.ids.values():
            assert api_ok(server, f"/api/v1/messages/{message_id}", op)["id"] == message_id
        filtered = api_ok(server, f"/api/v1/inbound?tenant={t.name}", op)["messages"]
        assert sorted(m["id"] for m in filtered) == sorted(m["id"] for m in lists[t.name]), filtered
    listed = api_ok(server, "/api/v1/inbound", op)["messages"]
    assert sorted(m["kind"] for m in listed) == ["bounce", "bounce", "complaint", "complaint", "inbound", "inbound"], \
        listed
    assert {m["id"] for l in lists.values() for m in l} <= {m["id"] for m in listed}, listed
    # An operator naming a tenant that does not exist is told so (it may know every name).
    assert api(server, "/api/v1/stats?tenant=nosuch", op)[0] == 400


def test_matched_reports_are_listed_for_their_tenant(two_tenants: TwoTenants):
    w = two_tenants
    for t in (w.a, w.b):
        mine = api_ok(w.server, "/api/v1/inbound", t.cred.api_key)["messages"]
        assert sorted(m["kind"] for m in mine) == ["bounce", "complaint", "inbound"], f"{t.name} lists: {mine}"
        assert api_ok(w.server, f"/api/v1/inbound?tenant={t.name}", w.operator.api_key)["messages"] == mine


def owned_by(address: str, t: TenantMail) -> bool:
    """An address at the tenant's domain or its return-path domain."""
    return address.lower().endswith((f"@{t.domain}", f"@bounces.{t.domain}"))


# Every API path, asked with alpha's key for bravo's data. {b_message}: one of bravo's
# message ids; {b_inbound}: the id of bravo's inbound message.
CROSS_TENANT = [
    ("/api/v1/messages/{b_message}", 404),
    ("/api/v1/messages/{b_message_upper}", 404),
    ("/api/v1/messages/{b_inbound}", 404),
    ("/api/v1/messages/{b_message}?tenant=bravo", 403),
    ("/api/v1/messages/{b_message}?tenant=alpha", 404),
    ("/api/v1/messages/{b_message}?tenant=nosuch", 403),
    ("/api/v1/stats?tenant=bravo", 403),
    ("/api/v1/stats?tenant=nosuch", 403),
    ("/api/v1/stats?tenant=bravo&tenant=alpha", 403),
    ("/api/v1/stats?tenant=BRAVO", 403),
    ("/api/v1/stats?tenant=bravo&from=2020-01-01", 403),
    ("/api/v1/inbound?tenant=bravo", 403),
    ("/api/v1/inbound?tenant=nosuch", 403),
    ("/api/v1/inbound?tenant=bravo&limit=1000", 403),
    # Allowed, and then only alpha's.
    ("/api/v1/stats", 200),
    ("/api/v1/stats?tenant=alpha", 200),
    ("/api/v1/inbound", 200),
    ("/api/v1/inbound?tenant=alpha", 200),
    ("/api/v1/inbound?limit=1000", 200),
]


@pytest.mark.parametrize("template, expected", CROSS_TENANT, ids=[t for t, _ in CROSS_TENANT])
def test_another_tenants_data_is_never_answered(two_tenants: TwoTenants, template: str, expected: int):
    w = two_tenants
    server, a, b = w.server, w.a, w.b
    b_message = b.ids[b.engaged]
    (b_inbound,) = [m["id"] for m in api_ok(server, "/api/v1/inbound", b.cred.api_key)["messages"]
                    if m["kind"] == "inbound"]
    path = template.format(b_message=b_message, b_message_upper=b_message.upper(), b_inbound=b_inbound)
    status, raw = server.http("GET", path, token=a.cred.api_key)
    assert status == expected, f"GET {path} with alpha's key: {status} {raw!r}"
    asked = path.split("?")[0].rsplit("/", 1)[1]
    if status == 404:
        # Word for word what an unknown id gets (which names the id asked for, and nothing else).
        unknown = "0000000000000001"
        _, unknown_body = server.http("GET", f"/api/v1/messages/{unknown}", token=a.cred.api_key)
        assert raw.replace(asked.encode(), b"<id>") == unknown_body.replace(unknown.encode(), b"<id>"), raw
    if status != 200:
        # A problem's `instance` is the path asked: echoing the caller's own input tells it nothing.
        raw = raw.replace(asked.encode(), b"<id>")
    text = raw.decode(errors="replace")
    body = json.loads(raw) if status == 200 else None
    for secret in (*b.ids.values(), b_inbound, b.domain, *b.ids):
        assert secret.lower() not in text.lower(), f"GET {path} with alpha's key shows {secret}: {text}"
    if status == 200 and path.startswith("/api/v1/stats"):
        assert_counters(body, a.expected, f"GET {path}")
    if status == 200 and path.startswith("/api/v1/inbound"):
        assert body["messages"] and all(owned_by(r, a) for m in body["messages"] for r in m["recipients"]), body


def test_operator_credential_cannot_send(two_tenants: TwoTenants):
    w = two_tenants
    with w.server.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(w.operator.username, w.operator.password), 535, "5.7.8")
        c.quit()


def test_credential_added_while_running_sees_its_tenant(two_tenants: TwoTenants):
    w = two_tenants
    server, a, b = w.server, w.a, w.b
    d = server.cli_json("credential", "add", "late-alpha", "--tenant", "alpha")
    late = Credential(d["username"], d["password"], d["api_key"])
    # Polled: the immediate use is test_credential_added_while_running_works_at_once.
    stats = wait_until(lambda: (r := api(server, "/api/v1/stats", late.api_key))[0] == 200 and r[1],
                       timeout=10, what="the new key accepted", interval=0.1)
    assert_counters(stats, a.expected, "the new key of alpha")
    assert api(server, f"/api/v1/messages/{b.ids[b.engaged]}", late.api_key)[0] == 404
    assert api(server, "/api/v1/stats?tenant=bravo", late.api_key)[0] == 403
    assert api_ok(server, f"/api/v1/messages/{a.ids[a.engaged]}", late.api_key)["id"] == a.ids[a.engaged]
    # It sends for alpha, from alpha's domain only.
    with server.authed_client(late) as c:
        assert_reply(c.cmd(f"MAIL FROM:<news@{b.domain}>"), 550, "5.7.1")
        c.quit()


def test_credential_added_while_running_works_at_once(two_tenants: TwoTenants):
    server = two_tenants.server
    for attempt in range(3):
        # A busy server has always just read its credentials. So has this one once a key added
        # before is accepted: the call that first accepts it is the one that read them.
        probe = server.cli_json("credential", "add", f"probe-{attempt}", "--tenant", "alpha")["api_key"]
        wait_until(lambda: api(server, "/api/v1/stats", probe)[0] == 200, timeout=10, what="the probe key",
                   interval=0.05)
        read_at = time.monotonic()
        d = server.cli_json("credential", "add", f"at-once-{attempt}", "--tenant", "alpha")
        status, body = api(server, "/api/v1/stats", d["api_key"])
        if time.monotonic() - read_at < 1.5:  # else the server's read was old anyway: this tells nothing
            break
    else:
        pytest.skip("adding a credential took longer than the server's credential cache lives")
    assert status == 200, f"a credential added moments ago: {status} {body!r}"


# --------------------------------------------------------------------------- suppression per tenant


def test_hard_bounce_suppresses_for_the_sending_tenant_only(make_server: ServerFactory, sink: Sink):
    server = make_server("suppress", sink_delivery(sink), start=False)
    creds = {name: add_tenant(server, name, f"{name}.example") for name in ("alpha", "bravo")}
    server.start()
    server.wait_http()
    x = "x@example.net"

    def send(name: str) -> tuple[str, str]:
        marker = f"{name}-{uuid.uuid4().hex}"
        with server.authed_client(creds[name]) as c:
            message_id = assert_queued(c.send_message(f"news@{name}.example", [x], make_message(
                subject=marker, sender=f"news@{name}.example", to=x)))
            c.quit()
        return message_id, marker

    # alpha's mail to x bounces (hard): x is suppressed for alpha.
    a1, marker = send("alpha")
    copy = sink.wait_copy(x, marker)
    (verp,) = [mail_from for (mail_from, _, _) in sink.with_marker(marker)]
    wait_event(server, creds["alpha"].api_key, a1, x, "sent")
    to_mx(server, [verp], dsn(copy, x))
    wait_event(server, creds["alpha"].api_key, a1, x, "failed")
    rows = wait_until(lambda: server.cli_json("suppression", "list"), what="the suppression")
    assert [(r["tenant"], r["address"]) for r in rows] == [("alpha", x)], rows
    assert server.cli_json("suppression", "list", "--tenant", "bravo") == []

    # bravo's mail to x is delivered.
    b1, b_marker = send("bravo")
    sink.wait_copy(x, b_marker)
    wait_event(server, creds["bravo"].api_key, b1, x, "sent")
    bravo = api_ok(server, "/api/v1/stats", creds["bravo"].api_key)
    assert (bravo["outbound"], bravo["sent"], bravo["suppressed"], bravo["failed"]) == (1, 1, 0, 0), bravo

    # alpha's next message to x is not.
    a2, a2_marker = send("alpha")
    wait_event(server, creds["alpha"].api_key, a2, x, "suppressed")
    alpha = api_ok(server, "/api/v1/stats", creds["alpha"].api_key)
    assert (alpha["outbound"], alpha["sent"], alpha["suppressed"], alpha["failed"]) == (2, 1, 1, 1), alpha
    assert sink.with_marker(a2_marker) == [], "a suppressed message reached the sink"
    assert server.stats(tenant="bravo")["suppressed"] == 0


# --------------------------------------------------------------------------- limits


def wait_out_hour_end(margin: float = 20) -> None:
    """The hourly count resets at the top of the UTC hour: a test that counts to a limit
    does not start in the last `margin` seconds of one."""
    now = datetime.now(timezone.utc)
    left = 3600 - (now.minute * 60 + now.second + now.microsecond / 1e6)
    if left < margin:
        time.sleep(left + 0.5)  # waits for the clock, not for the server


def mail_with(c: SMTPClient, mail_from: str, rcpts: list[str], marker: str) -> str:
    assert_reply(c.cmd(f"MAIL FROM:<{mail_from}>"), 250, "2.1.0")
    for r in rcpts:
        assert_reply(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")
    return assert_queued(c.data(make_message(subject=marker, sender=mail_from, to=rcpts[0])))


def test_limits(make_server: ServerFactory, sink: Sink):
    server = make_server("limits", sink_delivery(sink), start=False)
    hourly = add_tenant(server, "hourly", "hourly.example", "--max-messages-per-hour", "2")
    narrow = add_tenant(server, "narrow", "narrow.example", "--max-recipients-per-message", "1")
    other = add_tenant(server, "other", "other.example")
    server.start()
    sender = "news@hourly.example"
    wait_out_hour_end()

    # Two single-recipient messages go through; the third is refused at MAIL FROM: 451 4.7.1.
    with server.authed_client(hourly) as c:
        for i in range(2):
            mail_with(c, sender, [f"r{i}@example.net"], f"hourly-{i}-{uuid.uuid4().hex}")
        refused = assert_reply(c.cmd(f"MAIL FROM:<{sender}>"), 451, "4.7.1", "max_messages_per_hour")
        reset = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z")
        assert reset in refused.text, f"the reset time ({reset}) is not named: {refused}"
        # Nothing to add a recipient or content to.
        assert_reply(c.cmd("RCPT TO:<r2@example.net>"), 503)
        c.quit()

    def settled() -> dict | None:
        s = server.stats(tenant="hourly")
        return s if s["throttled"] >= 1 else None
    stats = wait_until(settled, timeout=10, what="the refusal counted as throttled")
    assert stats["outbound"] == 2, stats
    # Another tenant is not limited by it.
    with server.authed_client(other) as c:
        mail_with(c, "news@other.example", ["o@example.net"], f"other-{uuid.uuid4().hex}")
        c.quit()

    # A higher limit applies on the running server: retried (as a client retries a 451) until it does.
    server.cli("tenant", "set", "hourly", "--max-messages-per-hour", "5")

    def goes_through() -> str | None:
        with server.authed_client(hourly) as c:
            reply = c.cmd(f"MAIL FROM:<{sender}>")
            if reply.code == 451:
                c.quit()
                return None
            assert_reply(reply, 250, "2.1.0")
            assert_reply(c.cmd("RCPT TO:<r3@example.net>"), 250, "2.1.5")
            queue_id = assert_queued(c.data(make_message(subject=f"hourly-3-{uuid.uuid4().hex}", sender=sender)))
            c.quit()
            return queue_id
    wait_until(goes_through, timeout=10, what="a message once the limit is 5", interval=0.2)

    # 3 of 5 used: in a message to three, the recipient that would be the sixth is refused at RCPT.
    with server.authed_client(hourly) as c:
        assert_reply(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<r4@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<r5@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<r6@example.net>"), 451, "4.7.1", "max_messages_per_hour")
        assert_queued(c.data(make_message(subject=f"hourly-4-{uuid.uuid4().hex}", sender=sender)))
        assert_reply(c.cmd(f"MAIL FROM:<{sender}>"), 451, "4.7.1", "max_messages_per_hour")
        c.quit()
    assert server.stats(tenant="hourly")["outbound"] == 5

    # max_recipients_per_message 1: the second RCPT gets 452 4.5.3; the message goes to the first.
    with server.authed_client(narrow) as c:
        marker = f"narrow-{uuid.uuid4().hex}"
        assert_reply(c.cmd("MAIL FROM:<news@narrow.example>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<n1@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<n2@example.net>"), 452, "4.5.3")
        assert_queued(c.data(make_message(subject=marker, sender="news@narrow.example", to="n1@example.net")))
        c.quit()
    stored = server.store.wait_message_with(marker)
    assert [r["address"] for r in stored["recipients"]] == ["n1@example.net"], stored["recipients"]
