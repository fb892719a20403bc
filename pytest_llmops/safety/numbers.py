"""Words that name a number as something other than personal data: "order 0123 4567 89", "ISBN 0 306 40615 2".

Shared by the card and phone detectors: a Luhn-valid order number or a
phone-shaped invoice number is not PII when the text says what it is.
Standard library only.
"""

from __future__ import annotations

import re

_OTHER_NUMBER_BEFORE_RE = re.compile(
    r"\b(?:order|invoice|ticket|tracking|ref|reference|case|serial|sku|part|item|isbn|issn|ean|upc|gtin|version|"
    r"build|release|confirmation|booking|transaction|receipt|policy|patent|doi|pmid|zip|postcode|postal code|"
    r"shipment|parcel|batch|lot|model)"
    r"s?\b\.?\s*(?:no\.?|number|#|nr\.?|code|id)?\s*[:#]?\s*$",
    re.IGNORECASE,
)


def named_as_other_number(text: str, start: int) -> bool:
    """The words just before ``text[start:]`` say the number there is an order, invoice, ISBN, version..."""
    return _OTHER_NUMBER_BEFORE_RE.search(text, max(0, start - 40), start) is not None
