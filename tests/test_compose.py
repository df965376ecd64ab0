"""The compose file's scale profile: a second ingester, scorer and responder on the shipped
image, each with the same least-privilege role, secrets and broker listener as the first
(the machine has no ``docker compose`` to run ``config``, so the YAML is read as Compose
reads it: anchors and merge keys resolved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """The compose file's services."""
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return dict(loaded["services"])


@pytest.mark.parametrize(
    ("base", "second", "role"),
    [
        pytest.param("ingest", "ingest-2", "ingester", id="ingest"),
        pytest.param("score", "score-2", "scorer", id="score"),
        pytest.param("respond", "respond-2", "responder", id="respond"),
    ],
)
def test_the_scale_profile_runs_a_second_of_each_service_as_securely(
    services: dict[str, Any], base: str, second: str, role: str
) -> None:
    first, other = services[base], services[second]
    assert "profiles" not in first  # the first runs always; the profile adds the second
    assert other["profiles"] == ["scale"]
    assert other["image"] == first["image"] == "forewarn:local"
    assert other["command"] == first["command"]
    env, env2 = first["environment"], other["environment"]
    assert env2["FOREWARN_DATABASE_URL"] == env["FOREWARN_DATABASE_URL"]
    assert env2["FOREWARN_DATABASE_URL"].startswith(f"postgresql://forewarn_{role}@")
    assert (
        env2["PGPASSWORD"]
        == env["PGPASSWORD"]
        == f"${{DB_{role.upper()}_PASSWORD:?set DB_{role.upper()}_PASSWORD}}"
    )
    for key in ("FOREWARN_MQTT_URL", "FOREWARN_MQTT_PASSWORD", "FOREWARN_TARGET_KEYS"):
        assert env2[key] == env[key]
    assert env2["FOREWARN_AUTO_REGISTER"] == "false"
    assert other["depends_on"] == first["depends_on"]
    assert other["restart"] == "unless-stopped"
    assert "ports" not in other  # nothing published on the host


def test_the_two_ingesters_have_their_own_mqtt_sessions(services: dict[str, Any]) -> None:
    ids = {services[s]["environment"]["FOREWARN_INGEST_CLIENT_ID"] for s in ("ingest", "ingest-2")}
    assert len(ids) == 2
    assert services["ingest-2"]["healthcheck"] == services["ingest"]["healthcheck"]
