"""The command line of the contract: `python -m server operator create|revoke|rotate ...` and
`... serve`.

These run real subprocesses on a SQLite file of their own (no db_kind parametrisation)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "MTA_URL", "EVENT_BUS_URL", "FEEDBACK_MODE", "PUBLIC_URL"}
    }  # fmt: skip
    env["DATABASE_URL"] = f"sqlite://{tmp_path}/cli.sqlite3"
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # cwd is the tmp dir, so that no stray .env file changes the configuration.
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=tmp_path, env=environment(tmp_path, **env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def create_operator(tmp_path: Path, name: str, *roles: str) -> str:
    flags = [arg for role in roles for arg in ("--role", role)]
    done = cli(tmp_path, "operator", "create", name, *flags)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_operator_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    done = cli(tmp_path, "operator", "create", "alice", "--role", "START_DELIVERIES")
    assert done.returncode == 0, done.stderr
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert last == last.strip() and " " not in last
    assert len(last) >= 32


def test_operator_create_with_a_name_already_taken_fails_and_says_so(tmp_path: Path) -> None:
    create_operator(tmp_path, "alice", "START_DELIVERIES")
    done = cli(tmp_path, "operator", "create", "alice")
    assert done.returncode != 0
    assert "alice" in done.stderr and "already exists" in done.stderr
    assert "operator rotate" in done.stderr  # how to get a new token instead
    # Nothing on stdout: `TOKEN=$(... | tail -n 1)` is empty, never the error message.
    assert done.stdout == ""
    assert "Traceback" not in done.stderr


def test_operator_create_with_an_unknown_role_is_a_usage_error(tmp_path: Path) -> None:
    done = cli(tmp_path, "operator", "create", "bob", "--role", "SUPERUSER")
    assert done.returncode == 2
    assert "invalid choice: 'SUPERUSER'" in done.stderr
    assert "START_DELIVERIES" in done.stderr  # the valid roles are listed


@contextlib.contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[httpx.Client]:
    """`python -m server serve` on the test's database; a client once /health answers. Stops
    it with SIGTERM and checks that it shut down cleanly."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=tmp_path, env=environment(tmp_path, MTA_URL="capture://", **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                assert server.poll() is None, server.communicate()[0]
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            yield http
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=15)[0]
    # uvicorn drains, then raises SIGTERM again so that the exit status tells why it stopped.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output


def me(http: httpx.Client, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = http.post(
        "/graphql", json={"query": "{ me { name roles } }"}, headers=headers
    ).json()
    return body


def refused_within(http: httpx.Client, token: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while me(http, token).get("data"):
        assert time.monotonic() < deadline, "the token still works"
        time.sleep(0.05)
    assert me(http, token)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_finding_4_serve_answers_the_operator_created_until_it_is_rotated_then_revoked(
    tmp_path: Path,
) -> None:
    old = create_operator(tmp_path, "alice", "START_DELIVERIES", "PREPARE_DELIVERIES")
    with serving(tmp_path, TOKEN_CACHE_SECONDS="0.3") as http:
        mine = me(http, old)  # and cached by the server now
        assert mine["data"]["me"]["name"] == "alice", mine
        assert sorted(mine["data"]["me"]["roles"]) == ["PREPARE_DELIVERIES", "START_DELIVERIES"]
        assert me(http, None)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        rotated = cli(tmp_path, "operator", "rotate", " alice ")
        assert rotated.returncode == 0, rotated.stderr
        new = rotated.stdout.rstrip("\n").splitlines()[-1]
        assert len(new) >= 32 and " " not in new and new != old
        refused_within(http, old, 10)
        assert me(http, new)["data"]["me"]["name"] == "alice"

        revoked = cli(tmp_path, "operator", "revoke", "alice")
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked operator 'alice'" in revoked.stdout and new not in revoked.stdout
        refused_within(http, new, 10)

    again = cli(tmp_path, "operator", "revoke", "alice")
    assert again.returncode == 2 and "already revoked" in again.stderr and again.stdout == ""
    rotate_revoked = cli(tmp_path, "operator", "rotate", "alice")
    assert rotate_revoked.returncode == 2 and rotate_revoked.stdout == ""
    assert "was revoked" in rotate_revoked.stderr
    nobody = cli(tmp_path, "operator", "rotate", "bob")
    assert nobody.returncode == 2 and "no operator named 'bob'" in nobody.stderr
    assert "Traceback" not in again.stderr + rotate_revoked.stderr + nobody.stderr


def test_finding_11_operator_create_refuses_an_invisible_character_and_prints_no_token(
    tmp_path: Path,
) -> None:
    done = cli(tmp_path, "operator", "create", "ad\u200ba", "--role", "ADMINISTRATION")
    assert done.returncode == 2
    assert "U+200B (ZERO WIDTH SPACE)" in done.stderr and done.stdout == ""
    too_long = cli(tmp_path, "operator", "create", "x" * 5000)
    assert too_long.returncode == 2 and "at most 100 characters" in too_long.stderr
    assert "Traceback" not in done.stderr + too_long.stderr
