"""The command line of the contract: `python -m server operator create ...` and `... serve`.

These run real subprocesses on a SQLite file of their own (no db_kind parametrisation)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


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
    assert "Traceback" not in done.stderr


def test_operator_create_with_an_unknown_role_is_a_usage_error(tmp_path: Path) -> None:
    done = cli(tmp_path, "operator", "create", "bob", "--role", "SUPERUSER")
    assert done.returncode == 2
    assert "invalid choice: 'SUPERUSER'" in done.stderr
    assert "START_DELIVERIES" in done.stderr  # the valid roles are listed


def test_serve_answers_with_the_operator_created_on_the_command_line(tmp_path: Path) -> None:
    token = create_operator(tmp_path, "alice", "START_DELIVERIES", "PREPARE_DELIVERIES")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=tmp_path, env=environment(tmp_path, MTA_URL="capture://"),
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
            me = http.post(
                "/graphql",
                json={"query": "{ me { name roles } }"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            anonymous = http.post("/graphql", json={"query": "{ me { name } }"}).json()
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=15)[0]
    assert me["data"]["me"]["name"] == "alice", me
    assert sorted(me["data"]["me"]["roles"]) == ["PREPARE_DELIVERIES", "START_DELIVERIES"]
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # uvicorn drains, then raises SIGTERM again so that the exit status tells why it stopped.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output
