"""Words for the page in Japanese and English: headings, trust levels, obligation kinds, statuses.

The language is the ``dashboard.language`` setting, or with ``auto`` the first of ``ja`` / ``en``
the browser's ``Accept-Language`` prefers (English when it names neither).
"""

from __future__ import annotations

LANGUAGES = ("ja", "en")

TRUST_RANK = {"distrust": 0, "anxious": 1, "assured": 2, "credible": 3, "trusted": 4}
"""The ladder, lowest (riskiest) first."""

_WORDS: dict[str, tuple[str, str]] = {
    # (ja, en)
    "title": ("信頼 — 応答SLA", "Shinrai 信頼 — response SLAs"),
    "as_of": ("時点", "as of"),
    "times_in": ("時刻はすべて", "all times in"),
    "window": ("集計期間", "window"),
    "utc_days": ("日単位の集計はUTC日", "daily rollups count UTC days"),
    "refresh": ("30秒ごとに更新", "refreshes every 30 s"),
    "clients": ("顧客（リスク順）", "Clients (riskiest first)"),
    "client": ("顧客", "client"),
    "owner": ("担当", "owner"),
    "owners": ("担当者", "Owners"),
    "all_owners": ("全員", "everyone"),
    "unassigned": ("（未割当）", "(unassigned)"),
    "trust": ("信頼度", "trust"),
    "attainment": ("達成率", "attainment"),
    "opened": ("発生", "opened"),
    "met": ("期限内", "met"),
    "met_late": ("遅延回答", "met late"),
    "breached": ("違反", "breached"),
    "waived": ("免除", "waived"),
    "open": ("未対応", "open"),
    "open_now": ("未対応数", "open now"),
    "overdue_n": ("期限超過", "overdue"),
    "breaches_week": ("今週の違反", "breaches (7 d)"),
    "next_deadline": ("次の期限", "next deadline"),
    "answer_rate": ("応答率", "answer rate"),
    "open_obligations": ("未対応の案件", "Open obligations"),
    "kind": ("種類", "kind"),
    "channel": ("チャネル", "channel"),
    "status": ("状態", "status"),
    "deadline": ("期限", "deadline"),
    "time_left": ("残り時間", "time left"),
    "trend": ("推移（期限日別）", "Trend (by the day obligations fell due)"),
    "trend_title": (
        "期限日ごとの結果（棒）と達成率（線）",
        "outcomes by due day (bars) and attainment (line)",
    ),
    "due": ("期限到来", "due"),
    "zone_hint": (
        "SHINRAI_DASHBOARD__TIME_ZONE で変更できます",
        "set SHINRAI_DASHBOARD__TIME_ZONE to change it",
    ),
    "day": ("日", "day"),
    "few": ("件数が少ない日", "too few obligations"),
    "alerts": ("違反と警告", "Breaches and warnings"),
    "at": ("日時", "at"),
    "now_status": ("現在", "now"),
    "silence": ("沈黙（先に連絡を）", "Silence (reach out before they ask)"),
    "silence_none": ("連絡待ちの顧客はいません", "nobody is waiting on us to reach out"),
    "silence_since": ("沈黙開始", "silence since"),
    "days": ("日数", "days"),
    "mix": ("チャネル構成", "Channel mix"),
    "mix_title": ("チャネル別のやり取り", "interactions by channel"),
    "numbers": ("数値", "numbers"),
    "phone": ("電話", "Phone"),
    "calls": ("着信", "calls"),
    "answered": ("応答", "answered"),
    "abandoned": ("放棄", "abandoned"),
    "missed": ("不在", "missed"),
    "abandon_rate": ("放棄率", "abandon rate"),
    "wait_p50": ("待ち p50", "wait p50"),
    "wait_p90": ("待ち p90", "wait p90"),
    "overdue": ("超過", "overdue"),
    "due_in": ("残り", "in"),
    "breaches": ("違反数", "breaches"),
    "clients_breached": ("違反のあった顧客", "clients breached"),
    "starting": ("起動中", "starting"),
    "starting_text": (
        "データベースを準備しています。準備ができ次第このページは自動で更新されます。",
        "The database is being prepared; this page reloads by itself once it is ready.",
    ),
    "unavailable": ("データベースに接続できません", "The database cannot be reached"),
    "catching_up": ("遅れを取り戻しています", "Catching up"),
    "catching_up_text": (
        "ワーカーが未処理の記録を読み込み中です。",
        "The worker is reading a backlog;",
    ),
    "behind": ("遅れ", "behind"),
    "processed_to": ("処理済みの最新時刻", "processed up to"),
    "records_queued": ("未保存の記録", "records not yet stored"),
    "data_up_to": ("最新のやり取り", "newest interaction"),
    "back": ("一覧へ", "all clients"),
    "policy": ("ポリシー", "policy"),
    "calendar": ("カレンダー", "calendar"),
    "open_items": ("未対応の案件", "Open items"),
    "none": ("なし", "none"),
    "trust_history": ("信頼度の履歴", "Trust history"),
    "change": ("変化", "change"),
    "reason": ("理由", "reason"),
    "no_trust_change": (
        "期間中の変化はありません（開始レベル：安心）",
        "no change in the window (start level: assured)",
    ),
    "response_times": (
        "応答時間の分布（この顧客の目標に対して）",
        "Response times vs this client's target",
    ),
    "of_target": ("目標比", "of target"),
    "answers": ("回答数", "answers"),
    "timeline": ("タイムライン", "Timeline"),
    "what": ("内容", "what"),
    "unknown_client": ("この顧客は見つかりません", "No such client"),
    "inbound": ("受信", "inbound"),
    "outbound": ("送信", "outbound"),
    "internal": ("社内", "internal"),
    "unknown": ("不明", "unknown"),
    "interaction": ("やり取り", "interaction"),
    "staff": ("担当者", "staff"),
    "observed_standard": (
        "顧客の実際の基準（催促までの待ち時間）",
        "Observed standard (wait before a chase)",
    ),
    "chases": ("催促", "chases"),
    "no_chases": ("催促はまだありません", "no chase yet"),
    "before_deadline": ("期限前", "before our deadline"),
    "median": ("中央値", "median"),
    "p10": ("早い方の10%", "fastest 10%"),
    "business_time": ("営業時間", "business time"),
    "our_target": ("当社の目標", "our target"),
    "waited": ("待ち時間", "waited"),
    "deadline_passed": ("期限超過後", "after our deadline"),
    "suggested_target": ("提案する初回応答の目標", "Suggested first-response target"),
    "suggestion_note": (
        "担当者がディレクトリのポリシー変更として承認するまで何も変わりません",
        "nothing changes until the owner accepts it as a directory policy change",
    ),
}

_TRUST: dict[str, tuple[str, str]] = {
    "distrust": ("不信", "distrust"),
    "anxious": ("不安", "anxious"),
    "assured": ("安心", "assured"),
    "credible": ("信用", "credible"),
    "trusted": ("信頼", "trusted"),
}

_KIND: dict[str, tuple[str, str]] = {
    "first_response": ("初回返信", "first response"),
    "follow_up": ("フォローアップ", "follow-up"),
    "callback": ("折り返し電話", "callback"),
}

_STATUS: dict[str, tuple[str, str]] = {
    "open": ("未対応", "open"),
    "breached": ("期限超過", "overdue"),
    "met": ("期限内に回答", "met"),
    "met_late": ("遅れて回答", "met late"),
    "waived": ("免除", "waived"),
    "retracted": ("取消", "retracted"),
}

_FACT: dict[str, tuple[str, str]] = {
    "obligation_opened": ("案件発生", "obligation opened"),
    "fulfilled": ("回答", "answered"),
    "warning": ("警告", "warning"),
    "breached": ("違反", "breach"),
    "waived": ("免除", "waived"),
    "silence": ("沈黙", "silence"),
    "trust_changed": ("信頼度の変化", "trust changed"),
    "chased": ("催促", "chased"),
    "target_suggested": ("目標の提案", "target suggested"),
}

_EVENT: dict[str, tuple[str, str]] = {
    "message": ("メッセージ", "message"),
    "call": ("通話", "call"),
    "voicemail": ("留守電", "voicemail"),
    "callback_request": ("折り返し依頼", "callback request"),
    "meeting": ("会議", "meeting"),
    "visit": ("訪問", "visit"),
    "no_reply_needed": ("返信不要", "no reply needed"),
}

_CHANNEL: dict[str, tuple[str, str]] = {
    "email": ("メール", "email"),
    "phone": ("電話", "phone"),
    "meeting": ("会議", "meeting"),
    "visit": ("訪問", "visit"),
    "chat": ("チャット", "chat"),
    "other": ("その他", "other"),
}


def language(setting: str, accept_language: str | None) -> str:
    """``ja`` or ``en``: the setting, or with ``auto`` the browser's first preference of the two.

    ``Accept-Language`` entries are weighed by their ``q`` (default 1); ties keep header order.
    """
    if setting in LANGUAGES:
        return setting
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, index, primary))
    return min(ranked)[2] if ranked else "en"


class Labels:
    """The words of one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self._i = LANGUAGES.index(self.lang)

    def __call__(self, key: str) -> str:
        """A heading or phrase by key (the key itself when unknown)."""
        pair = _WORDS.get(key)
        return pair[self._i] if pair else key

    def _pick(self, table: dict[str, tuple[str, str]], value: str | None) -> str:
        if not value:
            return "–"
        pair = table.get(value)
        return pair[self._i] if pair else value

    def trust(self, level: str) -> str:
        """``安心 assured`` in both languages: the kanji is the ladder's own name."""
        ja, en = _TRUST.get(level, (level, level))
        return ja if self.lang == "ja" else f"{ja} {en}"

    def kind(self, kind: str | None) -> str:
        """An obligation kind in words."""
        return self._pick(_KIND, kind)

    def status(self, status: str | None) -> str:
        """An obligation status in words."""
        return self._pick(_STATUS, status)

    def fact(self, kind: str | None) -> str:
        """A fact kind in words."""
        return self._pick(_FACT, kind)

    def event(self, kind: str | None) -> str:
        """An interaction kind in words."""
        return self._pick(_EVENT, kind)

    def channel(self, channel: str | None) -> str:
        """A channel in words."""
        return self._pick(_CHANNEL, channel)
