"""The demo data generator: a realistic client directory and a few weeks of interactions.

Deterministic: the same seed (and, in live mode, the same ``now``) always yields the same bytes.

The directory holds five Japanese clients served by one support company (staff domain
``tsunagu-support.co.jp``): company domains and free-mail contacts, E.164 numbers, owners and an
escalation contact. Policies and calendars cover the three shapes of DESIGN §3:

* ``jp-default``: the same-day / next-morning rule on the Tokyo office calendar (JP holidays,
  lunch break) — 桜精機, あおぞらデザイン, 富士見建設;
* ``logistics-24x7``: 60 minutes of wall-clock time on an always-open calendar — 星野物流,
  whose night desk is thin (breaches, met-late answers, callbacks);
* ``business-4h``: four business hours — みなと商事, tightened to two hours half-way through
  (the mid-way ``ClientPolicyChanged``).

The event log starts with one ``ClientPolicyChanged`` per client (the engine learns policies and
calendars from the log, not from the directory). A scripted core guarantees, for every seed,
the stories the demo shows — trust going up (steady fast answers), a night breach answered late
and trust going down, a cross-channel fulfilment (a phone call and a meeting answering e-mails),
a silence (a client nobody contacts for ten business days), a waiver, auto-replies — and seeded
filler around it makes the dashboards look lived in. The core runs on the first business days;
filler starts after it, so it cannot undo a guaranteed story.

``generate_live(now)`` lays the same history out over the weeks before ``now`` and adds
in-flight work on the 24x7 client: obligations whose warnings and breaches fall a few minutes
after ``now`` and replies scheduled during the demo. Events later than ``now`` are meant to be
emitted when the wall clock reaches them (``split_due``).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from engine.calendar import clock_for
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.directory import Client, ClientDirectory, Contact, StaffDirectory
from schemas.events import (
    CallOutcome,
    Channel,
    ClientPolicyChanged,
    Direction,
    Flag,
    InteractionEvent,
    Kind,
)
from schemas.policies import (
    BusinessDuration,
    CalendarDuration,
    CrossChannelRule,
    SameDayOrNextMorning,
    SlaPolicy,
)

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "DemoData",
    "build_directory",
    "directory_yaml",
    "events_jsonl",
    "generate",
    "generate_live",
    "split_due",
    "write",
]

Event = InteractionEvent | ClientPolicyChanged

DEFAULT_SEED = 7
DEFAULT_START = date(2026, 1, 5)  # a Monday; the weeks after it hold 成人の日 and 建国記念の日
DEFAULT_WEEKS = 6
TOKYO = ZoneInfo("Asia/Tokyo")
STAFF_DOMAIN = "tsunagu-support.co.jp"
MAIN_LINE = "+81355550100"  # 03-5555-0100, our switchboard

# -- the directory ------------------------------------------------------------------------------

_OFFICE_HOURS = (
    TimeInterval(start=time(9), end=time(12)),
    TimeInterval(start=time(13), end=time(18)),
)
JP_OFFICE = BusinessCalendar(
    calendar_id="jp-office",
    timezone="Asia/Tokyo",
    weekly_hours={day: _OFFICE_HOURS for day in range(5)},
    holiday_country="JP",
    # 年末年始: the office is closed from 29 December to 3 January, beyond the public holidays.
    extra_holidays=frozenset(
        {date(y, 12, d) for y in (2025, 2026, 2027) for d in (29, 30, 31)}
        | {date(y, 1, d) for y in (2026, 2027, 2028) for d in (2, 3)}
    ),
)
ALWAYS_OPEN = BusinessCalendar(calendar_id="always-tokyo", timezone="Asia/Tokyo", always_open=True)

JP_DEFAULT = SlaPolicy(policy_id="jp-default", first_response=SameDayOrNextMorning())
LOGISTICS = SlaPolicy(
    policy_id="logistics-24x7",
    first_response=CalendarDuration(minutes=60),
    follow_up=CalendarDuration(minutes=60),
    answer_target_seconds=15,
    # Short status calls do not answer an e-mail; only a real conversation does.
    cross_channel=CrossChannelRule(min_call_seconds=120),
    silence_business_days=None,
)
BUSINESS_4H = SlaPolicy(
    policy_id="business-4h",
    first_response=BusinessDuration(minutes=240),
    follow_up=BusinessDuration(minutes=240),
)
BUSINESS_2H = BUSINESS_4H.model_copy(
    update={
        "version": 2,
        "first_response": BusinessDuration(minutes=120),
        "follow_up": BusinessDuration(minutes=120),
    }
)

_STAFF = (
    Contact(name="田中 健", email=f"tanaka@{STAFF_DOMAIN}", phone="+81355550101", role="営業"),
    Contact(
        name="鈴木 美咲", email=f"suzuki@{STAFF_DOMAIN}", phone="+81355550102", role="物流窓口"
    ),
    Contact(name="佐藤 翔", email=f"sato@{STAFF_DOMAIN}", phone="+81355550103", role="営業"),
    Contact(
        name="高橋 愛", email=f"takahashi@{STAFF_DOMAIN}", phone="+81355550104", role="サポート"
    ),
    Contact(name="山本 浩二", email=f"yamamoto@{STAFF_DOMAIN}", phone="+81355550110", role="部長"),
)
_ESCALATION = f"yamamoto@{STAFF_DOMAIN}"


def _staff(name: str) -> str:
    return f"{name}@{STAFF_DOMAIN}"


_CLIENTS = (
    Client(
        client_id="sakura-seiki",
        name="桜精機株式会社",
        domains=("sakura-seiki.co.jp",),
        phone_numbers=("+81527400100",),
        contacts=(
            Contact(name="山田 太郎", email="yamada@sakura-seiki.co.jp", phone="+81527400111"),
            Contact(name="伊藤 花子", email="ito@sakura-seiki.co.jp", phone="+81527400112"),
        ),
        owner=_staff("tanaka"),
        escalation_contact=_ESCALATION,
        policy_id="jp-default",
        calendar_id="jp-office",
    ),
    Client(
        client_id="hoshino-butsuryu",
        name="星野物流株式会社",
        domains=("hoshino-logi.co.jp",),
        phone_numbers=("+81456620200", "+81456620201"),
        contacts=(
            Contact(name="中村 誠", email="nakamura@hoshino-logi.co.jp", phone="+81456620211"),
            Contact(name="小林 由美", email="kobayashi@hoshino-logi.co.jp", phone="+81456620212"),
            Contact(name="配車センター", email="haisha@hoshino-logi.co.jp"),
        ),
        owner=_staff("suzuki"),
        escalation_contact=_ESCALATION,
        policy_id="logistics-24x7",
        calendar_id="always-tokyo",
    ),
    Client(
        client_id="minato-shoji",
        name="みなと商事株式会社",
        domains=("minato-shoji.co.jp",),
        phone_numbers=("+81335800300",),
        contacts=(
            Contact(name="加藤 大輔", email="kato@minato-shoji.co.jp", phone="+81335800311"),
            Contact(name="吉田 さくら", email="yoshida@minato-shoji.co.jp"),
        ),
        owner=_staff("sato"),
        escalation_contact=_ESCALATION,
        policy_id="business-4h",
        calendar_id="jp-office",
    ),
    Client(
        client_id="aozora-design",
        name="あおぞらデザイン事務所",
        # A small studio on free mail: only these full addresses identify it.
        addresses=("aozora.kimura@gmail.com", "mika_aozora@yahoo.co.jp"),
        phone_numbers=("+819012345678",),
        contacts=(
            Contact(name="木村 陽介", email="aozora.kimura@gmail.com", phone="+819012345678"),
            Contact(name="松本 美香", email="mika_aozora@yahoo.co.jp"),
        ),
        owner=_staff("takahashi"),
        escalation_contact=_ESCALATION,
        policy_id="jp-default",
        calendar_id="jp-office",
    ),
    Client(
        client_id="fujimi-kensetsu",
        name="富士見建設株式会社",
        domains=("fujimi-kensetsu.co.jp",),
        phone_numbers=("+81662100400",),
        contacts=(
            Contact(name="井上 修", email="inoue@fujimi-kensetsu.co.jp", phone="+81662100411"),
            Contact(name="木下 恵", email="kinoshita@fujimi-kensetsu.co.jp"),
        ),
        owner=_staff("tanaka"),
        escalation_contact=_ESCALATION,
        policy_id="jp-default",
        calendar_id="jp-office",
    ),
)


def build_directory() -> ClientDirectory:
    """The demo client directory (clients, staff, policies and calendars)."""
    return ClientDirectory(
        clients=_CLIENTS,
        staff=StaffDirectory(domains=(STAFF_DOMAIN,), phone_numbers=(MAIN_LINE,), members=_STAFF),
        policies=(JP_DEFAULT, LOGISTICS, BUSINESS_4H),
        calendars=(JP_OFFICE, ALWAYS_OPEN),
    )


def directory_yaml(directory: ClientDirectory) -> str:
    """The directory as YAML in the layout ``producers.directory_io`` reads back."""
    data = directory.model_dump(mode="json")
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


# -- the event log ------------------------------------------------------------------------------

_SUBJECTS = (
    "お見積もりのご依頼",
    "納期についてのご確認",
    "請求書の件",
    "仕様変更のご相談",
    "打ち合わせ日程の調整",
    "出荷状況の確認",
    "不具合のご報告",
    "契約更新について",
    "資料送付のお願い",
    "ご提案内容への質問",
)


@dataclass(frozen=True)
class DemoData:
    """A generated demo: the directory and the event log in event-time order."""

    directory: ClientDirectory
    events: tuple[Event, ...]
    now: datetime | None = None  # live mode: the instant the log was laid out around


@dataclass
class _Log:
    """Builds events with stable ids; ``tag`` keeps ids of different runs apart."""

    tag: str
    rng: random.Random
    events: list[Event] = field(default_factory=list)
    counter: int = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        digest = hashlib.sha256(f"{self.tag}|{self.counter}".encode()).hexdigest()[:24]
        return f"{prefix}:demo-{digest}"

    def thread(self) -> str:
        """A fresh e-mail thread key."""
        return self._id("email-thread")

    def _recorded(self, at: datetime) -> datetime:
        # Integrations export with a small lag; the engine runs on occurred_at.
        return at + timedelta(seconds=self.rng.randint(5, 90))

    def add(self, **fields: object) -> InteractionEvent:
        at = fields["occurred_at"]
        assert isinstance(at, datetime)
        prefix = str(fields.pop("prefix"))
        event = InteractionEvent.model_validate(
            {
                "event_id": self._id(prefix),
                "recorded_at": self._recorded(at),
                "source": "demo",
                **fields,
            }
        )
        self.events.append(event)
        return event

    def email_in(
        self,
        client: Client,
        at: datetime,
        thread: str,
        subject: str,
        *,
        contact: int = 0,
        auto: bool = False,
    ) -> InteractionEvent:
        flags = frozenset({Flag.AUTO_REPLY}) if auto else frozenset()
        return self.add(
            prefix="email",
            channel=Channel.EMAIL,
            kind=Kind.MESSAGE,
            direction=Direction.INBOUND,
            occurred_at=at,
            client_id=client.client_id,
            thread_key=thread,
            counterpart=_contact_email(client, contact),
            staff=client.owner,
            flags=flags,
            subject=subject,
        )

    def email_out(
        self, client: Client, at: datetime, thread: str, subject: str, *, contact: int = 0
    ) -> InteractionEvent:
        return self.add(
            prefix="email",
            channel=Channel.EMAIL,
            kind=Kind.MESSAGE,
            direction=Direction.OUTBOUND,
            occurred_at=at,
            client_id=client.client_id,
            thread_key=thread,
            counterpart=_contact_email(client, contact),
            staff=client.owner,
            subject=subject if subject.startswith("Re:") else f"Re: {subject}",
        )

    def email_internal(self, client: Client, at: datetime, thread: str, subject: str) -> None:
        self.add(
            prefix="email",
            channel=Channel.EMAIL,
            kind=Kind.MESSAGE,
            direction=Direction.INTERNAL,
            occurred_at=at,
            client_id=client.client_id,
            thread_key=thread,
            staff=client.owner,
            subject=f"[社内] {subject}",
        )

    def waive(self, client: Client, at: datetime, thread: str) -> None:
        self.add(
            prefix="waiver",
            channel=Channel.EMAIL,
            kind=Kind.NO_REPLY_NEEDED,
            direction=Direction.INTERNAL,
            occurred_at=at,
            client_id=client.client_id,
            thread_key=thread,
            staff=client.owner,
        )

    def call(
        self,
        client: Client,
        at: datetime,
        direction: Direction,
        outcome: CallOutcome,
        *,
        wait: float | None = None,
        duration: float | None = None,
    ) -> InteractionEvent:
        return self.add(
            prefix="call",
            channel=Channel.PHONE,
            kind=Kind.CALL,
            direction=direction,
            occurred_at=at,
            client_id=client.client_id,
            counterpart=client.phone_numbers[0],
            staff=MAIN_LINE,
            call_outcome=outcome,
            wait_seconds=wait,
            duration_seconds=duration,
        )

    def voicemail(self, client: Client, at: datetime) -> None:
        self.add(
            prefix="voicemail",
            channel=Channel.PHONE,
            kind=Kind.VOICEMAIL,
            direction=Direction.INBOUND,
            occurred_at=at,
            client_id=client.client_id,
            counterpart=client.phone_numbers[0],
            staff=MAIN_LINE,
            duration_seconds=float(self.rng.randint(15, 60)),
        )

    def meeting(
        self, client: Client, at: datetime, minutes: int, subject: str, *, held: bool = True
    ) -> None:
        flags = {Flag.CLIENT_ATTENDEE, Flag.HELD if held else Flag.CANCELLED}
        self.add(
            prefix="meeting",
            channel=Channel.MEETING,
            kind=Kind.MEETING,
            direction=Direction.OUTBOUND,
            occurred_at=at,
            client_id=client.client_id,
            counterpart=_contact_email(client, 0),
            staff=client.owner,
            flags=frozenset(flags),
            duration_seconds=float(minutes * 60),
            subject=subject,
        )

    def visit(self, client: Client, at: datetime, minutes: int, subject: str) -> None:
        self.add(
            prefix="visit",
            channel=Channel.VISIT,
            kind=Kind.VISIT,
            direction=Direction.OUTBOUND,
            occurred_at=at,
            client_id=client.client_id,
            staff=client.owner,
            duration_seconds=float(minutes * 60),
            subject=subject,
        )


def _contact_email(client: Client, index: int) -> str:
    emails = [c.email for c in client.contacts if c.email]
    return emails[index % len(emails)]


def _client(client_id: str) -> Client:
    return next(c for c in _CLIENTS if c.client_id == client_id)


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TOKYO)


def _business_days(start: date, end: date) -> list[date]:
    clock = clock_for(JP_OFFICE)
    days = []
    day = start
    while day < end:
        if clock.is_business_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def _policy_events(log: _Log, at: datetime) -> None:
    policies = {p.policy_id: p for p in (JP_DEFAULT, LOGISTICS, BUSINESS_4H)}
    calendars = {c.calendar_id: c for c in (JP_OFFICE, ALWAYS_OPEN)}
    for client in _CLIENTS:
        log.events.append(
            _policy_change(
                log, client, at, policies[client.policy_id], calendars[client.calendar_id]
            )
        )


def _policy_change(
    log: _Log, client: Client, at: datetime, policy: SlaPolicy, calendar: BusinessCalendar
) -> ClientPolicyChanged:
    return ClientPolicyChanged(
        event_id=log._id("policy"),
        client_id=client.client_id,
        occurred_at=at,
        recorded_at=at,
        policy=policy,
        calendar=calendar,
    )


def _core(log: _Log, bd: Sequence[date]) -> None:
    """The scripted stories every seed carries (see the module docstring)."""
    sakura, hoshino, minato = (
        _client("sakura-seiki"),
        _client("hoshino-butsuryu"),
        _client("minato-shoji"),
    )
    aozora = _client("aozora-design")
    # 桜精機: three fast answers (trust up to 信頼), then answers on other channels.
    for i, (hh, mm, reply) in enumerate(((10, 12, 28), (11, 5, 25), (9, 20, 25))):
        th = log.thread()
        subject = _SUBJECTS[i]
        log.email_in(sakura, _at(bd[i], hh, mm), th, subject, contact=i)
        log.email_out(sakura, _at(bd[i], hh, mm) + timedelta(minutes=reply), th, subject, contact=i)
    th = log.thread()
    log.email_in(sakura, _at(bd[3], 14, 10), th, "納期についてのご確認")
    # Cross-channel: a 4-minute call answers the e-mail (the policy allows calls of 60 s+).
    log.call(sakura, _at(bd[3], 14, 35), Direction.OUTBOUND, CallOutcome.ANSWERED, duration=240)
    th = log.thread()
    log.email_in(sakura, _at(bd[5], 16, 20), th, "仕様変更のご相談", contact=1)  # after cut-off
    log.meeting(sakura, _at(bd[6], 9, 30), 45, "仕様変更の打ち合わせ")  # answers it next morning
    log.email_in(sakura, _at(bd[6], 11, 0), log.thread(), "自動応答: 不在のお知らせ", auto=True)
    th = log.thread()
    log.email_in(sakura, _at(bd[7], 13, 0), th, "ありがとうございました")
    log.waive(sakura, _at(bd[7], 13, 20), th)  # 「お礼」 needs no reply
    log.visit(sakura, _at(bd[8], 14, 0), 90, "工場訪問・定例会")

    # 星野物流 (24x7, 60 min): a good start (trust up), then the thin night desk (trust down).
    d0 = bd[0]
    th = log.thread()
    log.email_in(hoshino, _at(d0, 10, 0), th, "出荷状況の確認")
    log.email_out(hoshino, _at(d0, 10, 12), th, "出荷状況の確認")
    log.call(hoshino, _at(d0, 11, 30), Direction.INBOUND, CallOutcome.MISSED, wait=25)
    log.call(hoshino, _at(d0, 11, 41), Direction.OUTBOUND, CallOutcome.ANSWERED, duration=70)
    th = log.thread()
    log.email_in(hoshino, _at(d0, 14, 0), th, "配送ルート変更のお願い", contact=1)
    log.email_out(hoshino, _at(d0, 14, 20), th, "配送ルート変更のお願い", contact=1)
    night = d0 + timedelta(days=2)
    th = log.thread()
    log.email_in(hoshino, _at(night, 23, 10), th, "【至急】配送遅延について", contact=2)
    log.email_out(hoshino, _at(night + timedelta(days=1), 8, 40), th, "【至急】配送遅延について")
    after = night + timedelta(days=1)
    log.call(hoshino, _at(after, 2, 30), Direction.INBOUND, CallOutcome.ABANDONED, wait=95)
    log.call(hoshino, _at(after, 9, 5), Direction.OUTBOUND, CallOutcome.ANSWERED, duration=80)
    log.voicemail(hoshino, _at(after, 22, 45))
    log.call(
        hoshino,
        _at(after + timedelta(days=1), 7, 50),
        Direction.OUTBOUND,
        CallOutcome.ANSWERED,
        duration=95,
    )

    # みなと商事 (4 business hours): a late answer (the budget skips the lunch hour).
    th = log.thread()
    log.email_in(minato, _at(bd[2], 9, 30), th, "契約更新について")
    log.email_out(minato, _at(bd[2], 15, 10), th, "契約更新について")
    th = log.thread()
    log.email_in(minato, _at(bd[4], 10, 0), th, "請求書の件", contact=1)
    log.email_out(minato, _at(bd[4], 11, 15), th, "請求書の件", contact=1)

    # あおぞらデザイン: a kick-off meeting, then nobody reaches out for ten business days.
    log.meeting(aozora, _at(bd[0], 15, 0), 60, "ロゴ刷新キックオフ")
    th = log.thread()
    log.email_in(aozora, _at(bd[12], 10, 30), th, "ご無沙汰しております", contact=1)
    log.email_out(aozora, _at(bd[12], 16, 45), th, "ご無沙汰しております", contact=1)


@dataclass(frozen=True)
class _Profile:
    """How busy a client is and how fast we answer it (filler)."""

    emails_per_day: float
    reply_minutes: tuple[float, float]  # lognormal mu, sigma of the reply delay in minutes
    calls_per_day: float
    answer_rate: float
    followup_rate: float


_PROFILES = {
    "sakura-seiki": _Profile(1.4, (3.3, 0.6), 0.8, 0.9, 0.3),
    "hoshino-butsuryu": _Profile(2.5, (3.0, 0.9), 2.5, 0.75, 0.2),
    "minato-shoji": _Profile(1.2, (4.6, 0.7), 0.6, 0.85, 0.25),
    "fujimi-kensetsu": _Profile(0.9, (4.2, 0.8), 0.7, 0.8, 0.2),
}


def _poisson(rng: random.Random, mean: float) -> int:
    count, acc = 0, rng.expovariate(1.0)
    while acc < mean:
        count += 1
        acc += rng.expovariate(1.0)
    return count


def _filler(log: _Log, days: Sequence[date], stop: datetime | None) -> None:
    """Seeded day-to-day traffic for every client except the silent one."""
    rng = log.rng
    business = set(_business_days(days[0], days[-1] + timedelta(days=1))) if days else set()
    for client_id, prof in _PROFILES.items():
        client = _client(client_id)
        always = client.calendar_id == ALWAYS_OPEN.calendar_id
        for day in days:
            if not always and day not in business:
                continue
            for _ in range(_poisson(rng, prof.emails_per_day)):
                hour = rng.uniform(0, 24) if always else rng.uniform(9, 17.5)
                opened = _at(day, 0) + _minutes(hour * 60)
                _email_thread(log, client, prof, opened, always, stop)
            for _ in range(_poisson(rng, prof.calls_per_day)):
                hour = rng.uniform(6, 23) if always else rng.uniform(9, 17.8)
                _call(log, client, prof, _at(day, 0) + _minutes(hour * 60), always, stop)
        if client_id == "fujimi-kensetsu" and len(days) > 6:
            log.meeting(client, _at(days[5], 10, 0), 60, "定例会", held=False)  # cancelled
            log.meeting(client, _at(days[6], 10, 0), 60, "定例会（振替）")


def _email_thread(
    log: _Log, client: Client, prof: _Profile, opened: datetime, always: bool, stop: datetime | None
) -> None:
    rng = log.rng
    if stop is not None and opened >= stop:
        return
    th = log.thread()
    subject = rng.choice(_SUBJECTS)
    contact = rng.randrange(len(client.contacts))
    log.email_in(client, opened, th, subject, contact=contact)
    mu, sigma = prof.reply_minutes
    if always and not 7 <= opened.astimezone(TOKYO).hour < 22:
        mu += 1.8  # the night desk is slow
    reply = _in_hours(opened + _minutes(rng.lognormvariate(mu, sigma)), always)
    if stop is not None and reply >= stop:
        return
    log.email_out(client, reply, th, subject, contact=contact)
    if rng.random() < prof.followup_rate:
        again = _in_hours(reply + _minutes(rng.uniform(20, 300)), always)
        answer = _in_hours(again + _minutes(rng.lognormvariate(mu, sigma)), always)
        if stop is None or answer < stop:
            log.email_in(client, again, th, f"Re: {subject}", contact=contact)
            log.email_out(client, answer, th, subject, contact=contact)
    if rng.random() < 0.1:
        log.email_internal(client, reply + timedelta(minutes=5), th, subject)


def _call(
    log: _Log, client: Client, prof: _Profile, at: datetime, always: bool, stop: datetime | None
) -> None:
    rng = log.rng
    if stop is not None and at >= stop:
        return
    if rng.random() < prof.answer_rate:
        wait = round(rng.expovariate(1 / 12), 1)
        log.call(
            client,
            at,
            Direction.INBOUND,
            CallOutcome.ANSWERED,
            wait=wait,
            duration=float(rng.randint(40, 900)),
        )
        return
    outcome = CallOutcome.ABANDONED if rng.random() < 0.5 else CallOutcome.MISSED
    wait = round(rng.uniform(30, 150) if outcome is CallOutcome.ABANDONED else 30.0, 1)
    log.call(client, at, Direction.INBOUND, outcome, wait=wait)
    back = _in_hours(at + _minutes(rng.lognormvariate(3.2, 0.8)), always)
    if stop is None or back < stop:
        # Call-backs are short status calls (under the 24x7 client's 120 s cross-channel bar).
        log.call(
            client,
            back,
            Direction.OUTBOUND,
            CallOutcome.ANSWERED,
            duration=float(rng.randint(30, 110)),
        )


def _minutes(value: float) -> timedelta:
    """Whole seconds: real systems stamp interactions to the second."""
    return timedelta(seconds=round(value * 60))


def _in_hours(t: datetime, always: bool) -> datetime:
    """Move a staff action into office hours (JST business days) unless the client is 24x7."""
    if always:
        return t
    clock = clock_for(JP_OFFICE)
    local = t.astimezone(TOKYO)
    if clock.is_open(local):
        return local
    if local.hour < 9 and clock.is_business_day(local.date()):
        return _at(local.date(), 9, 15)  # before opening: first thing this morning
    if 12 <= local.hour < 13 and clock.is_business_day(local.date()):
        return _at(local.date(), 13, 5)  # lunch: right after it
    return clock.next_business_day_at(local, time(9, 15)).astimezone(TOKYO)


def _ordered(events: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(sorted(events, key=lambda e: (e.occurred_at, e.recorded_at, e.event_id)))


def generate(
    seed: int = DEFAULT_SEED, *, start: date = DEFAULT_START, weeks: int = DEFAULT_WEEKS
) -> DemoData:
    """A historic demo: ``weeks`` weeks of interactions from ``start`` (see module docstring)."""
    if weeks < 3:
        raise ValueError("the scripted stories need at least three weeks")
    log = _Log(tag=f"history:{seed}:{start.isoformat()}", rng=random.Random(seed))
    end = start + timedelta(weeks=weeks)
    bd = _business_days(start, end)
    _policy_events(log, _at(start - timedelta(days=3), 9))
    _core(log, bd)
    minato = _client("minato-shoji")
    # Mid-way change: after a complaint, みなと商事 gets two business hours instead of four. An
    # e-mail that arrived before opening time is open when the change lands (deadline moves).
    half = bd[len(bd) // 2]
    th = log.thread()
    log.email_in(minato, _at(half, 8, 40), th, "至急：発注内容の訂正")
    log.events.append(_policy_change(log, minato, _at(half, 9, 0), BUSINESS_2H, JP_OFFICE))
    log.email_out(minato, _at(half, 10, 30), th, "至急：発注内容の訂正")
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    _filler(log, [d for d in days if d >= bd[9]], stop=None)
    return DemoData(directory=build_directory(), events=_ordered(log.events))


def generate_live(now: datetime, seed: int = DEFAULT_SEED, *, days: int = 28) -> DemoData:
    """A live demo around ``now``: history before it, in-flight work and events scheduled after.

    The 24x7 client's obligations have warnings and breaches a few minutes after ``now`` and
    replies arriving during the demo, whatever the time of day in Tokyo.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(TOKYO)
    log = _Log(tag=f"live:{seed}:{now.isoformat()}", rng=random.Random(seed))
    start = (now - timedelta(days=days)).date()
    bd = [d for d in _business_days(start, now.date()) if d < now.date()]
    if len(bd) < 14:
        raise ValueError("a live demo needs at least 14 business days of history")
    _policy_events(log, _at(start - timedelta(days=1), 9))
    _core(log, bd)
    quiet = now - timedelta(hours=2)  # history stops here; the in-flight part follows
    calendar_days = [start + timedelta(days=i) for i in range(days)]
    _filler(log, [d for d in calendar_days if d >= bd[9]], stop=quiet)
    _in_flight(log, now)
    return DemoData(directory=build_directory(), events=_ordered(log.events), now=now)


def _in_flight(log: _Log, now: datetime) -> None:
    """Open work at ``now`` with warnings, breaches and answers due during the demo."""
    hoshino, sakura = _client("hoshino-butsuryu"), _client("sakura-seiki")
    minute = timedelta(minutes=1)
    threads = [log.thread() for _ in range(5)]
    # 60-minute SLA: opened 57 min ago → breach at +3 min; 50 min ago → breach at +10 min,
    # answered late at +12; 20 min ago → warnings at +10/+25/+34, answered at +8 (met).
    log.email_in(hoshino, now - 57 * minute, threads[0], "【至急】荷物が届いていません")
    log.email_in(hoshino, now - 50 * minute, threads[1], "配送ルート変更のお願い", contact=1)
    log.email_in(hoshino, now - 20 * minute, threads[2], "出荷状況の確認", contact=2)
    log.call(hoshino, now - 40 * minute, Direction.INBOUND, CallOutcome.ABANDONED, wait=75)
    log.email_in(hoshino, now - 5 * minute, threads[3], "明日の集荷について")
    log.email_in(sakura, now - 30 * minute, threads[4], "お見積もりのご依頼")
    # During the demo.
    log.call(hoshino, now + 5 * minute, Direction.OUTBOUND, CallOutcome.ANSWERED, duration=65)
    log.email_out(hoshino, now + 8 * minute, threads[2], "出荷状況の確認", contact=2)
    log.email_out(hoshino, now + 12 * minute, threads[1], "配送ルート変更のお願い", contact=1)
    log.email_in(hoshino, now + 2 * minute, log.thread(), "追加のお問い合わせ", contact=1)
    log.call(hoshino, now + 6 * minute, Direction.INBOUND, CallOutcome.MISSED, wait=30)


def split_due(events: Iterable[Event], now: datetime) -> tuple[list[Event], list[Event]]:
    """(events at or before ``now``, events after it) — a live driver emits the latter on time."""
    past: list[Event] = []
    future: list[Event] = []
    for event in events:
        (past if event.occurred_at <= now else future).append(event)
    return past, future


def events_jsonl(events: Iterable[Event]) -> bytes:
    """Canonical JSON lines (the ``shinrai replay`` / ``produce --format jsonl`` input)."""
    return b"".join(e.model_dump_json().encode() + b"\n" for e in events)


def write(data: DemoData, out: Path) -> dict[str, Path]:
    """Write ``clients.yaml`` and ``events.jsonl`` (live: plus ``scheduled.jsonl``) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"directory": out / "clients.yaml", "events": out / "events.jsonl"}
    paths["directory"].write_text(directory_yaml(data.directory), encoding="utf-8")
    past, future = (
        split_due(data.events, data.now) if data.now is not None else (list(data.events), [])
    )
    paths["events"].write_bytes(events_jsonl(past))
    if data.now is not None:
        paths["scheduled"] = out / "scheduled.jsonl"
        paths["scheduled"].write_bytes(events_jsonl(future))
    return paths
