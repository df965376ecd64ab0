"""/api/v1/kpis over HTTP: the same figures as the flows, keys required, periods checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.kpis import flows
from api.kpis.schemas import KpiReportOut, KpiSeriesOut
from api.kpis.types import Bucket, Period
from forewarn.clock import FixedClock
from tests.test_kpis import (
    SINCE,
    UNTIL,
    deliveries,
    notification,
    resolutions,
    self_service,
    sla_per_priority,
    ticket,
)

DB = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]
H = timedelta(hours=1)
M = timedelta(minutes=1)
PERIOD = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def everything(db: DB) -> None:
    """Rows for every KPI at once (the test_kpis cases, which use distinct devices)."""
    for setup in (sla_per_priority, resolutions, self_service, deliveries):
        setup(db)


@pytest.mark.parametrize("role", ["viewer", "agent", "integration", "admin"])
def test_report_is_the_flows_report(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock, role: str
) -> None:
    """Any valid key reads the report, figure for figure what the flows compute."""
    everything(db)
    got = api_client.get("/api/v1/kpis", params=PERIOD, headers=keys[role])
    assert got.status_code == 200, got.text
    want = flows.kpi_report(db, period=Period(SINCE, UNTIL), now=api_clock.now())
    assert got.json() == KpiReportOut.of(want).model_dump(mode="json")
    body = got.json()
    # 4 of the SLA case's 5 resolved tickets, 3 of the resolution case's 5
    assert body["first_contact_resolution"]["value"] == pytest.approx(0.7)
    assert body["first_contact_resolution"]["target"] == {
        "value": 0.8,
        "direction": "at_least",
        "source": "PRODUCT.md: First-contact resolution (FCR) ≥ 80%",
    }
    assert body["first_contact_resolution"]["meets_target"] is False
    assert [s["priority"] for s in body["sla"]] == ["critical", "major", "minor"]
    assert body["sla"][2]["first_response"]["value"] is None  # no minor ticket in the period


def test_default_period_is_the_last_seven_days(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock
) -> None:
    """No since/until: [now - 7 days, now) on the business clock, not the wall clock."""
    now = api_clock.now()
    ticket(db, now - 1 * H, responded=now - 50 * M)
    ticket(db, now - 8 * 24 * H, responded=now - 8 * 24 * H + 40 * M)  # before the period
    body = api_client.get("/api/v1/kpis", headers=keys["viewer"]).json()
    since, until = (datetime.fromisoformat(body[k]) for k in ("since", "until"))
    assert (since, until) == (now - 7 * 24 * H, now)
    assert body["first_response"]["value"] == 600.0
    assert body["first_response"]["count"] == 1
    api_clock.advance(2 * H)  # the clock moves: so does the default period
    later = api_client.get("/api/v1/kpis", headers=keys["viewer"]).json()
    assert datetime.fromisoformat(later["until"]) == now + 2 * H


def test_naive_times_are_utc(api_client: TestClient, keys: Keys, db: DB) -> None:
    """A time with no offset is read as UTC, as the API's times are."""
    params = {"since": "2025-03-03T00:00:00", "until": "2025-03-04T00:00:00"}
    body = api_client.get("/api/v1/kpis", params=params, headers=keys["viewer"]).json()
    assert datetime.fromisoformat(body["since"]) == SINCE
    assert datetime.fromisoformat(body["until"]) == UNTIL


@pytest.mark.parametrize("bucket", [Bucket.HOUR, Bucket.DAY])
def test_series_is_the_flows_series(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock, bucket: Bucket
) -> None:
    """The series route returns the flows' buckets, every one of them."""
    everything(db)
    notification(db, SINCE + 30 * M)
    params = PERIOD | {"bucket": bucket.value}
    got = api_client.get("/api/v1/kpis/series", params=params, headers=keys["viewer"])
    assert got.status_code == 200, got.text
    want = flows.kpi_series(db, period=Period(SINCE, UNTIL), now=api_clock.now(), bucket=bucket)
    assert got.json() == KpiSeriesOut.of(want).model_dump(mode="json")
    points = got.json()["points"]
    assert len(points) == (24 if bucket is Bucket.HOUR else 1)
    assert sum(p["tickets_opened"] for p in points) == 7  # the SLA case's tickets


def test_keys_are_required(api_client: TestClient) -> None:
    """No key, or an unknown one: 401 on both routes."""
    for path in ("/api/v1/kpis", "/api/v1/kpis/series"):
        assert api_client.get(path).status_code == 401
        assert api_client.get(path, headers={"X-API-Key": "not-a-key"}).status_code == 401


def _says(text: str) -> Callable[[str], bool]:
    return lambda detail: text in detail


BAD = [
    pytest.param(
        "/api/v1/kpis",
        {"since": UNTIL.isoformat(), "until": SINCE.isoformat()},
        _says("must be before until"),
        id="reversed",
    ),
    pytest.param(
        "/api/v1/kpis",
        {"since": SINCE.isoformat(), "until": SINCE.isoformat()},
        _says("must be before until"),
        id="empty",
    ),
    pytest.param(
        "/api/v1/kpis/series",
        {"since": UNTIL.isoformat(), "until": SINCE.isoformat()},
        _says("must be before until"),
        id="series-reversed",
    ),
    pytest.param(
        "/api/v1/kpis/series",
        {"since": "2020-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        _says("choose a shorter period or bucket=day"),
        id="too-many-buckets",
    ),
    pytest.param("/api/v1/kpis", {"since": "yesterday"}, _says("since"), id="not-a-time"),
    pytest.param("/api/v1/kpis/series", {"bucket": "week"}, _says("bucket"), id="unknown-bucket"),
]


@pytest.mark.parametrize(("path", "params", "says"), BAD)
def test_bad_periods_are_422(
    api_client: TestClient,
    keys: Keys,
    path: str,
    params: dict[str, str],
    says: Callable[[str], bool],
) -> None:
    """A period that is not one, or a series too long to send: 422 saying why."""
    got = api_client.get(path, params=params, headers=keys["viewer"])
    assert got.status_code == 422
    assert says(str(got.json()["detail"])), got.json()


def test_openapi_explains_the_routes(api_client: TestClient) -> None:
    """Both routes have a summary and description; the KPI fields say what they measure."""
    doc = api_client.get("/openapi.json").json()
    for path in ("/api/v1/kpis", "/api/v1/kpis/series"):
        op = doc["paths"][path]["get"]
        assert op["summary"] and op["description"]
        assert {"401", "422"} <= set(op["responses"])
    report = doc["components"]["schemas"]["KpiReportOut"]["properties"]
    assert all(field.get("description") for field in report.values())
    assert "30 days" in report["recurrence"]["description"]


def test_series_default_bucket_is_hourly(
    api_client: TestClient, keys: Keys, api_clock: FixedClock
) -> None:
    """No bucket: hourly over the default 7 days (an aligned clock gives 168 buckets)."""
    body = api_client.get("/api/v1/kpis/series", headers=keys["viewer"]).json()
    assert body["bucket"] == "hour"
    assert len(body["points"]) == 7 * 24
    assert datetime.fromisoformat(body["points"][0]["start"]) == api_clock.now() - 7 * 24 * H
    assert body["points"][0]["start"].endswith(("Z", "+00:00"))
    assert datetime.fromisoformat(body["points"][-1]["start"]).tzinfo == UTC


def test_the_widest_period_is_answered(api_client: TestClient, keys: Keys, db: DB) -> None:
    """Year 1 to year 9999: the report is computed (no overflow); a daily series is refused."""
    everything(db)
    wide = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}
    got = api_client.get("/api/v1/kpis", params=wide, headers=keys["viewer"])
    assert got.status_code == 200, got.text
    # the SLA case's 5 critical tickets and the fleet ticket, all past their dues by now
    assert got.json()["sla"][0]["first_response"]["denominator"] == 6
    series = api_client.get(
        "/api/v1/kpis/series", params=wide | {"bucket": "day"}, headers=keys["viewer"]
    )
    assert series.status_code == 422
    early = api_client.get(
        "/api/v1/kpis", params={"until": "0001-01-02T00:00:00Z"}, headers=keys["viewer"]
    )
    assert early.status_code == 422
    assert "too early" in early.json()["detail"]
