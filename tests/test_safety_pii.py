"""PII and secret detection: typed spans with offsets, validation, allow-lists, redaction."""

from __future__ import annotations

import pytest

from pytest_llmops.assertions.safety import assert_no_pii
from pytest_llmops.safety.cards import card_issuer
from pytest_llmops.safety.pii import find_pii, iban_valid, luhn_valid, redact
from pytest_llmops.verdict import UnmeasuredError, Verdict


def kinds(text, **kwargs):
    return [(f.kind, f.text) for f in find_pii(text, **kwargs)]


def test_each_entity_type_is_found_with_its_offsets():
    text = (
        "Mail jane.roe@acme.io or call +44 20 7946 0958. Card 4111 1111 1111 1111, "
        "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, server 203.0.113.7."
    )
    found = find_pii(text)
    assert [(f.kind, f.text) for f in found] == [
        ("EMAIL_ADDRESS", "jane.roe@acme.io"),
        ("PHONE_NUMBER", "+44 20 7946 0958"),
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
        ("US_SSN", "123-45-6789"),
        ("IP_ADDRESS", "203.0.113.7"),
    ]
    for finding in found:
        assert text[finding.start : finding.end] == finding.text


def test_checksums_reject_lookalikes():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    assert kinds("order 4111 1111 1111 1112 shipped") == []  # fails Luhn
    assert kinds("ref GB82 WEST 1234 5698 7654 33") == []  # fails mod 97
    assert kinds("ticket 000-12-3456 and 666-12-3456") == []  # SSN areas never issued
    assert kinds("version 300.1.2.3 of the tool") == []  # not an IPv4 address


def test_phone_numbers_need_a_phone_shape_or_phone_words():
    assert kinds("Call me at 555-867-5309 tomorrow") == [("PHONE_NUMBER", "555-867-5309")]
    assert kinds("(978)645-9740x11144") == [("PHONE_NUMBER", "(978)645-9740x11144")]
    assert kinds("You can call 33 93 31") == [("PHONE_NUMBER", "33 93 31")]
    assert kinds("96 228011 office") == [("PHONE_NUMBER", "96 228011")]
    # The same digits without a phone word are a house number, a postcode, a licence.
    assert kinds("Mali 53144, Suite 568") == []
    assert kinds("call a taxi to 14 3684 Court Street") == []
    assert kinds("My driver's license number is 425700624") == []
    assert kinds("It costs $150-300 per call") == []


def test_ipv6_and_reserved_addresses():
    assert kinds("blocked from 2001:db8:85a3::8a2e:370:7334 today") == [("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")]
    assert kinds("bind to 127.0.0.1 or 0.0.0.0, never ::1") == []
    assert kinds("see std::vector in C++") == []


def test_api_keys_private_keys_and_assigned_secrets():
    github = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
    aws = "AKIA" + "ABCDEFGHIJKLMNOP"
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----"
    text = f"token {github}\naws_access_key_id = {aws}\n{pem}\nDB_PASSWORD=Tr0ub4dor&3x"
    found = find_pii(text)
    assert [(f.kind, f.detector) for f in found] == [
        ("API_KEY", "github_token"),
        ("API_KEY", "aws_access_key_id"),
        ("PRIVATE_KEY", "pem"),
        ("SECRET", "assignment"),
    ]
    assert found[-1].text == "Tr0ub4dor&3x"
    # Words and code that only name a secret are not one.
    assert kinds("the password is required; API_KEY = os.getenv('KEY'); const t = process.env.TOKEN") == []


def test_example_domains_are_not_personal():
    assert kinds("write to john@example.com or a@b.test") == []


def test_allow_by_type_and_by_value():
    text = "Reach support@acme.io or jane@gmail.com, phone +1 415 555 0100"
    assert kinds(text, allow=["email"]) == [("PHONE_NUMBER", "+1 415 555 0100")]
    assert kinds(text, allow=["support@acme.io", "+1 (415) 555-0100"]) == [("EMAIL_ADDRESS", "jane@gmail.com")]
    assert kinds(text, types=["phone"]) == [("PHONE_NUMBER", "+1 415 555 0100")]
    with pytest.raises(ValueError, match="unknown PII type 'passport'"):
        find_pii(text, types=["passport"])


def test_redact_replaces_each_finding():
    text = "Mail jane.roe@acme.io, card 4111-1111-1111-1111."
    assert redact(text) == "Mail [EMAIL_ADDRESS], card [CREDIT_CARD]."
    assert redact(text, replacement="<{n}>") == "Mail <1>, card <2>."
    assert redact(text, types=["email"]) == "Mail [EMAIL_ADDRESS], card 4111-1111-1111-1111."


def test_assert_no_pii_passes_clean_text_and_fails_with_masked_findings():
    assert assert_no_pii("The meeting is at 10:30 in room 4.").verdict is Verdict.PASS
    with pytest.raises(AssertionError) as info:
        assert_no_pii("Sure, her number is 4111 1111 1111 1111.")
    message = str(info.value)
    assert "pii = 1 (needs <= 0: fail)" in message
    assert "CREDIT_CARD at 20:39 '41***************11'" in message
    assert "text: Sure, her number is [CREDIT_CARD]." in message  # the log never shows the number


# ------------------------------------------------------------------ cards by issuer range


def card(prefix: str, length: int) -> str:
    """A Luhn-valid number of ``length`` digits starting with ``prefix`` (the body is arbitrary)."""
    body = (prefix + "3141592653589793238462")[: length - 1]
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@pytest.mark.parametrize(
    ("network", "prefix", "lengths"),
    [
        ("visa", "4", (13, 16, 19)),
        ("mastercard", "51", (16,)),
        ("mastercard", "55", (16,)),
        ("mastercard", "2221", (16,)),
        ("mastercard", "2720", (16,)),
        ("amex", "34", (15,)),
        ("amex", "37", (15,)),
        ("discover", "6011", (16, 19)),
        ("discover", "644", (16,)),
        ("discover", "65", (16, 19)),
        ("diners", "300", (14,)),
        ("diners", "36", (14, 16)),
        ("diners", "38", (16,)),
        ("jcb", "3528", (16, 19)),
        ("jcb", "3589", (16,)),
        ("jcb", "3500", (16,)),  # all of 35 is issued as JCB (co-brands included)
        ("jcb", "3088", (16,)),  # a pre-2005 block
        ("jcb", "1800", (15,)),  # the legacy 15-digit ranges
        ("jcb", "2131", (15,)),
        ("unionpay", "62", (16, 17, 18, 19)),
        ("maestro", "5018", (12, 13, 19)),
        ("maestro", "6759", (12, 16)),
        ("maestro", "0604", (12,)),
        ("mir", "2200", (16, 19)),
        ("mir", "2204", (16,)),
        ("rupay", "508", (16,)),
        ("troy", "9792", (16,)),
        ("uatp", "1", (15,)),
        ("verve", "506099", (16, 19)),
    ],
)
def test_every_issuer_range_and_length_is_found_as_a_card(network, prefix, lengths):
    for length in lengths:
        number = card(prefix, length)
        assert card_issuer(number) == network, number
        assert kinds(f"Charge {number} please") == [("CREDIT_CARD", number)]


def test_numbers_outside_the_issued_ranges_and_lengths_are_not_cards():
    assert card_issuer(card("2721", 16)) is None  # Mastercard's 2-series ends at 2720
    assert card_issuer(card("34", 16)) is None  # Amex is 15 digits
    assert card_issuer(card("4", 14)) is None  # Visa is 13, 16 or 19
    assert card_issuer(card("1800", 16)) is None  # legacy JCB is 15 digits
    assert kinds(f"Charge {card('2721', 16)} please") == []


def test_a_card_number_failing_luhn_is_not_a_card():
    for number in (card("4", 16), card("37", 15), card("3528", 16), card("5018", 12), card("1800", 15)):
        wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert not luhn_valid(wrong)
        assert [k for k, _ in kinds(f"Charge {wrong} please")] != ["CREDIT_CARD"], wrong


def test_cards_are_found_as_printed_and_not_when_grouped_like_phone_numbers():
    assert kinds("Amex 3782 822463 10005 on file") == [("CREDIT_CARD", "3782 822463 10005")]
    assert kinds("card 4111-1111-1111-1111") == [("CREDIT_CARD", "4111-1111-1111-1111")]
    nineteen = card("4", 19)
    printed = " ".join((nineteen[:4], nineteen[4:8], nineteen[8:12], nineteen[12:16], nineteen[16:]))
    assert kinds(f"card {printed}") == [("CREDIT_CARD", printed)]
    twelve = card("5018", 12)
    maestro = f"{twelve[:4]} {twelve[4:8]} {twelve[8:]}"
    assert kinds(f"Maestro {maestro}") == [("CREDIT_CARD", maestro)]
    # A Luhn-valid run that the text names as an order or an invoice number is that.
    assert kinds(f"invoice {twelve}") == []
    assert kinds(f"order #{card('4', 16)}") == []


# ------------------------------------------------------------------ phone numbers


@pytest.mark.parametrize(
    "number",
    [
        "+44 20 7946 0958",
        "+33 1 42 68 53 00",
        "+49 30 901820",
        "0049 30 901820",
        "+81 3-1234-5678",
        "(+30) 2103 456789",
        "+44 (0)20 7946 0958",
        "415.555.0100",
        "(415) 555-0100",
        "1 (786) 834-4978",
        "04 15 39 15 00",
        "080-9141-7776",
        "(0161) 496 0066",
        "0 32 406 81 24",
        "91 41 77 76",
        "13 5017-7153",
        "68/837-1046",
        "8 (066) 907-43-91",
    ],
)
def test_phone_numbers_in_international_and_national_formats_need_no_phone_word(number):
    assert kinds(f"Noted: {number}.") == [("PHONE_NUMBER", number)]


@pytest.mark.parametrize(
    "lookalike",
    [
        "2024 01 15",
        "15.01.2024",
        "01/15/2024",
        "02108-1234",  # ZIP+4
        "978-3-16-148410-0",  # ISBN-13
        "ISBN 0-8077-4543-X",
        "version 10.0.19041.1",
        "$1,299.99",
        "Order 0123 4567 89",
        "ticket 04 15 39 15 00",
        "10 000 000",
        "2019 2020 2021",
        "1990-2005",
        "5272868387",  # ten bare digits: an order number as likely as a phone number
        "0010747854903",  # an EAN-13, not 00 + a country code
        "caps: 53 ? 23 22 56 32 25 ? 37",  # a run of figures
    ],
)
def test_dates_versions_prices_isbns_and_order_numbers_are_not_phone_numbers(lookalike):
    assert kinds(f"Noted: {lookalike}.") == []


def test_a_bare_run_of_digits_is_a_phone_number_with_a_phone_word():
    assert kinds("Call 5272868387 after six") == [("PHONE_NUMBER", "5272868387")]


def test_libphonenumber_tells_a_dialable_international_number_from_a_made_up_one():
    pytest.importorskip("phonenumbers", reason="phonenumbers comes with the [safety] extra")
    assert [(f.text, f.score) for f in find_pii("Noted: +1 202 555 0199.")] == [("+1 202 555 0199", 0.9)]
    assert kinds("Noted: +999 1234 5678.") == []  # no country has code 999
    assert kinds("Noted: +44 1234.") == []  # too short to dial


# ------------------------------------------------------------------ person names


def names(text):
    return [f.text for f in find_pii(text, types=["person"])]


def test_person_names_are_found_only_when_asked_for():
    text = "Please ask Isabel Rolc to sign the form."
    assert kinds(text) == []
    assert names(text) == ["Isabel Rolc"]


def test_names_by_gazetteer_title_and_naming_phrase():
    assert names("Zoolander was directed by Keith Bult Jr. in 2001") == ["Keith Bult Jr."]
    assert names("Hello, this is Mr. Grimes. Who are you?") == ["Grimes"]
    assert names("The painting was sold by Donald van der Voet.") == ["Donald van der Voet"]
    assert names("Hi, my name is Iqra and I need help") == ["Iqra"]  # not in the gazetteer: the phrase says so
    assert names("dr. gregory is a 50 year old man") == ["gregory"]  # lower-case text: the title says so
    assert names("she named him joshua") == ["joshua"]


def test_first_names_that_are_words_or_places_need_another_name_next_to_them():
    assert names("Will Smith starred in it") == ["Will Smith"]
    assert names("Will you help me? May I ask?") == []
    assert names("She moved to Victoria last year") == []
    assert names("He lives in Los Angeles") == []
    assert names("Send it to 226 Thomas Avenue") == []  # a street, not a person
    assert names("Hope Jackson called") == ["Hope Jackson"]


def test_names_are_redacted_and_allowed_like_any_other_type():
    text = "Ask Isabel Rolc or mail jane@acme.io"
    assert redact(text, types=["person", "email"]) == "Ask [PERSON] or mail [EMAIL_ADDRESS]"
    assert kinds(text, types=["name", "email"], allow=["Isabel Rolc"]) == [("EMAIL_ADDRESS", "jane@acme.io")]


def test_assert_no_pii_for_names_fails_on_a_name_and_is_unmeasured_without_one():
    with pytest.raises(AssertionError, match=r"PERSON at 4:15"):
        assert_no_pii("Ask Isabel Rolc to sign.", types=["person"])
    # No name found does not show there is none: the check says so instead of passing.
    with pytest.raises(UnmeasuredError, match="assert_no_pii_judged") as info:
        assert_no_pii("Ask the manager to sign.", types=["person", "email"])
    assert info.value.score.details["unmeasured_types"] == ["PERSON"]
    # Other PII found is a failure whether or not names could be ruled out.
    with pytest.raises(AssertionError, match="EMAIL_ADDRESS"):
        assert_no_pii("Mail jane@acme.io", types=["person", "email"])


def test_assert_no_pii_by_default_says_names_were_not_checked():
    score = assert_no_pii("The meeting is at 10:30 in room 4.")
    assert score.verdict is Verdict.PASS
    assert "person names not checked" in score.reason
