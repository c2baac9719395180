"""Load with Postfix's smtp-source: 2,000 messages over 20 sessions, each
stored exactly once, with one outbound event each, and counted in the stats.
(Benchmarks/accept-rate.sh measures the rate with more.)"""
from __future__ import annotations

import json
import subprocess
import time

from helpers import TernServer

COUNT = 2_000
SESSIONS = 20


def test_smtp_source_load(make_server, smtp_source_bin: str) -> None:  # type: ignore[no-untyped-def]
    server: TernServer = make_server("smtp-source")
    cred = server.credential_add("loopback", networks=["127.0.0.0/8"])
    t0 = time.monotonic()
    p = subprocess.run(
        [smtp_source_bin, "-s", str(SESSIONS), "-m", str(COUNT), "-l", "5000",
         "-f", "a@example.com", "-t", "b@example.net", f"127.0.0.1:{server.submission_port}"],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - t0
    print(f"smtp-source: {COUNT} messages in {elapsed:.1f}s = {COUNT / elapsed:.0f} msg/s (debug build)")
    # smtp-source exits non-zero on the first reply it does not expect.
    assert p.returncode == 0, f"smtp-source exited {p.returncode}: {p.stderr[-2000:]}"

    st = server.store
    assert st.scalar("SELECT count(*) FROM messages") == COUNT
    assert st.scalar("SELECT count(*) FROM recipients") == COUNT
    assert st.scalar("SELECT count(*) FROM events WHERE type = 'outbound'") == COUNT
    # smtp-source writes a unique Message-Id per message: none may be stored twice.
    assert st.scalar("SELECT count(DISTINCT message_id_header) FROM messages") == COUNT
    assert st.scalar("SELECT count(*) FROM messages WHERE message_id_header IS NULL") == 0
    # Every recipient has exactly one outbound event.
    assert st.scalar(
        "SELECT count(*) FROM recipients r WHERE (SELECT count(*) FROM events e "
        "WHERE e.recipient_id = r.id AND e.type = 'outbound') != 1") == 0
    assert st.scalar("SELECT count(*) FROM messages WHERE mail_from != 'a@example.com'") == 0
    assert st.scalar("SELECT count(DISTINCT address) FROM recipients") == 1
    assert st.scalar("SELECT count(*) FROM messages WHERE credential IS NOT 'loopback'") == 0
    assert st.scalar("SELECT min(size) FROM messages") >= 5000
    assert st.scalar(
        "SELECT count(*) FROM messages WHERE lower(CAST(substr(content, 1, 9) AS TEXT)) != 'received:'") == 0

    stats = server.stats()
    assert stats["outbound"] == COUNT, stats
    server.wait_http()
    status, body = server.http("GET", "/api/v1/stats", token=cred.api_key)
    assert status == 200 and json.loads(body)["outbound"] == COUNT, body
