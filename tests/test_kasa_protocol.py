"""The Kasa wire format: the fast cipher equals the byte-by-byte definition; emeter styles agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugwatch.sources.kasa import protocol as wire


def slow_encrypt(plain: bytes) -> bytes:
    """The cipher as the protocol defines it, one byte at a time (the reference)."""
    key, out = 171, bytearray()
    for b in plain:
        key ^= b
        out.append(key)
    return bytes(out)


def slow_decrypt(cipher: bytes) -> bytes:
    key, out = 171, bytearray()
    for c in cipher:
        out.append(c ^ key)
        key = c
    return bytes(out)


@given(st.binary(max_size=3000))
def test_fast_cipher_equals_the_byte_by_byte_definition(plain: bytes) -> None:
    assert wire.encrypt(plain) == slow_encrypt(plain)
    assert wire.decrypt(slow_encrypt(plain)) == plain
    assert wire.decrypt(plain) == slow_decrypt(plain)


def test_known_vector_from_a_real_plug() -> None:
    """The sysinfo query every Kasa tool sends encrypts to these well-known bytes."""
    frame = wire.encode_request({"system": {"get_sysinfo": {}}})
    assert frame.hex() == (
        "0000001dd0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6"
    )
    assert wire.encode_datagram({"system": {"get_sysinfo": {}}}) == frame[4:]


def test_parse_answer_round_trips_and_rejects_non_objects() -> None:
    body = wire.encrypt(json.dumps({"system": {"get_sysinfo": {"err_code": 0}}}).encode())
    assert wire.parse_answer(body) == {"system": {"get_sysinfo": {"err_code": 0}}}
    with pytest.raises(ValueError, match=r"does not decrypt to JSON \(first bytes f0 c1 ed"):
        wire.parse_answer(wire.encrypt(b"[1, 2]"))
    with pytest.raises(ValueError, match="nested too deeply"):
        wire.parse_answer(wire.encrypt(b'{"a":' * 100_000))


@pytest.mark.parametrize(
    ("realtime", "expected"),
    [
        ({"power_mw": 1234567, "voltage_mv": 230100, "current_ma": 5366, "total_wh": 4200,
          "err_code": 0}, (1234.567, 230.1, 5.366, 4.2)),
        ({"power": 1234.567, "voltage": 230.1, "current": 5.366, "total": 4.2, "err_code": 0},
         (1234.567, 230.1, 5.366, 4.2)),
        ({"power_mw": 0}, (0.0, None, None, None)),
    ],
    ids=["v2-ints", "v1-floats", "v2-power-only"],
)
def test_both_emeter_styles_normalise_to_w_v_a_kwh(realtime, expected) -> None:
    assert wire.normalise_emeter(realtime) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("realtime", "message"),
    [
        ({"voltage_mv": 230000}, "neither 'power_mw' nor 'power'"),
        ({"power": "lots"}, "a value that is not a number"),
        ({"power_mw": None}, "a value that is not a number"),
    ],
)
def test_bad_emeter_objects_are_value_errors(realtime, message) -> None:
    with pytest.raises(ValueError, match=message):
        wire.normalise_emeter(realtime)


def test_section_reports_err_codes_of_module_and_method() -> None:
    no_module = {"emeter": {"err_code": -1, "err_msg": "module not support"}}
    with pytest.raises(ValueError) as exc:
        wire.section(no_module, "emeter", "get_realtime")
    assert str(exc.value) == "emeter failed with err_code -1 (module not support)"
    failed = {"emeter": {"get_realtime": {"err_code": -3, "err_msg": "invalid argument"}}}
    with pytest.raises(ValueError) as exc:
        wire.section(failed, "emeter", "get_realtime")
    assert str(exc.value) == "emeter.get_realtime failed with err_code -3 (invalid argument)"


def test_encrypt_continues_a_cipher_text_from_its_last_byte() -> None:
    """encrypt(a + b) == encrypt(a) + encrypt(b, key=encrypt(a)[-1]): a head's cipher text can
    be kept and only the tail encrypted."""
    head, tail = b'{"system":{"get_sysinfo":{"alias":"x",', b'"relay_state":1}}}'
    first = wire.encrypt(head)
    assert first + wire.encrypt(tail, first[-1]) == wire.encrypt(head + tail)


_value = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                   st.text(max_size=4), st.booleans(), st.integers(10**400, 10**401))
_realtime = st.fixed_dictionaries({}, optional={k: _value for k in (
    "power_mw", "voltage_mv", "current_ma", "total_wh", "power", "voltage", "current", "total",
    "err_code")})
_sysinfo = st.fixed_dictionaries({}, optional={"relay_state": _value, "err_code": _value,
                                               "alias": st.text(max_size=3)})


def _outcome(parse: Any, answer: dict[str, Any]) -> Any:
    try:
        return parse(answer)
    except ValueError as exc:
        return f"ValueError: {exc}"


@given(_sysinfo, _realtime)
def test_the_quick_reading_path_agrees_with_the_checked_one(sysinfo: dict, realtime: dict) -> None:
    """Whatever a plug answers, the quick path of reading_of gives the reading (or the error
    text) of the path that checks every field."""
    answer = {"system": {"get_sysinfo": sysinfo}, "emeter": {"get_realtime": realtime}}
    quick = _outcome(lambda a: wire.reading_of(a, None, 5.0), answer)
    checked = _outcome(lambda a: wire._checked_reading(a, None, 5.0), answer)
    assert repr(quick) == repr(checked)  # repr: NaN-free, and -0.0 told from 0.0
