"""The HTTP listener's connections with a real `tern serve`: a client that pipelines opens
and never reads the answers is held back (Tern's memory stays bounded), a request trickled
a byte at a time is closed at `http.idle_timeout`, and connections past
`http.max_connections_per_ip` are closed while other addresses are served.

Waits are generous (a loaded 2-core machine); what is asserted is the state seen on the
socket (the server closed it: recv returns b''), never how fast it came."""
from __future__ import annotations

import select
import socket
import threading
import time

from conftest import ServerFactory
from helpers import LOOPBACK, TernServer

# Its token does not verify: the fast path answers 404 and records nothing.
BAD_OPEN = b"GET /o/x HTTP/1.1\r\nHost: t\r\n\r\n"
# Tern's RSS bound with 50 clients pipelining opens and never reading: several times what it
# uses (Benchmarks/RESULTS.md), far below unbounded buffering (~100 MB per such connection).
RSS_BOUND_MB = 300
PIPELINING_CLIENTS = 50


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def connect(server: TernServer, source: str = LOOPBACK, timeout: float = 30, buffers: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if buffers is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffers)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffers)
    s.bind((source, 0))
    s.connect((LOOPBACK, server.http_port))
    return s


def request(s: socket.socket, raw: bytes) -> bytes:
    """Sends one request and reads one response with a Content-Length; returns its status line."""
    s.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed by the server before a response; got {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "closed by the server within a response"
        body += chunk
    return head.split(b"\r\n", 1)[0]


def served(server: TernServer, source: str = LOOPBACK) -> bytes:
    with connect(server, source) as s:
        return request(s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")


def closed_by_server(s: socket.socket, wait: float) -> bool:
    """Whether the server closes `s` within `wait` seconds, sending nothing."""
    readable, _, _ = select.select([s], [], [], wait)
    if not readable:
        return False
    data = s.recv(65536)
    assert data == b"", f"the server answered instead of closing: {data!r}"
    return True


def test_pipelining_clients_that_never_read_are_held_back(make_server: ServerFactory):
    """50 clients send opens as fast as Tern takes them, for 30 s, and never read an answer.
    Tern's RSS must stay under the bound all along (it stops reading from a connection whose
    answers do not go out), and a client that reads its answers is still served."""
    server = make_server("pipelining")
    server.wait_http()
    assert server.proc is not None
    pid = server.proc.pid
    before = peak = rss_mb(pid)

    # Small socket buffers on the clients' side: what the kernel holds for them stays small,
    # so what Tern does with the rest is what is measured.
    clients = [connect(server, buffers=16384) for _ in range(PIPELINING_CLIENTS)]
    for c in clients:
        c.setblocking(False)
    burst = BAD_OPEN * 2048
    sent = 0
    served_during: list[bytes] = []
    stop = threading.Event()

    def normal_client() -> None:
        # Slow under the flood on a debug build: generous timeouts; what counts is being served.
        while not stop.is_set():
            try:
                with connect(server, timeout=120) as s:
                    served_during.append(request(s, BAD_OPEN))
                    served_during.append(request(s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))
            except OSError:
                pass
            time.sleep(0.5)

    normal = threading.Thread(target=normal_client, daemon=True)
    normal.start()
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            progressed = False
            for c in clients:
                try:
                    sent += c.send(burst)
                    progressed = True
                except (BlockingIOError, InterruptedError):
                    pass
            if not progressed:
                time.sleep(0.01)
            peak = max(peak, rss_mb(pid))
            assert peak < RSS_BOUND_MB, f"Tern's RSS reached {peak:.0f} MB (from {before:.0f} MB) with {PIPELINING_CLIENTS} clients not reading"
        # The flood did reach Tern: more than one read (64 KB) per connection.
        assert sent > PIPELINING_CLIENTS * 65536, f"only {sent} bytes sent"
        stop.set()
        # Tern has stopped reading from them: over 5 s, they can hardly send anything more.
        late = 0
        window = time.monotonic()
        while time.monotonic() - window < 5:
            for c in clients:
                try:
                    late += c.send(burst)
                except (BlockingIOError, InterruptedError):
                    pass
            time.sleep(0.01)
        assert late < PIPELINING_CLIENTS * 16384, f"Tern still reads from clients that do not read: {late} bytes taken in 5 s"

        # With the flood's connections still open and full, a client that reads is served, by
        # the fast path and by the router; RSS is watched until it is.
        after: list[bytes] = []

        def served_after() -> None:
            with connect(server, timeout=170) as s:
                after.append(request(s, BAD_OPEN))
                after.append(request(s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))

        last = threading.Thread(target=served_after, daemon=True)
        last.start()
        waited = time.monotonic()
        while last.is_alive() and time.monotonic() - waited < 180:
            peak = max(peak, rss_mb(pid))
            assert peak < RSS_BOUND_MB, f"Tern's RSS reached {peak:.0f} MB (from {before:.0f} MB) after {PIPELINING_CLIENTS} clients flooded it"
            time.sleep(0.2)
        assert after == [b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"], f"a reading client was not served: {after}"
    finally:
        stop.set()
        for c in clients:
            c.close()
    assert peak < RSS_BOUND_MB, f"Tern's RSS reached {peak:.0f} MB"
    assert all(line in (b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK") for line in served_during), served_during
    print(f"RSS {before:.0f} MB before, {peak:.0f} MB at most; {sent / 1e6:.0f} MB of requests sent, {late} bytes in the last 5 s; "
          f"{len(served_during)} answers to the reading client during the flood")


def test_a_request_trickled_a_byte_at_a_time_is_closed_at_the_deadline(make_server: ServerFactory):
    server = make_server("trickle", {"http": {"idle_timeout": 2}})
    server.wait_http()
    for start in (b"GET /o/x HTTP/1.1\r\nX-Slow: ", b"GET /healthz HTTP/1.1\r\nX-Slow: "):
        with connect(server) as s:
            s.sendall(start)
            closed = False
            for _ in range(60):  # a byte a second, for up to a minute
                if closed_by_server(s, 1.0):
                    closed = True
                    break
                s.sendall(b"a")
            assert closed, f"a request starting {start!r} trickled for a minute is still open"


def test_an_idle_connection_is_closed_and_a_busy_one_kept(make_server: ServerFactory):
    server = make_server("idle", {"http": {"idle_timeout": 2}})
    server.wait_http()
    with connect(server) as idle, connect(server) as busy:
        # A request a second keeps a connection open past the timeout, on both paths.
        for i in range(6):
            assert request(busy, BAD_OPEN if i % 2 else b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") in (
                b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK")
            time.sleep(1)
        assert closed_by_server(idle, 30), "an idle connection is still open"


def test_connections_past_the_cap_per_address_are_closed(make_server: ServerFactory):
    # Through the environment, as TERN_HTTP_IDLE_TIMEOUT and TERN_HTTP_MAX_CONNECTIONS would be.
    server = make_server("cap", env={"TERN_HTTP_MAX_CONNECTIONS_PER_IP": "3"})
    server.wait_http()
    held = [connect(server) for _ in range(3)]
    try:
        for s in held:
            assert request(s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") == b"HTTP/1.1 200 OK"
        with connect(server) as fourth:
            assert closed_by_server(fourth, 30), "a fourth connection from 127.0.0.1 was kept"
        # Another address is served meanwhile.
        assert served(server, "127.0.0.2") == b"HTTP/1.1 200 OK"
    finally:
        held.pop().close()
    # With one closed, 127.0.0.1 gets a connection again (once Tern has seen the close).
    deadline = time.monotonic() + 30
    while True:
        try:
            assert served(server) == b"HTTP/1.1 200 OK"
            break
        except (AssertionError, OSError):
            assert time.monotonic() < deadline, "127.0.0.1 is still refused after one of its connections closed"
            time.sleep(0.2)
    for s in held:
        s.close()
