"""Abuse of the API over a real socket: a storm of wrong keys beside a real caller, against
`forewarn api` in its own process (not TestClient, whose requests never queue for a worker
thread or a pooled connection as real ones do; not a thread of the test process either,
whose 64 storming threads would share its interpreter lock).

The figures each run measured are printed (`pytest -s` shows them) and kept in
test-output/<test>/storm.json.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forewarn.settings import Settings
from tests.conftest import env_for, wait_for

STORMERS = 64  # concurrent clients sending wrong keys
STORM_SECONDS = 4.0
REAL_CALLER_LIMIT = 2.0  # seconds: the bound for a real caller's answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def server(settings: Settings, request: pytest.FixtureRequest, output_dir: Path) -> Iterator[str]:
    """`forewarn api` on a free port, with the default pool of 8 connections."""
    overrides = getattr(request, "param", {})
    port = _free_port()
    env = env_for(settings.with_overrides(**overrides, api_host="127.0.0.1", api_port=port))
    with (output_dir / "api.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api"], env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _up(url), timeout=60, what="the API to serve")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _storm(url: str, stop: threading.Event, statuses: Counter[str], lock: threading.Lock) -> None:
    """Wrong keys, one request after another, until `stop`."""
    n = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            n += 1
            try:
                r = client.get("/api/v1/tickets", headers={"X-API-Key": f"fw_wrong{id(stop)}{n}"})
                status = str(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
            except httpx.HTTPError as exc:
                status = f"error {type(exc).__name__}"
            with lock:
                statuses[status] += 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "server",
    [
        pytest.param({}, id="throttled"),
        # No throttle: every wrong key is looked up in the database, and still no 5xx.
        pytest.param({"api_auth_failures": 10**9}, id="every-key-looked-up"),
    ],
    indirect=True,
)
def test_wrong_keys_do_not_stall_a_real_caller(
    server: str, keys: dict[str, dict[str, str]], output_dir: Path
) -> None:
    agent = keys["agent"]
    with httpx.Client(base_url=server, timeout=30) as caller:
        assert caller.get("/api/v1/keys/me", headers=agent).status_code == 200
        stop = threading.Event()
        statuses: Counter[str] = Counter()
        lock = threading.Lock()
        threads = [
            threading.Thread(target=_storm, args=(server, stop, statuses, lock), daemon=True)
            for _ in range(STORMERS)
        ]
        for t in threads:
            t.start()
        answers: list[tuple[int, float]] = []
        deadline = time.monotonic() + STORM_SECONDS
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = caller.get("/api/v1/tickets", headers=agent)
            answers.append((r.status_code, time.perf_counter() - started))
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    figures = {
        "stormers": STORMERS,
        "wrong_key_answers": dict(statuses),
        "real_calls": len(answers),
        "real_slowest_seconds": round(max(s for _, s in answers), 3),
        "real_median_seconds": round(sorted(s for _, s in answers)[len(answers) // 2], 3),
    }
    print(json.dumps(figures))
    (output_dir / "storm.json").write_text(json.dumps(figures, indent=2))
    assert sum(statuses.values()) > STORMERS
    assert set(statuses) <= {"401", "429"}, statuses
    assert {code for code, _ in answers} == {200}
    assert figures["real_slowest_seconds"] < REAL_CALLER_LIMIT


def test_a_throttled_address_is_told_when_to_retry(
    settings: Settings, keys: dict[str, dict[str, str]]
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(settings.with_overrides(api_auth_failures=3, api_auth_window_seconds=60))
    with TestClient(app) as client:
        assert client.get("/api/v1/keys/me", headers=keys["viewer"]).status_code == 200
        codes = [
            client.get("/api/v1/tickets", headers={"X-API-Key": f"fw_guess{i}"}).status_code
            for i in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        throttled = client.get("/api/v1/tickets", headers={"X-API-Key": "fw_another"})
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # A key that worked from here a moment ago still does: the throttle is for guesses.
        assert client.get("/api/v1/tickets", headers=keys["viewer"]).status_code == 200
        # A key never seen before is throttled even if it is good: it cannot be told apart.
        assert client.get("/api/v1/keys/me", headers=keys["agent"]).status_code == 429
