"""The HTTP API against its contract (issue 22): schemathesis generates requests from the
OpenAPI document that `tern serve` serves at /api/v1/openapi.json and checks every answer —
no 5xx, only documented status codes, content types, headers and bodies — once with a
tenant's key and once with an operator's, against a store that holds mail of two tenants
(sent through SMTP) and inbound mail. The examples per operation are bounded (100, with a
fixed seed: about 30 s in all on two cores); TERN_SCHEMATHESIS_EXAMPLES and
TERN_SCHEMATHESIS_SEED change them. On a failure, schemathesis prints a curl command that
reproduces each problem; requests.har in the test's tmp folder has every exchange."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import IN_CI, ServerFactory
from helpers import LOOPBACK, TernServer, make_message
from test_inbound import to_mx
from test_tenants import add_tenant, api_ok, smtplib_send

EXAMPLES = int(os.environ.get("TERN_SCHEMATHESIS_EXAMPLES", "100"))
SEED = os.environ.get("TERN_SCHEMATHESIS_SEED", "22")
# Checks that need links between operations (stateful) have nothing to follow yet.
EXCLUDED_CHECKS = "use_after_free,ensure_resource_availability"
# Schema-valid requests that Tern refuses with 400 for reasons a schema cannot say: a period
# whose `from` is after its `to`; and, for an operator, a `tenant` that names no tenant.
ACCEPTED = ["2xx", "401", "403", "404", "429"]
# Half the time `tenant` and `id` are real ones (bound to dictionaries), so that 200s with
# bodies are checked too, not only the errors random values get.
CONFIG = """
[dictionaries.tenants]
values = {tenants}

[dictionaries.messages]
values = {messages}

[parameters]
"query.tenant" = {{ dictionary = "tenants", probability = 0.5 }}
"path.id" = {{ dictionary = "messages", probability = 0.5 }}

[[operations]]
include-path = "/api/v1/stats"
checks.positive_data_acceptance.expected-statuses = {stats}

[checks.positive_data_acceptance]
expected-statuses = {default}
"""


def schemathesis_cli() -> list[str]:
    """The schemathesis command, run by this Python (pip may put its script off PATH)."""
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("schemathesis is missing (scripts/test should have installed it)")
        pytest.skip("schemathesis is missing (pip install schemathesis)")
    return [sys.executable, "-m", "schemathesis.cli"]


@pytest.fixture(scope="module")
def world(tern_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server with two tenants' mail and inbound mail, and keys: alpha's, bravo's, an operator's."""
    factory = ServerFactory(tern_bin, tmp_path_factory.mktemp("openapi"))
    # schemathesis tries wrong keys on purpose: do not let that throttle the right ones.
    server = factory("openapi", {"auth": {"max_failures_per_ip": 1_000_000, "max_failures_per_user": 1_000_000}},
                     start=False)
    alpha = add_tenant(server, "alpha", "alpha.test")
    bravo = add_tenant(server, "bravo", "bravo.test")
    d = server.cli_json("credential", "add", "ops", "--operator")
    operator_key = d["api_key"]
    server.start()
    server.wait_http()
    ids = [smtplib_send(server, alpha, "news@alpha.test", f"r{i}@y.test",
                        make_message(subject=f"m{i}", sender="news@alpha.test", to=f"r{i}@y.test")) for i in range(2)]
    ids.append(smtplib_send(server, bravo, "news@bravo.test", "r@y.test",
                            make_message(subject="b", sender="news@bravo.test", to="r@y.test")))
    for domain in ("alpha.test", "bravo.test"):
        to_mx(server, [f"help@{domain}"], make_message(subject="inbound", to=f"help@{domain}"), mail_from="user@y.test")
    yield server, {"tenant": alpha.api_key, "bravo": bravo.api_key, "operator": operator_key}, ids
    factory.stop_all()


def run_schemathesis(server: TernServer, key: str, operator: bool, ids: list[str], folder: Path) -> subprocess.CompletedProcess:
    url = f"http://{LOOPBACK}:{server.http_port}"
    config = folder / "schemathesis.toml"
    default = ACCEPTED + ["400"] if operator else ACCEPTED
    config.write_text(CONFIG.format(
        tenants=json.dumps(["alpha", "bravo"] if operator else ["alpha"]), messages=json.dumps(ids),
        stats=json.dumps(ACCEPTED + ["400"]), default=json.dumps(default)))
    cmd = [*schemathesis_cli(), "--config-file", str(config), "run", f"{url}/api/v1/openapi.json", "--url", url,
           "--header", f"Authorization: Bearer {key}",
           "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
           "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES), "--seed", SEED,
           "--workers", "1", "--request-timeout", "10", "--no-color",
           "--report", "junit,har", "--report-junit-path", str(folder / "junit.xml"),
           "--report-har-path", str(folder / "requests.har")]
    started = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, cwd=folder)
    print(f"schemathesis ({time.monotonic() - started:.1f} s): {' '.join(cmd[2:6])} …\n{p.stdout[-6000:]}\n{p.stderr[-2000:]}")
    return p


@pytest.mark.parametrize("who", ["tenant", "operator"])
def test_api_conforms_to_its_document(world, who: str, tmp_path: Path) -> None:
    server, keys, ids = world
    # The data is there for the key to find (so that 200s with bodies get checked, not only errors).
    assert api_ok(server, f"/api/v1/messages/{ids[0]}", keys[who])["id"] == ids[0]
    p = run_schemathesis(server, keys[who], who == "operator", ids, tmp_path)
    assert p.returncode == 0, f"schemathesis found problems with the {who} key (see the output above)"


def test_document_is_served_without_a_key(world) -> None:
    server, _, _ = world
    status, body = server.http("GET", "/api/v1/openapi.json")
    assert status == 200
    document = json.loads(body)
    assert document["openapi"].startswith("3.1.")
    assert {"/api/v1/stats", "/api/v1/messages/{id}", "/api/v1/inbound"} <= set(document["paths"])


def test_errors_are_problem_documents(world) -> None:
    """A few errors by hand, with the fields a client switches on."""
    server, keys, ids = world
    cases = [
        ("/api/v1/stats", None, 401, "missing_api_key"),
        ("/api/v1/stats", "tern_nonsense", 401, "invalid_api_key"),
        ("/api/v1/stats?tenant=bravo", keys["tenant"], 403, "forbidden_tenant"),
        ("/api/v1/stats?tenant=nosuch", keys["operator"], 400, "unknown_tenant"),
        ("/api/v1/stats?from=yesterday", keys["tenant"], 400, "invalid_parameter"),
        (f"/api/v1/messages/{ids[2]}", keys["tenant"], 404, "not_found"),
        ("/api/v1/nosuch", keys["tenant"], 404, "not_found"),
    ]
    for path, key, status, code in cases:
        req = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}{path}")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError(f"{path}: no error")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            assert e.code == status and e.headers["Content-Type"] == "application/problem+json", (path, e.code)
            assert body["code"] == code and body["status"] == status and body["instance"] == path.split("?")[0], body
            assert body["type"] == "about:blank" and body["title"] and body["detail"], body
            if code == "invalid_parameter":
                assert body["errors"] == [{"field": "from", "code": "invalid_date", "detail": body["errors"][0]["detail"]}]
