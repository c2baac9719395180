"""A full disk refuses new mail with a temporary error and loses nothing acknowledged.

The data folder lives on a small tmpfs (root can mount one here and in CI). Messages
are sent until the store cannot write: that reply must be 452 4.3.1 (try later), never
250. Every message that got 250 is in the store, the server keeps answering, and once
the disk has room again (remount larger) a new message is accepted.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import IN_CI, ServerFactory
from helpers import SMTPClient, Store, assert_queued, assert_reply, make_message, strip_angles

TMPFS_MB = 3


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    # In CI a test that cannot run fails, as a missing peer does.
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("mounting a tmpfs needs root (run CI as root)")
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs: {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_gives_452_and_keeps_every_acknowledged_message(make_server: ServerFactory, small_disk: Path):
    server = make_server("fulldisk", {"data_dir": str(small_disk / "tern-data")}, start=False)
    server.store = Store(small_disk / "tern-data" / "tern.sqlite")
    server.start()
    server.credential_add("loop", networks=["127.0.0.0/8"])
    body = ("x" * 76 + "\r\n") * 2600  # about 200 KB
    acked: list[str] = []
    refusal = None
    with SMTPClient("127.0.0.1", server.submission_port, timeout=30) as c:
        c.ehlo()
        for n in range(TMPFS_MB * 10):
            mid = f"full.{n}.{uuid.uuid4().hex}@tests.tern"
            reply = c.send_message("a@example.com", ["b@example.net"], make_message(message_id=mid, body=body))
            if reply.code == 250:
                acked.append(mid)
                continue
            refusal = reply
            break
        assert refusal is not None, "the 3 MB disk never filled up"
        assert_reply(refusal, 452, "4.3.1")
        assert acked, "nothing fitted on the disk at all"
        # The session goes on: a small command still works.
        assert_reply(c.cmd("NOOP"), 250)
        c.quit()

    # Every acknowledged message is stored, exactly once; nothing else is.
    stored = [strip_angles(r[0]) for r in server.store.query("SELECT message_id_header FROM messages")]
    assert sorted(stored) == sorted(acked)

    # Room again: the same running server accepts mail.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    with SMTPClient("127.0.0.1", server.submission_port, timeout=30) as c:
        c.ehlo()
        assert_queued(c.send_message("a@example.com", ["b@example.net"], make_message(body=body)))
        c.quit()
    assert server.stats()["outbound"] == len(acked) + 1
