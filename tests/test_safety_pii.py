"""PII and secret detection: typed spans with offsets, validation, allow-lists, redaction."""

from __future__ import annotations

import pytest

from pytest_llmops.assertions.safety import assert_no_pii
from pytest_llmops.safety.pii import find_pii, iban_valid, luhn_valid, redact
from pytest_llmops.verdict import Verdict


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
