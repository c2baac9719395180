"""Fixtures: the tern binary, servers on free loopback ports, credentials, tools.

Servers are started with `tern serve --config <tmp>/tern.yaml`; credentials are
created with the CLI once the submission port answers; teardown sends SIGTERM
(then SIGKILL). On a failed test the tail of each server's log is printed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from helpers import Credential, TernServer, find_tool, tern_binary

IN_CI = bool(os.environ.get("CI"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _missing(what: str) -> None:
    # scripts/test installs everything; in CI a missing tool is a failure, not a skip.
    if IN_CI:
        pytest.fail(f"{what} is missing (scripts/test should have installed it)")
    pytest.skip(f"{what} is missing (run scripts/test, or install it)")


@pytest.fixture(scope="session")
def tern_bin() -> Path:
    path = tern_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"tern binary not found at {path}: run `swift build` or set TERN_BIN")
    return path


@pytest.fixture(scope="session")
def swaks_bin() -> str:
    p = find_tool("swaks")
    if not p:
        _missing("swaks")
    return p  # type: ignore[return-value]


@pytest.fixture(scope="session")
def smtp_source_bin() -> str:
    p = find_tool("smtp-source")
    if not p:
        _missing("smtp-source (Debian package postfix)")
    return p  # type: ignore[return-value]


class ServerFactory:
    """Starts servers on demand and stops them all at teardown."""

    def __init__(self, binary: Path, root: Path):
        self.binary, self.root, self.servers = binary, root, []

    def __call__(self, name: str = "tern", overrides: dict | None = None, env: dict | None = None,
                 start: bool = True) -> TernServer:
        s = TernServer(self.binary, self.root / f"{name}-{len(self.servers)}", overrides or {}, env or {})
        self.servers.append(s)
        if start:
            s.start()
        return s

    def stop_all(self) -> None:
        for s in self.servers:
            s.stop()

    def report(self) -> str:
        return "\n".join(f"----- {s.workdir} log tail -----\n{s.log_tail(60)}" for s in self.servers)


@pytest.fixture
def make_server(tern_bin: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Function-scoped: `make_server(name, overrides)` -> a running TernServer."""
    f = ServerFactory(tern_bin, tmp_path)
    yield f
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f.report())
    f.stop_all()


@pytest.fixture(scope="session")
def session_factory(tern_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    f = ServerFactory(tern_bin, tmp_path_factory.mktemp("servers"))
    yield f
    f.stop_all()


@pytest.fixture(scope="session")
def auth_server(session_factory: ServerFactory) -> TernServer:
    """A server where only AUTH gets mail in (no network credential)."""
    return session_factory("auth")


@pytest.fixture(scope="session")
def alice(auth_server: TernServer) -> Credential:
    return auth_server.credential_add("alice")


@pytest.fixture(scope="session")
def ip_server(session_factory: ServerFactory) -> TernServer:
    """A server with an IP credential for 127.0.0.0/8: loopback clients submit without AUTH."""
    s = session_factory("ip")
    s.ip_credential = s.credential_add("loopback", networks=["127.0.0.0/8"])  # type: ignore[attr-defined]
    return s


@pytest.fixture(autouse=True)
def _server_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "session_factory" in request.fixturenames:
        try:
            print(request.getfixturevalue("session_factory").report())
        except Exception:  # noqa: BLE001 - best effort diagnostics only
            pass


Factory = Callable[..., TernServer]
