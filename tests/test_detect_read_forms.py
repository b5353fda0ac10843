# SPDX-License-Identifier: Apache-2.0
"""Values written the way web and URL text writes them, which a reader (or a model) still
reads as the value: HTML character references (``jane.doe&#64;example.com``), a
percent-encoded at sign (``?email=jane.doe%40example.com``), the full stops IDNA reads as
dots (``example。com``), and card numbers grouped with dots or underscores. The finding
covers the text as written."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haechi
from haechi.detect import DetectionEngine, default_rules
from haechi.detect.unicode import as_read
from haechi.models import Detection

ENGINE = DetectionEngine(default_rules())
DECODING = DetectionEngine(default_rules(), decode_and_rescan=True)


def _found(text: str, kind: str, engine: DetectionEngine = ENGINE) -> list[str]:
    detections: list[Detection] = engine.scan_text(text, direction="request")
    for detection in detections:
        assert text[detection.start : detection.end] == detection.value
    return [d.value for d in detections if d.type == kind]


@pytest.mark.parametrize(
    "at", ["&#64;", "&#x40;", "&#X40;", "&commat;", "&#064;", "&#64", "&amp;#64;", "&#38;#64;"]
)
def test_an_at_sign_written_as_an_html_character_reference(at: str) -> None:
    value = f"jane.doe{at}example.com"
    assert _found(f"mail {value} please", "email") == [value]


def test_html_references_elsewhere_in_a_value_are_read_too() -> None:
    card = "4111&nbsp;1111&nbsp;1111&nbsp;1111"
    assert _found(f"<td>{card}</td>", "card") == [card]
    email = "jane&#46;doe&#64;example&period;com"
    assert _found(f"<p>{email}</p>", "email") == [email]


def test_an_assignment_written_with_html_quotes_is_a_secret() -> None:
    text = "password=&quot;Tr0ub4dor&amp;3xyz&quot;"
    assert _found(text, "secret") == ["Tr0ub4dor&amp;3xyz"]


def test_text_with_ampersands_and_no_reference_reads_as_written() -> None:
    assert as_read("Q&A; R&D; a && b; x &foo; y") is None
    assert as_read("fish &chips; 100%4 off") is None
    assert ENGINE.scan_text("Q&A &amp; R&D &lt;3", direction="request") == []


@pytest.mark.parametrize(
    "text",
    [
        "see ?email=jane.doe%40example.com&x=1",
        "mailto:jane.doe%40example.com",
        "jane.doe%40example.com",
    ],
)
def test_a_percent_encoded_at_sign_is_read_as_an_at_sign(text: str) -> None:
    value = text[text.index("jane") : text.index(".com") + 4]
    assert _found(text, "email") == [value]
    assert _found(text, "email", DECODING) == [value]


def test_a_percent_sign_before_other_digits_is_no_address() -> None:
    assert _found("growth 100%40 and 3%41x.com", "email") == []


@pytest.mark.parametrize(
    "value",
    [
        "jane.doe@example\u3002com",
        "jane.doe@example\uff61co\uff61jp",
        "jane.doe\uff20example\u3002com",
        "jane\u3002doe@example.com",
        "\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002\uff43\uff4f",
        "jane.doe@example\uff0ecom",
    ],
)
def test_an_address_with_the_full_stops_idna_reads_as_dots(value: str) -> None:
    assert _found(f"\u30e1\u30fc\u30eb {value} \u307e\u3067", "email") == [value]


def test_an_ideographic_full_stop_in_cjk_prose_is_a_full_stop() -> None:
    prose = "\u660e\u65e5\u9001\u308a\u307e\u3059\u3002\u3042\u308a\u304c\u3068\u3046\u3002"
    assert as_read(prose) is None
    assert as_read("\u7248\u672c 2\u3002\u6b21") is None
    assert ENGINE.scan_text(f"{prose} v1\u30022 ok", direction="request") == []


def test_as_read_maps_each_read_character_back_to_what_it_was_read_from() -> None:
    text = "a&#64;b%40c@x\u3002d&amp;e"
    seen, starts, ends = as_read(text) or ("", (), ())
    assert seen == "a@b@c@x.d&e"
    assert [text[a:b] for a, b in zip(starts, ends, strict=True)] == [
        *("a", "&#64;", "b", "%40", "c", "@", "x", "\u3002", "d", "&amp;", "e"),
    ]
    # Named references HTML does not know, and a full stop in text without an at sign (CJK
    # prose), read as written.
    assert as_read("x &bogus; y") is None
    assert as_read("x\u3002y") is None


@pytest.mark.parametrize(
    "card",
    [
        "4111.1111.1111.1111",
        "4111_1111_1111_1111",
        "5555.5555.5555.4444",
        "3782.822463.10005",
        "3782_822463_10005",
        "4222.2222.2222.2",
    ],
)
def test_a_card_grouped_with_dots_or_underscores(card: str) -> None:
    (found,) = [d for d in ENGINE.scan_text(f"pay {card} now", direction="request")]
    assert (found.type, found.value, found.hard_block) == ("card", card, True)
    assert _found(f"card = {card}", "card") == [card]


@pytest.mark.parametrize(
    "text",
    [
        "4111\t1111\t1111\t1111",  # a row of a tab-separated table
        "4111\n1111\n1111\n1111",  # a column of numbers
        "4111.1111-1111.1111",  # one separator per number
        "4111.1111.1111.1112",  # Luhn
        "version 1.2.3.4 at 10.0.0.1",
        "1234.5678",
    ],
)
def test_not_cards(text: str) -> None:
    assert _found(f"ref {text} end", "card") == []


def test_a_dotted_card_after_a_decimal_number_is_still_a_card() -> None:
    assert _found("total 12.50 4111.1111.1111.1111 ok", "card") == ["4111.1111.1111.1111"]
    assert _found("v1_4111_1111_1111_1111", "card") == ["4111_1111_1111_1111"]


@pytest.mark.parametrize(
    "text",
    [
        "x \\u005c" + "u005c" * 2000 + "u0040 y",
        "x &" + "#38;" * 2000 + "#64; y",
        "x " + "&amp;" * 3000,
        "x &#" + "9" * 5000 + "; &#x" + "f" * 5000 + "; &#" + "0" * 5000 + "64 y",
    ],
)
def test_text_escaped_over_and_over_is_read_a_few_levels_deep_and_never_raises(
    text: str,
) -> None:
    assert ENGINE.scan_text(text, direction="request") == []


def test_a_value_held_by_one_read_from_web_escapes_is_where_it_is_written() -> None:
    # The dials may remove the address and leave the number it holds, which then stands for
    # its own span: that span must be the number as written, not as read.
    text = "mail &#48;78-05-1120&#64;ssa.gov now"
    (address,) = ENGINE.scan_text(text, direction="request")
    assert address.value == "&#48;78-05-1120&#64;ssa.gov"
    held = [(inner.type, inner.value, text[inner.start : inner.end]) for inner in address.nested]
    assert held == [("us_ssn", "&#48;78-05-1120", "&#48;78-05-1120")]


def test_html_escaped_address_is_redacted_in_a_request() -> None:
    runtime = haechi.create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    payload = {"messages": [{"role": "user", "content": "to jane.doe&#64;example.com ok"}]}
    result = asyncio.run(runtime.protect(payload, direction="request"))
    content = result.payload["messages"][0]["content"]
    assert "jane" not in content
    assert content.startswith("to ")
    assert content.endswith(" ok")


@pytest.mark.parametrize(
    "written",
    [
        r"https:\/\/admin:S3cretPassw0rd!@db.example.com\/app",
        r"https:\\\/\\\/admin:S3cretPassw0rd!@db.example.com",
        r"https:\/\/hooks.slack.com\/services\/T00000000\/B00000000\/XXXXXXXXXXXXXXXXXXXXXXXX",
    ],
)
def test_a_url_written_with_json_escaped_slashes_is_read_as_its_url(written: str) -> None:
    # PHP's json_encode, and others, write every slash of a URL as \/ (once per encoding).
    assert _found(f"dsn {written} end", "secret")


def test_a_credential_url_in_tool_arguments_encoded_with_escaped_slashes_blocks() -> None:
    runtime = haechi.create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    arguments = r'{"dsn":"postgres:\/\/admin:S3cretPassw0rd!@db.example.com\/app"}'
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    payload = {"messages": [{"role": "assistant", "tool_calls": [call]}]}
    result = asyncio.run(runtime.protect(payload, direction="request"))
    assert result.blocked
    assert result.summary["byType"] == {"secret": 1}


_ATS = ["@", "\uff20", "&#64;", "&#x40;", "&commat;", "%40"]
_DOTS = [".", "\u3002", "\uff0e", "\uff61", "&#46;", "&period;"]
_SEPARATORS = [" ", "-", ".", "_", "&nbsp;", "&#32;"]


@settings(max_examples=120, deadline=None)
@given(
    local=st.from_regex(r"[a-z][a-z0-9]{0,8}(?:\.[a-z0-9]{1,8})?", fullmatch=True),
    labels=st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=3),
    tld=st.from_regex(r"[a-z]{2,6}", fullmatch=True),
    at=st.sampled_from(_ATS),
    dots=st.lists(st.sampled_from(_DOTS), min_size=3, max_size=3),
    before=st.sampled_from(["mail ", "<p>", "\u30e1\u30fc\u30eb ", "?to="]),
    after=st.sampled_from([" ok", "</p>", " \u307e\u3067", "&x=1"]),
)
def test_an_address_written_with_web_escapes_is_found_where_it_is_written(
    local: str,
    labels: list[str],
    tld: str,
    at: str,
    dots: list[str],
    before: str,
    after: str,
) -> None:
    domain = "".join(f"{label}{dot}" for label, dot in zip(labels, dots, strict=False)) + tld
    value = f"{local}{at}{domain}"
    assert _found(f"{before}{value}{after}", "email") == [value]


@settings(max_examples=80, deadline=None)
@given(
    card=st.sampled_from(["4111111111111111", "5555555555554444", "6011111111111117"]),
    separator=st.sampled_from(_SEPARATORS),
    before=st.sampled_from(["pay ", "card=", "<td>", "2024-05-01 "]),
)
def test_a_card_grouped_with_any_separator_is_found_where_it_is_written(
    card: str, separator: str, before: str
) -> None:
    value = separator.join(card[i : i + 4] for i in range(0, 16, 4))
    text = f"{before}{value} end"
    (found,) = [d for d in ENGINE.scan_text(text, direction="request") if d.type == "card"]
    assert found.hard_block
    assert found.value == value


_PIECES = [
    *("&", "#", "x", "X", ";", "0", "4", "6", "9", "a", "f", "amp", "commat", "nbsp", "%40"),
    *("%", "\\", "\\u", "0040", "d83d", "de00", "\u3002", "\uff61", "@", "\uff20", ".", " "),
    *("/", "\\/", "https:", "admin:pw"),
    *("jane", "example", "com", "1111", "4111", "\u200b", "\u0300", "\U000e0040", "\u8a18"),
]


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=40))
def test_text_made_of_escape_fragments_never_raises_and_offsets_slice_back(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    reading = as_read(text)
    if reading is not None:
        seen, starts, ends = reading
        assert len(seen) == len(starts) == len(ends)
        assert all(0 <= a < b <= len(text) for a, b in zip(starts, ends, strict=True))
        assert list(starts) == sorted(starts)
    for engine in (ENGINE, DECODING):
        for detection in engine.scan_text(text, direction="response"):
            assert 0 <= detection.start < detection.end <= len(text)
            assert text[detection.start : detection.end] == detection.value


# --- Terminal control sequences ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mail jane.doe@\x1b[0mexample.com now", "jane.doe@\x1b[0mexample.com"),
        ("mail jane\x1b[1;31m.doe@example.com", "jane\x1b[1;31m.doe@example.com"),
        ("mail jane.doe@\x9b0mexample.com", "jane.doe@\x9b0mexample.com"),
        (
            "see \x1b]8;;https://x\x1b\\jane.doe@exa\x1b]8;;\x1b\\mple.com",
            "jane.doe@exa\x1b]8;;\x1b\\mple.com",
        ),
        ("mail jane.doe@ex\x1b]0;title\x07ample.com", "jane.doe@ex\x1b]0;title\x07ample.com"),
    ],
)
def test_an_address_cut_by_a_terminal_control_sequence_is_found(text: str, value: str) -> None:
    assert _found(text, "email") == [value]


def test_a_card_cut_by_a_colour_change_is_found() -> None:
    text = "card 4111 1111\x1b[31m 1111 1111 ok"
    assert _found(text, "card") == ["4111 1111\x1b[31m 1111 1111"]


def test_a_value_inside_a_control_sequence_is_still_found() -> None:
    # A terminal hides it; a model reading the raw text does not.
    assert _found("\x1b]0;jane.doe@example.com\x07 done", "email") == ["jane.doe@example.com"]


def test_text_with_colours_and_no_value_reads_as_the_screen_shows_it() -> None:
    assert as_read("\x1b[1mbold\x1b[0m plain") is not None
    assert as_read("\x1b[1mbold\x1b[0m plain")[0] == "bold plain"  # type: ignore[index]
    assert _found("\x1b[32mok\x1b[0m 200 GET /health", "email") == []
