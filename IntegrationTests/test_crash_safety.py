"""Durability: a 250 after the final dot means the message is on disk.

Concurrent SMTP sessions record the Message-ID of every message that got 250;
smtp-source adds load; `kill -9` lands in the middle; after a restart on the
same data_dir every acknowledged message is in the store exactly once.
"""
from __future__ import annotations

import collections
import signal
import subprocess
import threading
import time
import uuid

from conftest import ServerFactory
from helpers import (
    QUEUED_RE,
    ConnectionClosed,
    SMTPClient,
    TernServer,
    assert_queued,
    assert_reply,
    make_message,
    strip_angles,
)

THREADS = 6
PER_CONNECTION = 15
MIN_ACKED = 200
MAX_LOAD_SECONDS = 20


class Loader:
    def __init__(self, server: TernServer):
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[str] = []      # got 250 after the final dot
        self.in_flight: list[str] = []  # the dot was sent, no reply seen
        self.refused: list[str] = []    # got a non-250 reply
        self.errors: list[str] = []

    def worker(self, n: int) -> None:
        while not self.stop.is_set():
            try:
                c = SMTPClient("127.0.0.1", self.server.submission_port, timeout=10)
            except (OSError, ConnectionClosed, AssertionError):  # refused, or closed before the greeting
                time.sleep(0.05)
                continue
            try:
                if c.greeting.code != 220:
                    continue
                c.ehlo(f"loader{n}.test")
                for _ in range(PER_CONNECTION):
                    if self.stop.is_set():
                        break
                    mid = f"crash.{n}.{uuid.uuid4().hex}@tests.tern"
                    assert_reply(c.cmd("MAIL FROM:<load@example.com>"), 250)
                    assert_reply(c.cmd(f"RCPT TO:<r{n}@example.net>"), 250)
                    assert_reply(c.cmd("DATA"), 354)
                    c.send(make_message(message_id=mid, body=("x" * 76 + "\r\n") * 26) + b".\r\n")
                    with self.lock:
                        self.in_flight.append(mid)
                    r = c.read_reply()
                    with self.lock:
                        self.in_flight.remove(mid)
                        if r.code == 250 and QUEUED_RE.search(r.text):
                            self.acked.append(mid)
                        else:
                            self.refused.append(mid)
                c.quit()
            except (ConnectionClosed, OSError, AssertionError) as e:
                with self.lock:
                    self.errors.append(repr(e)[:200])
            finally:
                c.close()


def test_kill9_loses_no_acknowledged_message(make_server: ServerFactory, smtp_source_bin: str) -> None:
    server = make_server("crash")
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    loader = Loader(server)
    threads = [threading.Thread(target=loader.worker, args=(i,), daemon=True) for i in range(THREADS)]
    source = subprocess.Popen(
        [smtp_source_bin, "-s", "8", "-m", "1000000", "-l", "3000",
         "-f", "a@example.com", "-t", "b@example.net", f"127.0.0.1:{server.submission_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    try:
        for t in threads:
            t.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < MAX_LOAD_SECONDS:
            with loader.lock:
                if len(loader.acked) >= MIN_ACKED and time.monotonic() - t0 >= 2:
                    break
            assert server.running(), f"tern died under load:\n{server.log_tail()}"
            time.sleep(0.05)
        with loader.lock:
            acked_at_kill = len(loader.acked)
        server.kill9()  # in the middle: loaders and smtp-source are mid-transaction
        time.sleep(1)
        loader.stop.set()
        for t in threads:
            t.join(30)
    finally:
        loader.stop.set()
        if source.poll() is None:
            source.send_signal(signal.SIGKILL)
        source.wait(10)

    assert acked_at_kill >= 20, f"only {acked_at_kill} messages acknowledged before the kill: {loader.errors[:5]}"
    acked = set(loader.acked)
    assert len(acked) == len(loader.acked)

    # Restart on the same data_dir (and the same ports).
    server.start()
    st = server.store
    assert st.scalar("PRAGMA integrity_check") == "ok"
    stored = collections.Counter(strip_angles(m) for (m,) in st.query("SELECT message_id_header FROM messages"))
    missing = [m for m in acked if stored[m] == 0]
    twice = [m for m in acked if stored[m] > 1]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages lost, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} acknowledged messages stored twice, e.g. {twice[:3]}"
    dup = [m for m, n in stored.items() if n > 1]
    assert not dup, f"Message-IDs stored more than once: {dup[:5]}"
    # Message, recipients and outbound events were committed together.
    assert st.scalar("SELECT count(*) FROM messages m WHERE NOT EXISTS "
                     "(SELECT 1 FROM recipients r WHERE r.message_id = m.id)") == 0
    assert st.scalar("SELECT count(*) FROM recipients r WHERE (SELECT count(*) FROM events e "
                     "WHERE e.recipient_id = r.id AND e.type = 'outbound') != 1") == 0
    total_rcpts = st.scalar("SELECT count(*) FROM recipients")
    print(f"acked={len(acked)} (at kill {acked_at_kill}) in-flight={len(loader.in_flight)} "
          f"stored={sum(stored.values())} recipients={total_rcpts}")

    # The restarted server works and counts what survived.
    with server.client() as c:
        c.ehlo()
        assert_reply(c.cmd("MAIL FROM:<after@example.com>"), 250)
        assert_reply(c.cmd("RCPT TO:<restart@example.net>"), 250)
        assert_queued(c.data(make_message()))
        c.quit()
    assert server.stats()["outbound"] == total_rcpts + 1
