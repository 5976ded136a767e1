"""Participant resolution: which client (or our staff) an address or phone number belongs to.

Rules (DESIGN §3):

- An address listed on a client (``Client.addresses``) always resolves to that client.
- A free-mail domain (gmail.com, yahoo.*, docomo.ne.jp, ...) never identifies a client by itself:
  thousands of unrelated people share it, so only full listed addresses resolve.
- A company domain resolves by domain, including its subdomains (``mail.acme.co.jp`` belongs to
  the client of ``acme.co.jp``).
- Anything unknown stays ``None``: we never guess. A key claimed by two clients is ambiguous and
  also resolves to ``None`` (the directory should be fixed; guessing would misattribute SLAs).
- Phone numbers are compared in E.164 after normalisation with ``phonenumbers``.

The resolver is pure (no I/O) and is built once per directory version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from functools import lru_cache

import phonenumbers

from schemas.directory import ClientDirectory
from schemas.events import Direction

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Global webmail. A trailing ".*" matches the label followed by any suffix
        # (yahoo.com, yahoo.co.uk, yahoo.co.jp, ...).
        "gmail.com",
        "googlemail.com",
        "yahoo.*",
        "ymail.com",
        "rocketmail.com",
        "outlook.*",
        "hotmail.*",
        "live.*",
        "msn.com",
        "passport.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.*",
        "aim.com",
        "gmx.*",
        "web.de",
        "mail.com",
        "email.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "fastmail.com",
        "fastmail.fm",
        "zoho.com",
        "zohomail.com",
        "hey.com",
        "yandex.*",
        "ya.ru",
        "mail.ru",
        "inbox.ru",
        "bk.ru",
        "list.ru",
        "rambler.ru",
        "qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "rediffmail.com",
        "libero.it",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "t-online.de",
        "freenet.de",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "btinternet.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "cox.net",
        "earthlink.net",
        # Japan: carrier mail and common ISP/webmail.
        "yahoo.co.jp",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "disney.ne.jp",
        "ymobile.ne.jp",
        "y-mobile.ne.jp",
        "willcom.com",
        "rakuten.jp",
        "nifty.com",
        "biglobe.ne.jp",
        "ocn.ne.jp",
        "so-net.ne.jp",
        "excite.co.jp",
        "livedoor.com",
    }
)
"""Built-in free-mail domains (full addresses only ever identify a person there)."""


@lru_cache(maxsize=65536)  # pure; an e-mail input repeats the same few hundred addresses
def _address(raw: str) -> str | None:
    """The lower-cased bare address of ``raw`` ("Name <a@b.c>" or "a@b.c"), None if unusable."""
    _, addr = parseaddr(raw.strip())
    addr = addr.strip().strip("<>").lower()
    local, sep, domain = addr.rpartition("@")
    if not sep or not local or not domain or "." not in domain:
        return None
    return f"{local}@{domain.rstrip('.')}"


# Second-level labels of country-code public suffixes (co.uk, com.br, ne.jp, ...). A full Public
# Suffix List would be exact; this is enough to keep "yahoo.*" from matching "yahoo.acme.com".
_SECOND_LEVEL = frozenset({"co", "com", "ne", "or", "net", "org", "ac", "gov", "edu", "go"})


def _public_suffix_like(rest: str) -> bool:
    """True for "com", "fr", "co.jp", "com.br"; false for "acme.com" or deeper names."""
    labels = rest.split(".")
    return len(labels) == 1 or (len(labels) == 2 and labels[0] in _SECOND_LEVEL)


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def _parents(domain: str) -> Iterable[str]:
    """``a.b.c.com`` → a.b.c.com, b.c.com, c.com (never the bare TLD)."""
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        yield ".".join(labels[i:])


class Resolver:
    """Resolve addresses and phone numbers to a client id or to our staff.

    ``default_region`` is the ISO country used for numbers written without a country code
    (e.g. ``"JP"`` turns ``03-1234-5678`` into ``+81312345678``).
    """

    def __init__(
        self,
        directory: ClientDirectory,
        *,
        default_region: str = "US",
        free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS,
    ) -> None:
        self.directory = directory
        self.default_region = default_region.upper()
        self._free_exact = frozenset(d.lower() for d in free_mail_domains if not d.endswith(".*"))
        self._free_labels = frozenset(d[:-2].lower() for d in free_mail_domains if d.endswith(".*"))

        by_address: dict[str, set[str]] = defaultdict(set)
        by_domain: dict[str, set[str]] = defaultdict(set)
        by_phone: dict[str, set[str]] = defaultdict(set)
        for client in directory.clients:
            for address in client.addresses:
                by_address[address].add(client.client_id)
            for contact in client.contacts:
                if contact.email:
                    by_address[contact.email].add(client.client_id)
                if contact.phone:
                    by_phone[contact.phone].add(client.client_id)
            for domain in client.domains:
                by_domain[domain].add(client.client_id)
            for number in client.phone_numbers:
                by_phone[number].add(client.client_id)
        self._by_address = _unique(by_address)
        self._by_domain = _unique(by_domain)
        self._by_phone = _unique(by_phone)

        staff = directory.staff
        self._staff_domains = frozenset(staff.domains)
        self._staff_addresses = frozenset(m.email for m in staff.members if m.email)
        self._staff_phones = frozenset(staff.phone_numbers) | frozenset(
            m.phone for m in staff.members if m.phone
        )
        self._groups = frozenset(staff.groups)

    # -- e-mail ---------------------------------------------------------------------------------

    def is_free_mail(self, domain: str) -> bool:
        """True for a free-mail domain (exact entry, or ``label.*`` pattern on its first label)."""
        domain = domain.lower().rstrip(".")
        if domain in self._free_exact:
            return True
        first, dot, rest = domain.partition(".")
        return bool(dot) and first in self._free_labels and _public_suffix_like(rest)

    def client_for_email(self, address: str) -> str | None:
        """The client id of ``address`` (bare or "Name <addr>"), or None when unknown/ambiguous."""
        addr = _address(address)
        if addr is None:
            return None
        if addr in self._by_address:
            return self._by_address[addr]
        domain = _domain(addr)
        if self.is_free_mail(domain):
            return None  # free mail: full address only
        for candidate in _parents(domain):
            if self.is_free_mail(candidate):
                return None  # e.g. a subdomain of a free-mail provider
            if candidate in self._by_domain:
                return self._by_domain[candidate]
        return None

    def is_staff_email(self, address: str) -> bool:
        """True when ``address`` is one of ours (staff domain or subdomain, or a staff member)."""
        addr = _address(address)
        if addr is None:
            return False
        if addr in self._staff_addresses:
            return True
        return any(d in self._staff_domains for d in _parents(_domain(addr)))

    def is_group_email(self, address: str, lists: Iterable[str] = ()) -> bool:
        """True for a list or group address: declared in the directory or in ``lists`` (the
        message's own List-Post / List-Id addresses). A group is never staff nor a client."""
        addr = _address(address)
        return addr is not None and (addr in self._groups or addr in lists)

    def clients_reached(
        self, recipients: Iterable[str], lists: Iterable[str] = ()
    ) -> list[tuple[str, str]]:
        """(client id, address) of every distinct client among ``recipients``, in order.

        Staff and group addresses are skipped (a group reaches the clients of a conversation,
        which only the conversation knows: see ``email_threads``).
        """
        group_set = frozenset(lists)
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for raw in recipients:
            addr = _address(raw)
            if addr is None or self.is_staff_email(addr) or self.is_group_email(addr, group_set):
                continue
            client = self.client_for_email(addr)
            if client is not None and client not in seen:
                seen.add(client)
                out.append((client, addr))
        return out

    def direction_for_email(
        self, sender: str, recipients: Iterable[str], lists: Iterable[str] = ()
    ) -> tuple[Direction, str | None, str | None]:
        """(direction, client_id, counterpart address) of a message.

        ``lists``: the addresses of the list that distributed the message (List-Post, List-Id);
        they and the directory's ``staff.groups`` are group addresses, neither staff nor client,
        even under one of our domains (``users@lists.example.com`` when we are example.com).

        staff → client is outbound (counterpart: the first client recipient); staff → a group
        with no client recipient is outbound with no client yet (the conversation decides
        which clients it reaches); client → staff or group is inbound
        (counterpart: the sender); staff → staff only is internal; everything else is unknown
        (the client id and counterpart are still reported when known).
        """
        group_set = frozenset(a for a in (_address(x) for x in lists) if a is not None)
        from_addr = _address(sender)
        to_addrs = [a for a in (_address(r) for r in recipients) if a is not None]
        if from_addr is None or self.is_group_email(from_addr, group_set):
            # A list writing as itself (munged From without a usable Reply-To): nobody we know.
            return Direction.UNKNOWN, None, None
        groups = [a for a in to_addrs if self.is_group_email(a, group_set)]
        ours = [a for a in to_addrs if a not in groups and self.is_staff_email(a)]
        external = [a for a in to_addrs if a not in groups and a not in ours]
        if self.is_staff_email(from_addr):
            reached = self.clients_reached(external)
            if reached:
                return Direction.OUTBOUND, reached[0][0], reached[0][1]
            if groups:
                return Direction.OUTBOUND, None, None
            if not external and to_addrs:
                return Direction.INTERNAL, None, None
            return Direction.UNKNOWN, None, external[0] if external else None
        client = self.client_for_email(from_addr)
        if client is not None and (ours or groups):
            return Direction.INBOUND, client, from_addr
        return Direction.UNKNOWN, client, from_addr

    # -- phone ----------------------------------------------------------------------------------

    def normalise_phone(self, raw: str, region: str | None = None) -> str | None:
        """``raw`` in E.164 (``+81312345678``), or None when it is not a possible phone number.

        Accepts ``tel:`` and ``sip:user@host`` forms. Short internal extensions ("101") are not
        numbers and give None.
        """
        return normalise_phone(raw, region or self.default_region)

    def client_for_phone(self, raw: str, region: str | None = None) -> str | None:
        """The client id owning number ``raw``, or None when unknown/ambiguous/unparseable."""
        number = self.normalise_phone(raw, region)
        return None if number is None else self._by_phone.get(number)

    def is_staff_phone(self, raw: str, region: str | None = None) -> bool:
        """True when ``raw`` is one of our numbers."""
        number = self.normalise_phone(raw, region)
        return number is not None and number in self._staff_phones


def normalise_phone(raw: str, region: str = "US") -> str | None:
    """E.164 form of ``raw`` parsed with ``region`` as the default country, or None."""
    text = raw.strip()
    lowered = text.lower()
    for prefix in ("tel:", "sips:", "sip:"):
        if lowered.startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.split("@", 1)[0].split(";", 1)[0].strip()
    digits = sum(ch.isdigit() for ch in text)
    if digits < 7 or digits > 17:
        return None
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _unique(index: Mapping[str, set[str]]) -> dict[str, str]:
    """Keep only keys claimed by exactly one client (ambiguous keys must not resolve)."""
    return {key: next(iter(ids)) for key, ids in index.items() if len(ids) == 1}
