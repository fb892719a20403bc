"""JSON validity, JSON Schema and pydantic checks on model output."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from pytest_llmops.metrics import json_schema_valid, json_valid, pydantic_valid, validate_json, validate_pydantic
from pytest_llmops.verdict import Verdict

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "price"],
                "properties": {"sku": {"type": "string"}, "price": {"type": "number", "minimum": 0}},
            },
        },
    },
}


class Item(BaseModel):
    sku: str
    price: float


class Order(BaseModel):
    id: str
    items: list[Item]


def test_valid_json_parses():
    score, value = validate_json('{"a": [1, 2.5, null]}')
    assert score.verdict is Verdict.PASS
    assert value == {"a": [1, 2.5, None]}


def test_invalid_json_names_line_and_column():
    score = json_valid('{\n  "a": 1,\n  "b": 2,\n}')
    assert score.verdict is Verdict.FAIL
    assert score.reason.startswith("invalid JSON at line 4, column 1: Expecting property name")
    assert (score.details["line"], score.details["column"]) == (4, 1)


def test_nan_is_not_json():
    assert "not valid JSON" in json_valid('{"x": NaN}').reason


def test_code_fences_fail_unless_allowed():
    fenced = '```json\n{"a": 1}\n```'
    refused = json_valid(fenced)
    assert refused.verdict is Verdict.FAIL
    assert "allow_code_fence=True" in refused.reason
    assert validate_json(fenced, allow_code_fence=True)[1] == {"a": 1}


def test_schema_errors_are_listed_with_their_json_paths():
    output = '{"items": [{"sku": "A1", "price": "9.99"}, {"sku": "B2", "price": -1}]}'
    score = json_schema_valid(output, ORDER_SCHEMA)
    assert score.verdict is Verdict.FAIL
    assert score.reason == (
        "3 schema error(s): $: 'id' is a required property; "
        "$.items[0].price: '9.99' is not of type 'number'; "
        "$.items[1].price: -1 is less than the minimum of 0"
    )
    assert [e["validator"] for e in score.details["errors"]] == ["required", "type", "minimum"]


def test_matching_output_passes_the_schema():
    score = json_schema_valid('{"id": "o1", "items": [{"sku": "A1", "price": 9.99}]}', ORDER_SCHEMA)
    assert score.verdict is Verdict.PASS
    assert "jsonschema:" in score.signature and "draft:Draft202012Validator" in score.signature


def test_formats_are_checked_only_when_asked():
    schema = {"type": "string", "format": "date"}
    assert json_schema_valid('"not a date"', schema).verdict is Verdict.PASS
    assert json_schema_valid('"not a date"', schema, check_formats=True).verdict is Verdict.FAIL


def test_an_invalid_schema_is_a_usage_error():
    with pytest.raises(ValueError, match=r"JSON Schema itself is invalid at \$\.type"):
        json_schema_valid("{}", {"type": "objekt"})


def test_pydantic_validation_returns_the_instance():
    score, order = validate_pydantic('{"id": "o1", "items": [{"sku": "A1", "price": "9.99"}]}', Order)
    assert score.verdict is Verdict.PASS
    assert order == Order(id="o1", items=[Item(sku="A1", price=9.99)])


def test_pydantic_errors_carry_paths():
    score = pydantic_valid('{"id": "o1", "items": [{"sku": "A1"}]}', Order)
    assert score.verdict is Verdict.FAIL
    assert score.reason == "1 validation error(s) for Order: $.items[0].price: Field required"


def test_pydantic_strict_mode_and_generic_types():
    assert pydantic_valid('{"sku": "A1", "price": "9.99"}', Item, strict=True).verdict is Verdict.FAIL
    score, items = validate_pydantic('[{"sku": "A1", "price": 1}]', list[Item])
    assert items == [Item(sku="A1", price=1.0)]
    assert "model:list[Item]" in score.signature


def test_pydantic_reports_json_syntax_errors_like_json_valid():
    score = pydantic_valid('{"id": "o1",', Order)
    assert score.reason.startswith("invalid JSON at line 1, column 13")


def test_non_text_output_is_a_type_error():
    with pytest.raises(TypeError, match="output must be a JSON str"):
        json_valid(42)
