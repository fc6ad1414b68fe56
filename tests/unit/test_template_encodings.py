"""Payloads are rendered on the tree and encoded by real encoders: types survive, every value is escaped,
and what the sandbox's own parsers read back is what was rendered."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bonzo_bulk._paths import set_path
from bonzo_bulk.errors import ConfigError, TemplateError
from bonzo_bulk.plan.encodings import encode_body, form_body, scalar_text, tree_to_xml, xml_to_tree
from bonzo_bulk.plan.integration import count_notes, load_integration
from bonzo_bulk.plan.templates import compile_template, load_template
from bonzo_bulk.sandbox.bodies import BodyError, parse_form_json, parse_xml_row

TRICKY = ["a \"quoted\" 'value'", "Ann & Bo <x>", "</Name><Injected/>", "back\\slash", "ünïcødé ✓ 名前", "{not_a_ph}"]
text_values = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40) | st.sampled_from(TRICKY)
xml_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00\ufffe\uffff", min_codepoint=9),
    max_size=40,
).filter(lambda s: not any(ord(c) < 32 and c not in "\t\n\r" for c in s)) | st.sampled_from(TRICKY)
numbers = st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False, allow_infinity=False)
values = text_values | numbers | st.booleans() | st.none()


@given(value=values)
def test_json_keeps_every_type_and_escapes_every_string(value: Any) -> None:
    render = compile_template({"whole": "{v}", "deep": {"list": ["{v}", "x {v} y"]}, "fixed": 7})
    payload = render({"v": value})
    back = json.loads(encode_body(payload, "json"))
    assert back["whole"] == value
    assert type(back["whole"]) is type(value)
    assert back["deep"]["list"][0] == value
    assert back["deep"]["list"][1] == f"x {'null' if value is None else value} y"
    assert back["fixed"] == 7


@given(value=xml_text | numbers | st.booleans() | st.none())
def test_xml_text_round_trips_through_elementtree_and_the_sandbox_parser(value: Any) -> None:
    payload = compile_template({"row": {"A": "{v}", "B": "lit & <b>", "C": ["{v}", "2"]}})({"v": value})
    body = encode_body(payload, "xml", root="result")
    root = ET.fromstring(body)  # noqa: S314 - our own output
    assert root.tag == "result"
    assert (root.findtext("row/A") or "") == scalar_text(value)
    assert [c.text or "" for c in root.findall("row/C")] == [scalar_text(value), "2"]
    sandbox_row = parse_xml_row(body)
    assert sandbox_row["A"] == scalar_text(value)
    assert sandbox_row["B"] == "lit & <b>"


def test_xml_refuses_characters_xml_cannot_carry_and_bad_names() -> None:
    with pytest.raises(TemplateError, match="control character"):
        tree_to_xml({"row": {"A": "bell \x07"}}, "result")
    with pytest.raises(TemplateError, match="not a usable XML element name"):
        tree_to_xml({"row": {"1bad": "x"}}, "result")
    with pytest.raises(TemplateError, match="root element"):
        encode_body({"a": 1}, "xml")


@given(value=text_values | numbers | st.booleans() | st.none())
def test_form_fields_and_the_json_field_round_trip(value: Any) -> None:
    payload = compile_template({"page": "{v}", "data_json": {"first_name": ["{v}"], "n": "{v}"}})({"v": value})
    body = form_body(payload, json_field="data_json")
    form = parse_qs(body.decode(), keep_blank_values=True)
    assert form["page"] == [scalar_text(value)]
    assert json.loads(form["data_json"][0]) == {"first_name": [value], "n": value}
    assert parse_form_json(body)["data_json"] == {"first_name": [value], "n": value}


def test_form_refuses_an_object_outside_the_json_field() -> None:
    with pytest.raises(TemplateError, match="json_field"):
        form_body({"data": {"a": 1}})
    assert form_body({"tags": ["a", "b&c"]}) == b"tags=a&tags=b%26c"


def test_integer_placeholder_stays_an_integer_on_the_wire() -> None:
    payload = compile_template({"user_id": "{user.user_id}", "note": "id {user.user_id}"})({"user": {"user_id": 65013}})
    assert encode_body(payload, "json") == b'{"user_id":65013,"note":"id 65013"}'
    assert b"<user_id>65013</user_id>" in encode_body(payload, "xml", root="lead")


def test_xml_template_parses_to_a_tree_and_refuses_what_the_tree_cannot_hold(tmp_path: Path) -> None:
    file = tmp_path / "t.xml"
    file.write_text("<result><row><A>{first_name}</A><Tag>x</Tag><Tag>y</Tag><Empty/></row></result>")
    assert load_template(file) == {"row": {"A": "{first_name}", "Tag": ["x", "y"], "Empty": ""}}
    with pytest.raises(TemplateError, match="attributes"):
        xml_to_tree('<result><row id="1"/></result>')
    with pytest.raises(TemplateError, match="mixes text"):
        xml_to_tree("<result>text<row/></result>")
    with pytest.raises(TemplateError, match="not valid XML"):
        xml_to_tree("<result><row></result>")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<result><row><A>1</A></row>", "body"),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><result><row><A>&e;</A></row></result>', "body"),
        (b"<other><row/></other>", "body"),
        (b"<result></result>", "body"),
    ],
)
def test_the_sandbox_xml_parser_refuses_broken_bodies(body: bytes, field: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_xml_row(body)
    assert caught.value.field == field


@pytest.mark.parametrize("body", [b"page=1", b"data_json=%7Bnot+json", b"data_json=%5B1%5D", b"\xff\xfe"])
def test_the_sandbox_form_parser_refuses_broken_bodies(body: bytes) -> None:
    with pytest.raises(BodyError):
        parse_form_json(body)


def test_set_path_walks_lists_and_count_notes_counts_non_empty_values() -> None:
    payload: dict[str, Any] = {"data_json": {"email": ["a@b.test"]}}
    set_path(payload, "data_json.email[0]", "")
    set_path(payload, "row.Phone", "12-34")
    assert payload == {"data_json": {"email": [""]}, "row": {"Phone": "12-34"}}
    with pytest.raises(ConfigError, match=r"no item \[3\]"):
        set_path(payload, "data_json.email[3]", "x")
    assert count_notes(["a", "", None, {"value": "b"}, "  "]) == 2
    assert count_notes("one") == 1


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("owner: {kind: none}", "needs 'routing:'"),
        ("owner: {kind: email}", "needs 'path:'"),
        ("owner: {kind: none, routing: {kind: fixed}}", "needs 'user_id:'"),
        ("encoding: xml\nowner: {kind: user_id, path: user_id}", "root"),
        ("json_field: data\nowner: {kind: user_id, path: user_id}", "json_field"),
    ],
)
def test_manifest_mistakes_are_named(tmp_path: Path, manifest: str, message: str) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "payload.json").write_text('{"first_name": "{first_name}"}')
    (folder / "manifest.yaml").write_text(
        "name: broken\ndisplay_name: Broken\nsource: broken\ntemplate: payload.json\n"
        f"{manifest}\nborrower: {{first_name: first_name}}\nmapping: []\n"
    )
    with pytest.raises(ConfigError, match=message):
        load_integration(folder)


def test_a_variant_template_must_carry_its_discriminator_value(tmp_path: Path) -> None:
    folder = tmp_path / "variants"
    folder.mkdir()
    (folder / "a.json").write_text('{"type": "a", "first_name": "{first_name}"}')
    (folder / "b.json").write_text('{"type": "a", "first_name": "{first_name}"}')
    (folder / "manifest.yaml").write_text(
        "name: variants\ndisplay_name: V\nsource: v\ndiscriminator: type\n"
        "variants: [{value: a, template: a.json}, {value: b, template: b.json}]\n"
        "owner: {kind: user_id, path: user_id}\nborrower: {first_name: first_name}\nmapping: []\n"
    )
    with pytest.raises(ConfigError, match="variant 'b': its template must set 'type' to 'b'"):
        load_integration(folder)
