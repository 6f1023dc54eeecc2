"""The gateway's JSON reads and writes as the standard library does, whichever parser or writer did the work:
the same values (integers past 64 bits exact), the same refusals with the same messages, the same output."""
import json
import random

import pytest

from gateway import boundedjson
from gateway.boundedjson import JsonLimitError
from gateway.jsonrpc import dumps

LIMITS = {"max_depth": 64, "max_values": 10_000}


def standard(data: bytes):
    """What the standard library reads, or the message it refuses with."""
    return json.loads(data.decode())


@pytest.mark.parametrize("data", [
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getPet","arguments":{"petId":1}}}',
    b'123456789012345678901234567890', b'-98765432109876543210', b'[18446744073709551616, 1.0, -0.0, 2.5e-3]',
    b'{"a":1,"a":2}', b'"\\ud83d\\ude00 caf\\u00e9 \xc3\xa9"', b'  {"x": [true, false, null]}  ',
    b'0.12345678901234567890123', b'1e-400', b'"\\u0000"',
])
def test_values_read_are_the_standard_librarys(data):
    read = boundedjson.loads(data, **LIMITS)
    assert read == standard(data)
    assert type(read) is type(standard(data))
    assert boundedjson.loads(data.decode(), **LIMITS) == read  # text in, the same value out


@pytest.mark.parametrize("data, message", [
    (b"1e400", "the number 1e400 is out of range"),
    (b"[-1e999]", "the number -1e999 is out of range"),
    (b"[NaN]", "NaN is not a JSON value"),
    (b'{"a": Infinity}', "Infinity is not a JSON value"),
    (b'"\\ud800"', "a \\u escape leaves a lone UTF-16 surrogate, which is not a character"),
    (b'"\xff"', "the body is not valid UTF-8 (at byte offset 1)"),
    (b"[" * 65 + b"]" * 65, "nesting deeper than 64 levels"),
    (b"[" * 5000 + b"]" * 5000, "nesting deeper than 64 levels"),
    (b"[" + b"0," * 10_001 + b"0]", "more than 10,000 values"),
])
def test_refusals_name_the_limit(data, message):
    with pytest.raises(JsonLimitError) as caught:
        boundedjson.loads(data, **LIMITS)
    assert str(caught.value) == message


@pytest.mark.parametrize("data", [b'{"a":', b"[1,]", b"01", b"'x'", b'{"a" 1}', b"", b"\xef\xbb\xbf{}"])
def test_syntax_errors_carry_the_standard_librarys_message(data):
    with pytest.raises(ValueError) as caught:
        boundedjson.loads(data, **LIMITS)
    with pytest.raises(ValueError) as expected:
        json.JSONDecoder().decode(data.decode())
    assert str(caught.value) == str(expected.value)


def test_nul_is_refused_only_when_asked():
    assert boundedjson.loads(b'["\\u0000"]', **LIMITS) == ["\x00"]
    with pytest.raises(JsonLimitError, match="NUL"):
        boundedjson.loads(b'["\\u0000"]', forbid_nul=True, **LIMITS)
    assert boundedjson.loads(b'["\\\\u0000"]', forbid_nul=True, **LIMITS) == ["\\u0000"]  # an escaped backslash


def _standard_dump(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("value", [
    {"jsonrpc": "2.0", "id": "mcpgw-s1", "result": {"content": [{"type": "text", "text": "Rex\n\"dog\" café 😀"}],
                                                  "isError": False}},
    {"n": 123456789012345678901234567890},  # past 64 bits: written by the standard library
    {1: "a key that is not a string"},
    [0.1, 1.5, -0.0, 12345.678, None, True],
])
def test_writes_are_the_standard_librarys(value):
    assert dumps(value) == _standard_dump(value)


def test_a_lone_surrogate_is_written_escaped():
    assert json.loads(dumps({"text": "\ud800"})) == {"text": "\ud800"}


def test_dates_are_refused_as_the_standard_library_refuses_them():
    import datetime

    with pytest.raises(TypeError):
        dumps({"at": datetime.datetime(2026, 1, 1)})


def test_random_documents_round_trip_as_the_standard_library_reads_them():
    rng = random.Random(20261203)

    def value(depth: int):
        kind = rng.randrange(8 if depth < 6 else 5)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return rng.choice([rng.randrange(-10**6, 10**6), rng.randrange(-2**70, 2**70)])
        if kind == 2:
            return rng.uniform(-1e6, 1e6)
        if kind in (3, 4):
            return "".join(rng.choice("ab\"\\\n\té😀\u2028\x01") for _ in range(rng.randrange(6)))
        if kind == 5:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {f"k{rng.randrange(9)}": value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(2000):
        doc = value(0)
        written = dumps(doc)
        assert written == _standard_dump(doc)
        assert boundedjson.loads(written, **LIMITS) == json.loads(written.decode())
