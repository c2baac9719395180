"""Graceful shutdown: SIGTERM lets a client that is mid-DATA finish, the
process exits 0, and the store opens cleanly afterwards."""
from __future__ import annotations

import signal
import subprocess
import time
import uuid

import pytest

from conftest import ServerFactory
from helpers import assert_queued, assert_reply, make_message


# Serve.drainTimeout: how long SIGTERM waits for sessions receiving a message.
DRAIN_TIMEOUT = 30


def test_sigterm_idle_exits_zero(make_server: ServerFactory) -> None:
    server = make_server("idle-term")
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(120) == 0, server.log_tail()
    # With no session to drain it does not wait out the drain timeout.
    assert time.monotonic() - t0 < DRAIN_TIMEOUT
    assert server.store.scalar("PRAGMA integrity_check") == "ok"


def test_sigterm_mid_data(make_server: ServerFactory) -> None:
    server = make_server("term")
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    marker = f"mid-data-{uuid.uuid4().hex}"
    # One message before, so the store is not empty.
    with server.client() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<r@example.net>"), 250)
        assert_queued(c.data(make_message(subject=marker + "-before")))
        c.quit()

    idle = server.client()
    idle.ehlo()
    c = server.client()
    c.ehlo()
    assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250)
    assert_reply(c.cmd("RCPT TO:<r@example.net>"), 250)
    assert_reply(c.cmd("DATA"), 354)
    msg = make_message(subject=marker, body="y" * 70 + "\r\n" * 1 + "z" * 70 + "\r\n")
    c.send(msg[:60])

    server.proc.send_signal(signal.SIGTERM)
    # Listeners close first, then idle sessions are told 421 and closed.
    assert_reply(idle.read_reply(timeout=30), 421, "4.3.2")
    assert idle.wait_closed(30), "idle session still open after SIGTERM"
    assert server.proc.poll() is None, "tern exited while a client was mid-DATA"
    with pytest.raises(ConnectionRefusedError):
        server.client(timeout=10)
    # The session in DATA is drained: its message is taken (250), then it is told 421 and closed.
    c.send(msg[60:] + b".\r\n")
    assert_queued(c.read_reply(timeout=60))
    assert_reply(c.read_reply(timeout=60), 421, "4.3.2")
    assert c.wait_closed(30)
    c.close()
    idle.close()

    try:
        rc = server.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"tern did not exit within 60 s of SIGTERM:\n{server.log_tail()}")
    assert rc == 0, f"exit status {rc}:\n{server.log_tail()}"

    st = server.store
    assert st.scalar("PRAGMA integrity_check") == "ok"
    assert st.message_with(marker + "-before") is not None
    assert st.message_with(marker + "\r\n") is not None, "250 was given but the message is not in the store"

    # And it starts again on the same data_dir.
    server.start()
    assert server.stats()["outbound"] == 2


def test_log_lines(make_server: ServerFactory) -> None:
    """Every log line is one line in the documented form: UTC time, level, label, the
    logger's metadata (sorted key=value), the module, the message."""
    import re
    server = make_server("log-lines")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0, server.log_tail()
    lines = [line for line in server.log_path.read_text().splitlines() if line and not line.startswith("=====")]
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 (trace|debug|info|notice|warning|error|critical) tern(\.\w+)?:( [\w.]+=\S*)* \[\w+\] \S")
    assert lines, "tern wrote no log lines"
    bad = [line for line in lines if not pattern.match(line)]
    assert not bad, f"log lines not in the expected form: {bad[:3]}"
    listening = [line for line in lines if "SMTP listening" in line]
    assert listening and all("smtp.implicitTLS=" in line and "smtp.listener=" in line for line in listening), listening
    # A clean start and stop reports no trouble.
    trouble = [line for line in lines if re.match(r"^\S+ (warning|error|critical) ", line)]
    assert not trouble, trouble
