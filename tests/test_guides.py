"""The knowledge base: shipped guide files, selection, rendering, bad files, database loading."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn import db as forewarn_db
from forewarn.domain import FaultKind
from forewarn.errors import GuideError
from forewarn.settings import Settings
from notifier.guides import (
    Guide,
    GuideFacts,
    choose,
    default_directory,
    guide_for,
    load_directory,
    onboarding,
    onboarding_for,
    parse_guide,
    read_directory,
    render,
    repository,
)
from notifier.guides.markdown import parse_firmware_range
from notifier.guides.select import compare_versions, device_version
from notifier.guides.types import KINDS

Conn = psycopg.Connection[tuple[Any, ...]]
LOCALES = ("en-US", "zh-CN")


@pytest.fixture(scope="module")
def shipped() -> list[Guide]:
    """Every guide in the repository's guides/ folder."""
    return read_directory(default_directory())


def make_guide(**overrides: Any) -> Guide:
    """A small valid guide; keyword arguments replace its fields."""
    base = Guide(
        guide_id="g",
        locale="en-US",
        category="troubleshooting",
        fault="reboot_loop",
        audience="all",
        kinds=(),
        models=(),
        firmware_min=None,
        firmware_max=None,
        title="t",
        problem="p",
        scenario="s",
        steps=("one",),
        cautions=(),
        source_path="memory",
        sha256="0",
    )
    return dataclasses.replace(base, **overrides)


# --- the shipped files ---------------------------------------------------------------------


def test_every_shipped_file_parses_and_is_complete(shipped: list[Guide]) -> None:
    files = sorted(default_directory().glob("*.md"))
    assert len(shipped) == len(files) > 0
    for guide in shipped:
        assert guide.title and guide.problem and guide.scenario, guide.source_path
        assert guide.steps and all(guide.steps), guide.source_path


def test_every_shipped_guide_has_owners_phrases_in_its_language(shipped: list[Guide]) -> None:
    for guide in shipped:
        assert len(guide.phrases) >= 4, guide.source_path
        chinese = [bool(re.search("[\u4e00-\u9fff]", p)) for p in guide.phrases]
        assert all(chinese) if guide.language == "zh" else not any(chinese), guide.source_path


def test_every_guide_exists_in_english_and_chinese(shipped: list[Guide]) -> None:
    by_id: dict[str, set[str]] = {}
    for guide in shipped:
        by_id.setdefault(guide.guide_id, set()).add(guide.locale)
    assert {i: set(LOCALES) for i in by_id} == by_id


@pytest.mark.parametrize("fault", list(FaultKind), ids=str)
@pytest.mark.parametrize("locale", LOCALES)
def test_every_fault_has_a_generic_guide(shipped: list[Guide], fault: str, locale: str) -> None:
    found = choose(shipped, fault=fault, kind=None, model=None, firmware=None, locale=locale)
    assert found is not None
    assert (found.fault, found.locale, found.kinds, found.models) == (fault, locale, (), ())


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("locale", LOCALES)
def test_every_kind_has_an_onboarding_guide(shipped: list[Guide], kind: str, locale: str) -> None:
    found = onboarding(shipped, kind=kind, locale=locale)
    assert found is not None
    assert (found.category, found.audience, found.fault, found.locale) == (
        "basic",
        "novice",
        None,
        locale,
    )
    assert found.kinds == (kind,)


def test_after_sales_guides_exist_in_both_languages(shipped: list[Guide]) -> None:
    after_sales = {(g.guide_id, g.locale) for g in shipped if g.category == "after_sales"}
    assert {"en-US", "zh-CN"} <= {locale for _, locale in after_sales}
    assert ("support_ticket_process", "zh-CN") in after_sales


# --- selection -----------------------------------------------------------------------------

SELECTION = [
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        "3.1.0",
        "en-US",
        "all",
        ("camera_reboot_fw_3_1_0", "en-US"),
        id="cam-c2-3.1.0-specific",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        "3.1.0",
        "zh-CN",
        "all",
        ("camera_reboot_fw_3_1_0", "zh-CN"),
        id="cam-c2-3.1.0-zh",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        "3.1.0.2",
        "en-US",
        "all",
        ("camera_reboot_fw_3_1_0", "en-US"),
        id="sub-release-inside-range",
    ),
    pytest.param(
        "reboot_loop",
        None,
        "cam-c2",
        "v3.1.0",
        "en-US",
        "all",
        ("camera_reboot_fw_3_1_0", "en-US"),
        id="model-without-kind-v-prefix",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        "3.0.4",
        "en-US",
        "all",
        ("reboot_loop", "en-US"),
        id="cam-c2-3.0.4-generic",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        "3.1.1",
        "en-US",
        "all",
        ("reboot_loop", "en-US"),
        id="fixed-firmware-generic",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c2",
        None,
        "en-US",
        "all",
        ("reboot_loop", "en-US"),
        id="unknown-firmware-no-ranged-guide",
    ),
    pytest.param(
        "reboot_loop",
        "camera",
        "cam-c9",
        "3.1.0",
        "en-US",
        "all",
        ("reboot_loop", "en-US"),
        id="other-model-same-firmware",
    ),
    pytest.param(
        "reboot_loop",
        "lock",
        "lock-s2",
        "2.4.1",
        "fr-FR",
        "all",
        ("reboot_loop", "en-US"),
        id="fr-falls-back-to-en-US",
    ),
    pytest.param(
        "reboot_loop",
        "lock",
        "lock-s2",
        "2.4.1",
        "zh-TW",
        "all",
        ("reboot_loop", "zh-CN"),
        id="zh-TW-gets-zh-CN",
    ),
    pytest.param(
        "reboot_loop",
        "lock",
        "lock-s2",
        "2.4.1",
        "zh_cn",
        "all",
        ("reboot_loop", "zh-CN"),
        id="locale-spelling-tolerated",
    ),
    pytest.param(
        "battery_failure",
        "watch",
        "watch-w3",
        "1.9.2",
        "zh-CN",
        "all",
        ("watch_battery_life", "zh-CN"),
        id="watch-battery-gets-watch-guide",
    ),
    pytest.param(
        "battery_failure",
        "lock",
        "lock-s2",
        "2.4.1",
        "en-US",
        "all",
        ("lock_battery", "en-US"),
        id="lock-battery-gets-lock-guide",
    ),
    pytest.param(
        "battery_failure",
        "temperature_sensor",
        "zb-t1",
        "1.0.6",
        "en-US",
        "all",
        ("battery_failure", "en-US"),
        id="sensor-battery-generic",
    ),
    pytest.param(
        "connectivity_loss",
        "lock",
        "lock-s2",
        "2.4.1",
        "en-US",
        "novice",
        ("connectivity_loss_novice", "en-US"),
        id="novice-preferred",
    ),
    pytest.param(
        "connectivity_loss",
        "lock",
        "lock-s2",
        "2.4.1",
        "zh-CN",
        "senior",
        ("connectivity_loss", "zh-CN"),
        id="senior-gets-all",
    ),
    pytest.param(
        "connectivity_loss",
        "lock",
        "lock-s2",
        "2.4.1",
        "en-US",
        "all",
        ("connectivity_loss", "en-US"),
        id="all-not-given-novice-guide",
    ),
]


@pytest.mark.parametrize(
    ("fault", "kind", "model", "firmware", "locale", "audience", "expected"), SELECTION
)
def test_choose_shipped(
    shipped: list[Guide],
    fault: str,
    kind: str | None,
    model: str | None,
    firmware: str | None,
    locale: str,
    audience: str,
    expected: tuple[str, str],
) -> None:
    found = choose(
        shipped,
        fault=fault,
        kind=kind,
        model=model,
        firmware=firmware,
        locale=locale,
        audience=audience,
    )
    assert found is not None
    assert (found.guide_id, found.locale) == expected


SYNTHETIC = [
    pytest.param(
        [
            make_guide(guide_id="specific", models=("m",)),
            make_guide(guide_id="kind", kinds=("camera",)),
        ],
        {},
        "specific",
        id="model-beats-kind",
    ),
    pytest.param(
        [make_guide(guide_id="kind", kinds=("camera",)), make_guide(guide_id="generic")],
        {},
        "kind",
        id="kind-beats-generic",
    ),
    pytest.param(
        [make_guide(guide_id="ranged", firmware_min="3.0.0"), make_guide(guide_id="plain")],
        {},
        "ranged",
        id="ranged-beats-unranged",
    ),
    pytest.param(
        [
            make_guide(guide_id="novice", audience="novice"),
            make_guide(guide_id="plain", kinds=("camera",)),
        ],
        {"audience": "novice"},
        "plain",
        id="specificity-before-audience",
    ),
    pytest.param(
        [make_guide(guide_id="en", models=("m",)), make_guide(guide_id="zh", locale="zh-CN")],
        {"locale": "zh-CN"},
        "zh",
        id="readable-beats-specific",
    ),
    pytest.param(
        [make_guide(guide_id="de", locale="de-DE")],
        {"locale": "zh-CN"},
        None,
        id="unreadable-none",
    ),
    pytest.param(
        [make_guide(guide_id="gb", locale="en-GB"), make_guide(guide_id="us")],
        {"locale": "fr-FR"},
        "us",
        id="en-US-before-other-english",
    ),
    pytest.param(
        [make_guide(guide_id="old", firmware_max="3.0.0")],
        {},
        None,
        id="above-exclusive-max",
    ),
    pytest.param(
        [make_guide(guide_id="lock", kinds=("lock",))],
        {},
        None,
        id="other-kind-never",
    ),
    pytest.param(
        [make_guide(guide_id="other", fault="overheating")],
        {},
        None,
        id="other-fault-never",
    ),
]


@pytest.mark.parametrize(("guides", "ask", "expected"), SYNTHETIC)
def test_choose_order(guides: list[Guide], ask: dict[str, str], expected: str | None) -> None:
    query: dict[str, Any] = {
        "fault": "reboot_loop",
        "kind": "camera",
        "model": "m",
        "firmware": "3.1.0",
        "locale": "en-US",
    } | ask
    found = choose(guides, **query)
    assert (found.guide_id if found else None) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("3.1.0", "3.1", 0, id="trailing-zero"),
        pytest.param("3.10.0", "3.9.9", 1, id="numeric-not-text"),
        pytest.param("2.9.7", "3.0.0", -1, id="major"),
        pytest.param("3.1.0.1", "3.1.0", 1, id="sub-release"),
    ],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    left, right = device_version(a), device_version(b)
    assert left is not None and right is not None
    assert compare_versions(left, right) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(">=3.0.0,<3.1.1", ("3.0.0", "3.1.1"), id="half-open"),
        pytest.param("==3.1.0", ("3.1.0", "3.1.1"), id="exact"),
        pytest.param("3.1.0", ("3.1.0", "3.1.1"), id="bare"),
        pytest.param("<=2.4", (None, "2.5"), id="at-most"),
        pytest.param(">2.4.1", ("2.4.2", None), id="above"),
    ],
)
def test_firmware_range(spec: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_firmware_range(spec) == expected


# --- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guide_id", "locale", "facts", "expected"),
    [
        pytest.param(
            "battery_failure",
            "en-US",
            GuideFacts(device_name="front door lock", hours_to_empty=120),
            "Your front door lock's battery will be empty in about 5 days",
            id="days-en",
        ),
        pytest.param(
            "battery_failure",
            "zh-CN",
            GuideFacts(kind="lock", hours_to_empty=130),
            "您的门锁电池大约5天后将耗尽",
            id="days-zh-kind-word",
        ),
        pytest.param(
            "battery_failure",
            "en-US",
            GuideFacts(kind="watch", hours_to_empty=3),
            "Your watch's battery will be empty in about 1 day",
            id="at-least-one-day",
        ),
        pytest.param(
            "battery_failure",
            "en-US",
            GuideFacts(),
            "Your device's battery will be empty in about a few days",
            id="nothing-known",
        ),
        pytest.param(
            "lock_battery",
            "en-US",
            GuideFacts(hours_to_empty=120),
            "Your lock's batteries will be empty in about 5 days: here is how to change them",
            id="sole-kind-names-device",
        ),
        pytest.param(
            "getting_started_camera",
            "zh-CN",
            GuideFacts(owner_name="王芳", device_name="客厅摄像头"),
            "王芳，欢迎使用：客厅摄像头入门指南",  # noqa: RUF001
            id="owner-zh",
        ),
    ],
)
def test_render_title(
    shipped: list[Guide], guide_id: str, locale: str, facts: GuideFacts, expected: str
) -> None:
    guide = next(g for g in shipped if (g.guide_id, g.locale) == (guide_id, locale))
    assert render(guide, facts).title == expected


def test_render_body_has_problem_steps_and_cautions(shipped: list[Guide]) -> None:
    guide = next(
        g for g in shipped if (g.guide_id, g.locale) == ("camera_reboot_fw_3_1_0", "en-US")
    )
    rendered = render(guide, GuideFacts(kind="camera", model="cam-c2", firmware="3.1.0"))
    assert rendered.body.startswith("Since your camera (cam-c2) installed firmware 3.1.0,")
    assert "\n1. " in rendered.body and f"\n{len(guide.steps)}. " in rendered.body
    assert "Please note:\n- " in rendered.body
    assert (rendered.guide_id, rendered.locale) == ("camera_reboot_fw_3_1_0", "en-US")


@pytest.mark.parametrize("facts", [GuideFacts(), GuideFacts(kind="watch", hours_to_empty=0.2)])
def test_no_placeholder_survives_rendering(shipped: list[Guide], facts: GuideFacts) -> None:
    for guide in shipped:
        rendered = render(guide, facts)
        assert "{" not in rendered.title + rendered.body, guide.source_path
        assert "}" not in rendered.title + rendered.body, guide.source_path


# --- broken files --------------------------------------------------------------------------

GOOD = """---
id: sample
locale: en-US
category: troubleshooting
fault: reboot_loop
title: "Your {device_name} restarts"
---

## Problem

It restarts.

## Applies to

Everything.

## Steps

1. Unplug it.
2. Plug it in.

## Cautions

- None really.
"""

BROKEN = [
    pytest.param(
        GOOD.replace("## Steps\n\n1. Unplug it.\n2. Plug it in.\n", ""),
        "missing section",
        id="missing-steps",
    ),
    pytest.param(
        GOOD.replace("## Problem\n\nIt restarts.\n", ""), "## Problem", id="missing-problem"
    ),
    pytest.param(GOOD.replace("It restarts.", ""), "is empty", id="empty-problem"),
    pytest.param(GOOD.replace('title: "Your', 'title: ["Your'), "bad front matter", id="bad-yaml"),
    pytest.param(GOOD.split("---\n", 2)[2], "no front matter", id="no-front-matter"),
    pytest.param(
        GOOD.replace("category: troubleshooting", "category: howto"),
        "unknown category",
        id="unknown-category",
    ),
    pytest.param(
        GOOD.replace("fault: reboot_loop", "fault: flooding"), "unknown fault", id="unknown-fault"
    ),
    pytest.param(
        GOOD.replace("category:", "kinds: [fridge]\ncategory:"), "unknown kind", id="unknown-kind"
    ),
    pytest.param(
        GOOD.replace("category:", "audience: teens\ncategory:"),
        "unknown audience",
        id="unknown-audience",
    ),
    pytest.param(
        GOOD.replace("category:", 'firmware: "~3.1"\ncategory:'),
        "bad firmware range",
        id="bad-range",
    ),
    pytest.param(
        GOOD.replace("category:", 'firmware: ">=3.1,<3.0"\ncategory:'),
        "no version can be inside",
        id="empty-range",
    ),
    pytest.param(
        GOOD.replace("category:", "firmware: 3.1\ncategory:"), "must be text", id="unquoted-number"
    ),
    pytest.param(
        GOOD.replace("category:", "owner: me\ncategory:"),
        "unknown front-matter field",
        id="unknown-field",
    ),
    pytest.param(GOOD.replace("locale: en-US", "locale: english"), "locale", id="bad-locale"),
    pytest.param(
        GOOD.replace("locale: en-US", "locale: zh-CN"), "need the name", id="name-disagrees"
    ),
    pytest.param(
        GOOD.replace("{device_name}", "{serial}"), "unknown placeholder", id="unknown-placeholder"
    ),
    pytest.param(GOOD.replace("It restarts.", "It {restarts."), "stray brace", id="stray-brace"),
    pytest.param(
        GOOD.replace("2. Plug it in.", "Plug it in."),
        "line 20: expected a numbered step",
        id="unnumbered-step",
    ),
    pytest.param(
        GOOD.replace("## Cautions", "## Notes"), "line 22: unknown section", id="unknown-section"
    ),
    pytest.param(
        GOOD.replace("---\n\n## Problem", "---\nIntro\n## Problem"),
        "line 8: text before the first",
        id="text-before-sections",
    ),
    pytest.param(
        GOOD.replace("category:", "phrases: 5\ncategory:"),
        "'phrases' must be a list of phrases",
        id="phrases-not-a-list",
    ),
    pytest.param(
        GOOD.replace("category:", "phrases: [ok, '']\ncategory:"),
        "must be a list of phrases",
        id="blank-phrase",
    ),
    pytest.param(
        GOOD.replace("category:", "phrases: [它一直重启]\ncategory:"),
        "phrase 1 '它一直重启' is not in en-US",
        id="phrase-language",
    ),
    pytest.param(
        GOOD.replace("category:", "phrases: [Restarts, restarts]\ncategory:"),
        "phrase 2 'restarts' is there twice",
        id="phrase-twice",
    ),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_file_names_itself(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sample.en.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GuideError) as caught:
        parse_guide(path)
    assert "sample.en.md" in str(caught.value)
    assert message in str(caught.value)


def test_good_sample_parses_with_wrapped_lines_and_chinese_headings(tmp_path: Path) -> None:
    path = tmp_path / "sample.zh.md"
    path.write_text(
        GOOD.replace("en-US", "zh-CN")
        .replace("## Problem\n\nIt restarts.", "## 问题\n\n它会\n反复重启。")
        .replace("## Steps", "## 操作步骤")
        .replace("1. Unplug it.", "1. Unplug\n   it now."),
        encoding="utf-8",
    )
    guide = parse_guide(path)
    assert guide.problem == "它会反复重启。"
    assert guide.steps == ("Unplug it now.", "Plug it in.")
    assert guide.cautions == ("None really.",)


def test_phrases_are_read_from_the_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "sample.zh.md"
    header = 'phrases:\n  - "老是自己重启"\n  - App 显示离线又上线\ncategory:'
    path.write_text(GOOD.replace("en-US", "zh-CN").replace("category:", header), encoding="utf-8")
    assert parse_guide(path).phrases == ("老是自己重启", "App 显示离线又上线")
    assert parse_guide(_write(tmp_path, GOOD)).phrases == ()  # the field is optional


def _write(folder: Path, text: str) -> Path:
    path = folder / "sample.en.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_guide_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "sample.en.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "sample.en-US.md").write_text(GOOD, encoding="utf-8")
    with pytest.raises(
        GuideError, match=r"sample\.en\.md.*sample\.en-US\.md|sample\.en-US\.md.*sample\.en\.md"
    ):
        read_directory(tmp_path)


def test_missing_directory_is_a_guide_error(tmp_path: Path) -> None:
    with pytest.raises(GuideError, match="not a folder"):
        read_directory(tmp_path / "nowhere")


# --- the database --------------------------------------------------------------------------


def test_load_directory_twice_then_unchanged(db: Conn, shipped: list[Guide]) -> None:
    first = load_directory(db, default_directory())
    assert (first.files, first.upserted, first.unchanged) == (len(shipped), len(shipped), 0)
    second = load_directory(db, default_directory())
    assert (second.files, second.upserted, second.unchanged) == (len(shipped), 0, len(shipped))

    battery = repository.guides_for(db, fault="battery_failure")
    assert {g.guide_id for g in battery} == {
        "battery_failure",
        "lock_battery",
        "watch_battery_life",
    }
    no_fault = repository.guides_for(db, fault=None)
    assert all(g.fault is None for g in no_fault)
    assert {"getting_started_lock", "support_ticket_process"} <= {g.guide_id for g in no_fault}
    assert len(repository.all_guides(db)) == len(shipped)


def test_stored_guide_round_trips(db: Conn, shipped: list[Guide]) -> None:
    load_directory(db, default_directory())
    for original in shipped:
        stored = repository.guide(db, guide_id=original.guide_id, locale=original.locale)
        assert stored is not None and stored.updated_at is not None
        assert dataclasses.replace(stored, updated_at=None) == original
    assert repository.guide(db, guide_id="nothing", locale="en-US") is None


def test_changed_file_is_upserted_again(db: Conn, tmp_path: Path) -> None:
    for name in ("reboot_loop.en.md", "reboot_loop.zh.md"):
        shutil.copy(default_directory() / name, tmp_path / name)
    assert load_directory(db, tmp_path).upserted == 2
    path = tmp_path / "reboot_loop.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("one minute", "two minutes"))
    report = load_directory(db, tmp_path)
    assert (report.upserted, report.unchanged) == (1, 1)
    stored = repository.guide(db, guide_id="reboot_loop", locale="en-US")
    assert stored is not None and any("two minutes" in step for step in stored.steps)


def test_broken_directory_loads_nothing(db: Conn, tmp_path: Path) -> None:
    shutil.copy(default_directory() / "reboot_loop.en.md", tmp_path / "reboot_loop.en.md")
    (tmp_path / "sample.en.md").write_text(GOOD.replace("fault: reboot_loop", "fault: x"))
    with pytest.raises(GuideError, match=r"sample\.en\.md"):
        load_directory(db, tmp_path)
    assert repository.all_guides(db) == []


def test_guide_for_reads_the_database(settings: Settings) -> None:
    with forewarn_db.connect(settings) as conn:
        load_directory(conn, default_directory())
    # A fresh connection: load_directory committed its own transaction.
    with forewarn_db.connect(settings) as conn:
        found = guide_for(
            conn,
            fault="reboot_loop",
            kind="camera",
            model="cam-c2",
            firmware="3.1.0",
            locale="zh-CN",
        )
        assert found is not None
        assert (found.guide_id, found.locale) == ("camera_reboot_fw_3_1_0", "zh-CN")
        welcome = onboarding_for(conn, kind="watch", locale="en-GB")
        assert welcome is not None
        assert (welcome.guide_id, welcome.locale) == ("getting_started_watch", "en-US")
        rendered = render(welcome, GuideFacts(owner_name="Anna", kind="watch"))
        assert re.match(r"Welcome, Anna: getting started with your watch$", rendered.title)
