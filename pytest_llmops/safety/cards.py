"""Payment card numbers: the Luhn checksum and the issuer (IIN) ranges with their lengths.

A card number is 12 to 19 digits: an issuer identification number (the first
1 to 8 digits) that names the network, the account number, and a Luhn check
digit. ``card_issuer`` names the network for a prefix and length, or says
``None``; together with ``luhn_valid`` it tells a card number from an order
number of the same length (about one random number in ten passes Luhn, and
far fewer also start with an issued prefix at an issued length).

The ranges are facts from public IIN tables: ISO/IEC 7812's major industry
identifiers, the English Wikipedia "Payment card number" IIN table (current
and earlier revisions, which keep ranges still found on issued cards: JCB's
15-digit 1800 and 2131, its pre-2005 3088-3349 blocks, Maestro 50 and 56-69,
Maestro 0604) and the networks' published ranges (Mastercard's 2-series
2221-2720 from 2017, Mir 2200-2204, RuPay, Troy, Verve). No code was copied.
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class IssuerRange:
    """Card numbers whose first ``len(low)`` digits lie in ``low..high`` and whose length is in ``lengths``."""

    network: str
    low: str
    high: str
    lengths: frozenset[int]

    def matches(self, digits: str) -> bool:
        return len(digits) in self.lengths and self.low <= digits[: len(self.low)] <= self.high


def _lengths(spec: str) -> frozenset[int]:
    """``"16"``, ``"16,18,19"`` or ``"12-19"`` as a set of lengths."""
    out: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


# network, prefix range ("34" or "2221-2720"), lengths. Longer (more specific) prefixes are
# tried first, so a co-branded range is named by its own network (Mir before Mastercard's 2-series).
_TABLE: tuple[tuple[str, str, str], ...] = (
    ("visa", "4", "13,16,19"),
    ("mastercard", "51-55", "16"),
    ("mastercard", "2221-2720", "16"),
    ("amex", "34", "15"),
    ("amex", "37", "15"),
    ("discover", "6011", "16-19"),
    ("discover", "644-649", "16-19"),
    ("discover", "65", "16-19"),
    ("diners", "300-305", "14-19"),
    ("diners", "3095", "14-19"),
    ("diners", "36", "14-19"),
    ("diners", "38-39", "14-19"),
    ("diners_enroute", "2014", "15"),
    ("diners_enroute", "2149", "15"),
    # JCB issues (and co-brands, with RuPay and LankaPay) across 35; 3528-3589 is its main block.
    ("jcb", "35", "16-19"),
    ("jcb", "3088-3094", "16"),
    ("jcb", "3096-3102", "16"),
    ("jcb", "3112-3120", "16"),
    ("jcb", "3158-3159", "16"),
    ("jcb", "3337-3349", "16"),
    ("jcb", "1800", "15"),
    ("jcb", "2131", "15"),
    ("unionpay", "62", "16-19"),
    ("unionpay", "81", "16-19"),
    ("china_t_union", "31", "19"),
    ("maestro", "50", "12-19"),
    ("maestro", "56-69", "12-19"),
    ("maestro", "0604", "12-19"),
    ("mir", "2200-2204", "16-19"),
    ("borica", "2205", "16"),
    ("rupay", "60", "16"),
    ("rupay", "508", "16"),
    ("rupay", "82", "16"),
    ("troy", "9792", "16"),
    ("uatp", "1", "15"),
    ("uzcard", "8600", "16"),
    ("humo", "9860", "16"),
    ("napas", "9704", "16,19"),
    ("gpn", "1946", "16,18,19"),
    ("dankort", "5019", "16"),
    ("verve", "506099-506198", "16,18,19"),
    ("verve", "507865-507964", "16,18,19"),
    ("verve", "650002-650027", "16,18,19"),
    ("interpayment", "636", "16-19"),
    ("instapayment", "637-639", "16"),
    ("laser", "6304", "16-19"),
    ("laser", "6706", "16-19"),
    ("laser", "6709", "16-19"),
    ("laser", "6771", "16-19"),
)


def _ranges() -> tuple[IssuerRange, ...]:
    ranges = []
    for network, prefix, lengths in _TABLE:
        low, _, high = prefix.partition("-")
        ranges.append(IssuerRange(network, low, high or low, _lengths(lengths)))
    return tuple(sorted(ranges, key=lambda r: -len(r.low)))


#: Every issuer range known here, most specific prefix first.
ISSUER_RANGES: tuple[IssuerRange, ...] = _ranges()

#: The lengths any network issues: a shorter or longer run of digits is no card number.
CARD_LENGTHS: frozenset[int] = frozenset().union(*(r.lengths for r in ISSUER_RANGES))


def card_issuer(digits: str) -> str | None:
    """The card network an issuer prefix and length belong to, or ``None`` for no known network."""
    for issuer_range in ISSUER_RANGES:
        if issuer_range.matches(digits):
            return issuer_range.network
    return None


def is_card_number(digits: str) -> bool:
    """``digits`` (digits only) is an issued length for its prefix and passes Luhn."""
    return len(digits) in CARD_LENGTHS and luhn_valid(digits) and card_issuer(digits) is not None
