"""swaks, the SMTP swiss army knife, against submission: STARTTLS, implicit
TLS and PIPELINING."""
from __future__ import annotations

import subprocess
import uuid

from helpers import Credential, TernServer, content_bytes, header_block


def swaks(binary: str, server: TernServer, port: int, cred: Credential | None, marker: str,
          *extra: str) -> subprocess.CompletedProcess:
    cmd = [binary, "--server", f"127.0.0.1:{port}", "--from", "sender@example.com", "--to", "rcpt@example.net",
           "--header", f"Subject: {marker}", "--helo", "swaks.test", "--timeout", "20"]
    if cred is not None:
        cmd += ["--auth-user", cred.username, "--auth-password", cred.password]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def check(p: subprocess.CompletedProcess, server: TernServer, marker: str) -> dict:
    assert p.returncode == 0, f"swaks exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}"
    assert "queued as" in p.stdout.lower(), p.stdout[-2000:]
    msg = server.store.wait_message_with(marker)
    assert msg["mail_from"] == "sender@example.com"
    assert [r["address"] for r in msg["recipients"]] == ["rcpt@example.net"]
    assert header_block(content_bytes(msg))[0][0].lower() == "received"
    return msg


def test_swaks_starttls_auth(swaks_bin: str, auth_server: TernServer, alice: Credential) -> None:
    marker = f"swaks-{uuid.uuid4().hex}"
    p = swaks(swaks_bin, auth_server, auth_server.submission_port, alice, marker, "--tls")
    msg = check(p, auth_server, marker)
    assert msg["credential"] == alice.username


def test_swaks_pipeline(swaks_bin: str, auth_server: TernServer, alice: Credential) -> None:
    marker = f"swaks-pipe-{uuid.uuid4().hex}"
    p = swaks(swaks_bin, auth_server, auth_server.submission_port, alice, marker, "--tls", "--pipeline")
    check(p, auth_server, marker)


def test_swaks_implicit_tls(swaks_bin: str, auth_server: TernServer, alice: Credential) -> None:
    marker = f"swaks-ssmtp-{uuid.uuid4().hex}"
    p = swaks(swaks_bin, auth_server, auth_server.tls_port, alice, marker, "--tls-on-connect", "--auth", "PLAIN")
    check(p, auth_server, marker)


def test_swaks_auth_login(swaks_bin: str, auth_server: TernServer, alice: Credential) -> None:
    marker = f"swaks-login-{uuid.uuid4().hex}"
    p = swaks(swaks_bin, auth_server, auth_server.submission_port, alice, marker, "--tls", "--auth", "LOGIN")
    check(p, auth_server, marker)


def test_swaks_without_tls_cannot_auth(swaks_bin: str, auth_server: TernServer, alice: Credential) -> None:
    marker = f"swaks-notls-{uuid.uuid4().hex}"
    p = swaks(swaks_bin, auth_server, auth_server.submission_port, alice, marker)
    assert p.returncode != 0, p.stdout[-2000:]
    assert auth_server.store.message_with(marker) is None
