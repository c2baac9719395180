"""`tern queue` (list, retry, drop) and `tern suppression` (add, list, remove) on a
running server's store. Delivery is not running yet, so every accepted recipient
waits in the queue."""
from __future__ import annotations

import json
import uuid

from conftest import ServerFactory
from helpers import SMTPClient, assert_queued, make_message


def test_queue_lists_retries_and_drops(make_server: ServerFactory):
    server = make_server("queue")
    server.credential_add("loop", networks=["127.0.0.0/8"])
    marker = uuid.uuid4().hex
    with SMTPClient("127.0.0.1", server.submission_port) as c:
        c.ehlo()
        queue_id = assert_queued(c.send_message(
            "from@example.com", ["one@example.net", "two@example.org"], make_message(subject=marker)))
        c.quit()

    entries = json.loads(server.cli("queue", "list", "--json").stdout)
    mine = [e for e in entries if e["message_id"] == queue_id]
    assert sorted(e["address"] for e in mine) == ["one@example.net", "two@example.org"]
    assert all(e["mail_from"] == "from@example.com" and e["attempts"] == 0 for e in mine)
    assert queue_id in server.cli("queue").stdout  # the default subcommand lists

    # Retry by message id makes both due now.
    assert "2 recipient(s) due now" in server.cli("queue", "retry", queue_id).stdout

    # Drop one recipient: it leaves the queue as failed, the other stays.
    first = next(e for e in mine if e["address"] == "one@example.net")
    assert "1 recipient(s) dropped" in server.cli("queue", "drop", first["recipient_id"]).stdout
    left = [e for e in json.loads(server.cli("queue", "list", "--json").stdout) if e["message_id"] == queue_id]
    assert [e["address"] for e in left] == ["two@example.org"]
    stats = server.stats()
    assert stats["failed"] == 1 and stats["outbound"] == 2 and stats["sent"] == 0

    # Unknown and malformed ids are clear errors.
    missing = server.cli("queue", "drop", first["recipient_id"], check=False)
    assert missing.returncode != 0 and "nothing queued" in missing.stderr
    bad = server.cli("queue", "retry", "not-an-id", check=False)
    assert bad.returncode != 0 and "16 hex digits" in bad.stderr


def test_suppression_add_list_remove(make_server: ServerFactory):
    server = make_server("suppression", start=False)
    assert "suppressed bounce@example.net" in server.cli("suppression", "add", "Bounce@Example.NET", "--reason", "hard bounce").stdout
    listed = json.loads(server.cli("suppression", "list", "--json").stdout)
    assert [(s["address"], s["reason"]) for s in listed] == [("bounce@example.net", "hard bounce")]
    assert "bounce@example.net" in server.cli("suppression", "list").stdout
    server.cli("suppression", "remove", "bounce@example.net")
    assert json.loads(server.cli("suppression", "list", "--json").stdout) == []
    again = server.cli("suppression", "remove", "bounce@example.net", check=False)
    assert again.returncode != 0 and "not suppressed" in again.stderr
    bad = server.cli("suppression", "add", "not an address", check=False)
    assert bad.returncode != 0
