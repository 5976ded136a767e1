"""Japanese and English labels: the language chosen from the setting or Accept-Language."""

from __future__ import annotations

import pytest

from dashboard.labels import Labels, language
from schemas.events import Channel, Kind
from schemas.facts import ObligationKind, TrustLevel

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("setting", "header", "want"),
    [
        ("auto", "ja,en-US;q=0.9,en;q=0.8", "ja"),
        ("auto", "en-US,en;q=0.9,ja;q=0.8", "en"),
        ("auto", "fr-FR,ja;q=0.5", "ja"),  # French is not offered: the first we have
        ("auto", "en;q=0.4,ja;q=0.7", "ja"),  # weights, not order
        ("auto", "ja;q=0", "en"),  # q=0 means "not this one"
        ("auto", None, "en"),
        ("auto", "garbage;;q=x", "en"),
        ("ja", "en-US", "ja"),  # the setting wins
        ("en", "ja", "en"),
    ],
)
def test_language(setting: str, header: str | None, want: str) -> None:
    assert language(setting, header) == want


def test_every_trust_level_kind_and_channel_has_words_in_both_languages() -> None:
    ja, en = Labels("ja"), Labels("en")
    for level in TrustLevel:
        assert ja.trust(level.value) != level.value
        assert level.value in en.trust(level.value)
    for kind in ObligationKind:
        assert ja.kind(kind.value) != kind.value
        assert "_" not in en.kind(kind.value)  # words, not identifiers
    for channel in Channel:
        assert ja.channel(channel.value) != channel.value
    for event in Kind:
        assert ja.event(event.value) != event.value
        assert "_" not in en.event(event.value)
    assert ja.trust("assured") == "安心"
    assert en.trust("assured") == "安心 assured"
    assert ja("clients") != en("clients")
