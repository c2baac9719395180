"""Configuration: a list of listen addresses, and TERN_* environment overrides."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from conftest import ServerFactory
from helpers import SMTPClient, assert_queued, assert_reply, free_ports, make_message


def test_env_overrides(make_server: ServerFactory) -> None:
    (http_port,) = free_ports(1)
    server = make_server("env", start=False)
    server.env_overrides = {
        "TERN_SMTP_LIMITS_MAX_RECIPIENTS": "2",
        "TERN_SMTP_LIMITS_MAX_MESSAGE_SIZE": "12345",
        "TERN_HTTP_LISTEN": f"127.0.0.1:{http_port}",
    }
    server.http_port = http_port
    server.start()
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    server.wait_http()
    with server.client() as c:
        c.ehlo()
        assert c.extensions.get("SIZE") == "12345", c.extensions
        assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250, "2.1.0")
        assert_reply(c.cmd("RCPT TO:<a@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<b@example.net>"), 250, "2.1.5")
        assert_reply(c.cmd("RCPT TO:<c@example.net>"), 452, "4.5.3")
        c.quit()


def test_listen_list(make_server: ServerFactory) -> None:
    extra_a, extra_b = free_ports(2)
    server = make_server("listen-list", start=False)
    server.overrides = {"smtp": {"submission": {"listen": [
        f"127.0.0.1:{server.submission_port}", f"127.0.0.1:{extra_a}", f"127.0.0.1:{extra_b}"]}}}
    server.write_config()
    server.start()
    server.credential_add("loopback", networks=["127.0.0.0/8"])
    for port in (server.submission_port, extra_a, extra_b):
        with SMTPClient("127.0.0.1", port) as c:
            assert_reply(c.greeting, 220)
            c.ehlo()
            assert_reply(c.cmd("MAIL FROM:<s@example.com>"), 250)
            assert_reply(c.cmd("RCPT TO:<r@example.net>"), 250)
            assert_queued(c.data(make_message()))
            c.quit()


def test_bad_config_and_busy_port_exit_nonzero(make_server: ServerFactory) -> None:
    server = make_server("bad-config", start=False)
    server.overrides = {"smtp": {"limits": {"max_recipeints": 5}}}  # misspelt key
    server.write_config()
    p = subprocess.run([str(server.binary), "serve", "--config", str(server.config_path)],
                       capture_output=True, text=True, timeout=60, env=server.env(), stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "max_recipeints" in p.stderr, p.stderr[-2000:]

    server.overrides = {"smtp": {"limits": {"max_recipients": "many"}}}
    server.write_config()
    p = subprocess.run([str(server.binary), "serve", "--config", str(server.config_path)],
                       capture_output=True, text=True, timeout=60, env=server.env(), stdin=subprocess.DEVNULL)
    assert p.returncode != 0 and "max_recipients" in p.stderr, p.stderr[-2000:]

    # The submission port is taken: serve must fail, not run without a listener.
    server.overrides = {}
    server.write_config()
    with socket.socket() as s:
        s.bind(("127.0.0.1", server.submission_port))
        s.listen(1)
        p = subprocess.run([str(server.binary), "serve", "--config", str(server.config_path)],
                           capture_output=True, text=True, timeout=60, env=server.env(), stdin=subprocess.DEVNULL)
    assert p.returncode != 0, p.stderr[-2000:]


def _event_loop_threads(pid: int) -> int:
    """NIO's event-loop threads in the process (named `NIO-ELT-<group>-#<loop>`)."""
    return sum(1 for task in Path(f"/proc/{pid}/task").iterdir()
               if (task / "comm").read_text().startswith("NIO-ELT-"))


def test_http_event_loops(make_server: ServerFactory) -> None:
    """`http.event_loops` sets the HTTP server's own loops: three more threads at 4 than at 1."""
    counts = {}
    for loops in (1, 4):
        server = make_server(f"http-loops-{loops}", start=False)
        server.overrides = {"http": {"event_loops": loops}}
        server.write_config()
        server.start()
        server.wait_http()
        assert server.proc is not None
        counts[loops] = _event_loop_threads(server.proc.pid)
        assert f"(event loops: {loops})" in server.log_tail(200), server.log_tail()
        server.stop()
    assert counts[4] - counts[1] == 3, counts

    server = make_server("http-loops-0", start=False)
    server.overrides = {"http": {"event_loops": 0}}
    server.write_config()
    p = server.cli("serve", check=False)
    assert p.returncode != 0 and "http.event_loops" in p.stderr, p.stderr[-2000:]
