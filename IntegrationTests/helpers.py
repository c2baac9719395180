"""Shared helpers for Tern's integration tests: a running `tern serve`, a raw
SMTP client that shows every reply exactly, and read-only access to the store.

Nothing here builds Tern: the binary comes from $TERN_BIN (scripts/test sets it)
or from `swift build --show-bin-path`.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = float(os.environ.get("TERN_STARTUP_TIMEOUT", "60"))

# The counters that `tern stats --json` and GET /api/v1/stats both return.
COUNTER_KEYS = ("outbound", "sent", "failed", "deferred", "complaints", "opens", "clicks", "unsubscribes", "inbound",
                "unique_opens", "unique_clicks", "human_opens", "human_clicks")


# --------------------------------------------------------------------------- binary


def tern_binary() -> Path:
    """The `tern` executable under test: $TERN_BIN, else the debug build's bin path."""
    env = os.environ.get("TERN_BIN")
    if env:
        return Path(env)
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    out = subprocess.run(
        [swift, "build", "--show-bin-path"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    return Path(out.stdout.strip()) / "tern"


def find_tool(name: str) -> str | None:
    """A tool from PATH or /usr/sbin (smtp-source and smtp-sink live there)."""
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)


# --------------------------------------------------------------------------- ports


_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range (32768+): no clash with client sockets
_HANDED_OUT: set[int] = set()  # never handed out twice in one run: a server may bind its ports seconds later


def free_ports(n: int) -> list[int]:
    """n distinct loopback TCP ports that are free now, chosen below the ephemeral
    range so that outgoing connections cannot take them before tern binds them, and
    never one this process handed out before (to a server that may not have bound it yet).
    A peer that can bind port 0 and say which port it got should do that instead
    (`listening_port`)."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        p = rng.randrange(*_PORT_RANGE)
        if p in ports or p in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, p))
            except OSError:
                continue
        ports.append(p)
    _HANDED_OUT.update(ports)
    return ports


def listening_port(pid: int) -> int | None:
    """The port of the IPv4 TCP socket process `pid` listens on (from /proc), for peers
    started on port 0 that do not print the port they got (smtp-sink)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in table:
        fields = line.split()  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
            return int(fields[1].split(":")[1], 16)
    return None


def start_smtp_sink(args: list[str], *, stdout: Any = subprocess.DEVNULL,
                    timeout: float = 30) -> tuple[subprocess.Popen, int]:
    """`smtp-sink ARGS… 127.0.0.1:0 BACKLOG` (args end with the backlog); its process and
    the port the kernel gave it, once it listens."""
    binary = find_tool("smtp-sink")
    assert binary, "smtp-sink is missing (Debian package postfix)"
    proc = subprocess.Popen([binary, *args[:-1], f"{LOOPBACK}:0", args[-1]],
                            stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while (port := listening_port(proc.pid)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"smtp-sink did not listen (exit status {proc.poll()})")
        time.sleep(0.02)
    return proc, port


# --------------------------------------------------------------------------- YAML


def _yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(d: dict, indent: int = 0) -> str:
    """Block-style YAML for nested dicts / lists of scalars (enough for tern.yaml)."""
    pad = "  " * indent
    out = []
    for key, v in d.items():
        # Route keys such as "*" must be quoted (a bare * is a YAML alias).
        k = key if re.fullmatch(r"[A-Za-z0-9_.-]+", key) else json.dumps(key)
        if isinstance(v, dict):
            out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
        elif isinstance(v, list):
            out.append(f"{pad}{k}:\n" + "".join(f"{pad}  - {_yaml_scalar(x)}\n" for x in v))
        else:
            out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
    return "".join(out)


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- SMTP replies


ENHANCED_RE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")


@dataclass
class Reply:
    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        m = ENHANCED_RE.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    def __str__(self) -> str:
        return " | ".join(f"{self.code} {l}" for l in self.lines)


def assert_reply(reply: Reply, code: int, enhanced: str | None = None, contains: str | None = None) -> Reply:
    assert reply.code == code, f"expected {code} {enhanced or ''}, got: {reply}"
    if enhanced is not None:
        assert reply.enhanced == enhanced, f"expected enhanced code {enhanced}, got: {reply}"
    if contains is not None:
        assert contains.lower() in reply.text.lower(), f"expected {contains!r} in: {reply}"
    return reply


QUEUED_RE = re.compile(r"queued as (\S+)", re.I)


def assert_queued(reply: Reply) -> str:
    """`250 2.0.0 Ok: queued as <ID>`; returns the ID."""
    assert_reply(reply, 250, "2.0.0")
    m = QUEUED_RE.search(reply.text)
    assert m, f"no 'queued as <ID>' in: {reply}"
    return m.group(1)


class ConnectionClosed(Exception):
    pass


def unverified_tls_context() -> ssl.SSLContext:
    """Tern's certificate is self-signed: tests encrypt but do not verify."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SMTPClient:
    """A minimal SMTP client over a raw socket, for exact control of the bytes on
    the wire (pipelining, BDAT, bare LF, garbage) and exact reply checking."""

    def __init__(self, host: str, port: int, *, timeout: float = 15, source_ip: str | None = None,
                 implicit_tls: bool = False, read_greeting: bool = True):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source_ip, 0) if source_ip else None)
        self.buf = b""
        self.extensions: dict[str, str] = {}
        self.tls = False
        if implicit_tls:
            self._wrap_tls()
        self.greeting = self.read_reply() if read_greeting else None

    # -- plumbing
    def _wrap_tls(self) -> None:
        self.sock = unverified_tls_context().wrap_socket(self.sock, server_hostname=self.host)
        self.tls = True

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed(f"connection closed by server (buffer: {self.buf[:200]!r})")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self, timeout: float | None = None) -> Reply:
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        lines: list[str] = []
        while True:
            raw = self._line().decode("utf-8", "replace")
            assert re.match(r"^\d{3}[ -]?", raw), f"malformed reply line: {raw!r}"
            code = int(raw[:3])
            lines.append(raw[4:])
            if len(raw) == 3 or raw[3] == " ":
                return Reply(code, lines)

    def read_replies(self, n: int) -> list[Reply]:
        return [self.read_reply() for _ in range(n)]

    def no_reply_within(self, seconds: float) -> bool:
        """True if no byte arrives within `seconds` (and nothing is buffered)."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        self.buf += chunk
        return False

    def wait_closed(self, timeout: float = 10) -> bool:
        """True once the server closes the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def cmd(self, line: str | bytes) -> Reply:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply()

    # -- SMTP verbs
    def ehlo(self, name: str = "client.test") -> Reply:
        r = self.cmd(f"EHLO {name}")
        assert_reply(r, 250)
        self.extensions = {}
        for l in r.lines[1:]:
            parts = l.split(None, 1)
            if parts:
                self.extensions[parts[0].upper()] = parts[1] if len(parts) > 1 else ""
        return r

    def starttls(self) -> None:
        assert_reply(self.cmd("STARTTLS"), 220)
        assert not self.buf, "server sent bytes after 220 to STARTTLS"
        self._wrap_tls()

    def auth_plain(self, user: str, password: str) -> Reply:
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.cmd(f"AUTH PLAIN {blob}")

    def auth_login(self, user: str, password: str) -> Reply:
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def data(self, message: bytes) -> Reply:
        """DATA with dot-stuffing; returns the reply to the final dot."""
        assert_reply(self.cmd("DATA"), 354)
        self.send(dot_stuff(message) + b".\r\n")
        return self.read_reply()

    def send_message(self, mail_from: str, rcpts: list[str], message: bytes) -> Reply:
        assert_reply(self.cmd(f"MAIL FROM:<{mail_from}>"), 250, "2.1.0")
        for r in rcpts:
            assert_reply(self.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")
        return self.data(message)

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.cmd("QUIT")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()

    def __enter__(self) -> "SMTPClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dot_stuff(message: bytes) -> bytes:
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def make_message(*, subject: str | None = None, message_id: str | None = None, date: bool = True,
                 body: str | bytes = "Hello from the Tern integration tests.\r\n",
                 sender: str = "sender@example.com", to: str = "rcpt@example.net",
                 extra_headers: list[str] | None = None) -> bytes:
    """An RFC 5322 message with CRLF line ends. `message_id=None` and `date=False`
    leave those headers out so Tern must add them."""
    hdrs = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject or 'tern test ' + uuid.uuid4().hex}"]
    if date:
        hdrs.append("Date: Sat, 28 Nov 2026 12:00:00 +0000")
    if message_id:
        hdrs.append(f"Message-ID: <{message_id}>")
    hdrs += extra_headers or []
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


def unique_id(tag: str = "t") -> str:
    return f"{tag}.{uuid.uuid4().hex}@tests.tern"


# --------------------------------------------------------------------------- the store


def strip_angles(s: str | None) -> str | None:
    if s is None:
        return None
    s = s.strip()
    return s[1:-1] if s.startswith("<") and s.endswith(">") else s


class Store:
    """Read-only view of DATA_DIR/tern.sqlite (safe while tern runs: WAL)."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, args).fetchall()

    def scalar(self, sql: str, args: tuple = ()) -> Any:
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def message_with(self, marker: str | bytes) -> dict | None:
        """The one stored message whose content contains `marker` (asserts at most one)."""
        if isinstance(marker, str):
            marker = marker.encode()
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT * FROM messages WHERE instr(CAST(content AS BLOB), ?) > 0", (marker,)
            ).fetchall()
            assert len(rows) <= 1, f"{len(rows)} stored messages contain {marker!r}"
            if not rows:
                return None
            msg = dict(rows[0])
            msg["recipients"] = [dict(r) for r in con.execute(
                "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", (msg["id"],))]
            msg["events"] = [dict(r) for r in con.execute(
                "SELECT * FROM events WHERE message_id = ? ORDER BY id", (msg["id"],))]
            return msg

    def wait_message_with(self, marker: str | bytes, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self.message_with(marker)
            if m is not None:
                return m
            assert time.monotonic() < deadline, f"no stored message contains {marker!r}"
            time.sleep(0.1)


def content_bytes(msg: dict) -> bytes:
    c = msg["content"]
    return c.encode() if isinstance(c, str) else bytes(c)


def header_block(content: bytes) -> list[tuple[str, str]]:
    """(name, unfolded value) pairs of the header section."""
    head = content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            n, v = line.split(":", 1)
            out.append((n.strip(), v.strip()))
    return out


def headers_named(content: bytes, name: str) -> list[str]:
    return [v for n, v in header_block(content) if n.lower() == name.lower()]


# --------------------------------------------------------------------------- the server


@dataclass
class Credential:
    username: str
    password: str
    api_key: str


@dataclass
class TernServer:
    """One `tern serve` on free loopback ports, with its own data_dir and config file."""

    binary: Path
    workdir: Path
    overrides: dict = field(default_factory=dict)
    env_overrides: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "tern-data"
        self.submission_port, self.tls_port, self.mx_port, self.http_port = free_ports(4)
        self.config_path = self.workdir / "tern.yaml"
        self.log_path = self.workdir / "tern.log"
        self.write_config()
        self.store = Store(self.data_dir / "tern.sqlite")
        self._log = None
        self.starts = 0

    # -- config
    def config(self) -> dict:
        base = {
            "data_dir": str(self.data_dir),
            "hostname": "tern.test",
            "smtp": {
                "submission": {
                    "listen": f"{LOOPBACK}:{self.submission_port}",
                    "tls_listen": f"{LOOPBACK}:{self.tls_port}",
                    "allow_insecure_auth": False,
                },
                "mx": {"listen": f"{LOOPBACK}:{self.mx_port}"},
            },
            "http": {
                "listen": f"{LOOPBACK}:{self.http_port}",
                "public_url": f"http://{LOOPBACK}:{self.http_port}",
            },
            # Tests never deliver to a real MX: delivery is off unless a test turns it on
            # with routes or name servers of its own on loopback.
            "delivery": {"enabled": False, "dns_servers": [f"{LOOPBACK}:9"]},
        }
        return deep_merge(base, self.overrides)

    def write_config(self) -> None:
        self.config_path.write_text(to_yaml(self.config()))

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
        env.update(self.env_overrides)
        return env

    # -- CLI
    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), *args, "--config", str(self.config_path)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env(),
                           cwd=self.workdir, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        return p

    def cli_json(self, *args: str) -> Any:
        p = self.cli(*args, "--json")
        return parse_json_output(p.stdout)

    def credential_add(self, name: str, networks: list[str] | None = None, wait: bool = True) -> Credential:
        """`tern credential add`; with a running server, waits until the server sees it
        (the server caches credentials for a moment)."""
        args = ["credential", "add", name]
        for n in networks or []:
            args += ["--network", n]
        d = self.cli_json(*args)
        cred = Credential(d["username"], d["password"], d["api_key"])
        if wait and self.running():
            self.wait_credential(cred, by_network=bool(networks))
        return cred

    def wait_credential(self, cred: Credential, by_network: bool = False, present: bool = True,
                        timeout: float = 10) -> None:
        """Until AUTH with `cred` (or, by_network, MAIL without AUTH) succeeds — or,
        present=False, fails."""
        deadline = time.monotonic() + timeout
        while True:
            with self.client() as c:
                c.ehlo()
                if by_network:
                    ok = c.cmd("MAIL FROM:<probe@example.com>").code == 250
                else:
                    c.starttls()
                    c.ehlo()
                    ok = c.auth_plain(cred.username, cred.password).code == 235
                c.quit()
            if ok == present:
                return
            assert time.monotonic() < deadline, f"credential {cred.username} still {'absent' if present else 'present'}"
            time.sleep(0.2)

    def stats(self, **params: str) -> dict:
        args = ["stats"]
        for k, v in params.items():
            args += [f"--{k}", v]
        return self.cli_json(*args)

    # -- process
    def start(self, wait: bool = True) -> None:
        """Starts `tern serve`. On the first start, ports another process took meanwhile
        are replaced by free ones and tern is started again (later starts keep the ports)."""
        for attempt in range(3):
            self._spawn()
            if not wait:
                return
            try:
                self.wait_ready()
                return
            except AssertionError:
                if self.starts > 1 + attempt or attempt == 2 or not self._bind_failed():
                    raise
            self.submission_port, self.tls_port, self.mx_port, self.http_port = free_ports(4)
            self.write_config()

    def _bind_failed(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and "Address already in use" in self.log_tail(20)

    def _spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._close_log()
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== start {self.starts} =====\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config_path)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env(), cwd=self.workdir,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until the submission port answers with a 220 greeting."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"tern serve exited {self.proc.returncode} during start-up:\n{self.log_tail()}")
            try:
                with SMTPClient(LOOPBACK, self.submission_port, timeout=5) as c:
                    if c.greeting.code == 220:
                        c.quit()
                        return
                    last = AssertionError(f"greeting: {c.greeting}")
            except (OSError, ConnectionClosed, AssertionError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"tern did not answer on {self.submission_port} in {timeout}s ({last}):\n{self.log_tail()}")

    def wait_http(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"HTTP {self.http_port} not answering:\n{self.log_tail()}"
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- clients
    def client(self, **kw: Any) -> SMTPClient:
        return SMTPClient(LOOPBACK, self.submission_port, **kw)

    def tls_client(self, **kw: Any) -> SMTPClient:
        return SMTPClient(LOOPBACK, self.tls_port, implicit_tls=True, **kw)

    def authed_client(self, cred: Credential, **kw: Any) -> SMTPClient:
        c = self.client(**kw)
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert_reply(c.auth_plain(cred.username, cred.password), 235, "2.7.0")
        return c

    def http(self, method: str, path: str, token: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}", method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def parse_json_output(stdout: str) -> Any:
    """The JSON document in a CLI's stdout (tolerates stray lines around it)."""
    s = stdout.strip()
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    starts = [i for i in (s.find("{"), s.find("[")) if i >= 0]
    assert starts, f"no JSON in output: {stdout!r}"
    start = min(starts)
    end = max(s.rfind("}"), s.rfind("]"))
    return json.loads(s[start:end + 1])
