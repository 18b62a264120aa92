"""The Kasa legacy wire format: XOR autokey cipher (key 171), 4-byte length framing, and answers.

Shared by the driver, discovery and the emulator. The cipher works on whole buffers as big
integers instead of byte by byte, which is what makes it cheap enough for thousands of plugs.
"""

from __future__ import annotations

import json
import struct
import threading
from typing import Any

from plugwatch.model import Reading

INITIAL_KEY = 171
MAX_FRAME = 64 * 1024  # a length header above this is rejected before reading the body
HEADER = struct.Struct(">I")

SYSINFO_QUERY: dict[str, Any] = {"system": {"get_sysinfo": {}}}
# (text, index) -> (value, end index): the C scanner json.loads uses inside
_scan_json: Any = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009  (untyped attribute)

_local = threading.local()


def receive_buffer() -> memoryview:
    """A reused 16 KiB receive buffer for asyncio.BufferedProtocol.get_buffer(), one per thread.

    The transport receives into it and calls buffer_updated() at once, before any other callback
    of that thread's event loop, so the bytes must be copied out there. This avoids the 256 KiB
    bytes object a plain Protocol's transport allocates (and shrinks) for every receive.
    """
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(16 * 1024))
    return buf


def encrypt(plain: bytes, key: int = INITIAL_KEY) -> bytes:
    """Encrypt with the autokey cipher: c[i] = p[i] ^ c[i-1], c[-1] = 171 (a prefix XOR).

    `key` continues a cipher text: encrypt(a + b) == encrypt(a) + encrypt(b, encrypt(a)[-1]).
    """
    n = len(plain)
    if n == 0:
        return b""
    x = int.from_bytes(plain, "big")
    # Byte i of the result must be the XOR of plain bytes 0..i; in big-endian those are the
    # higher-order bytes, so log2(n) shift-XOR steps build every prefix at once.
    shift = 8
    while shift < 8 * n:
        x ^= x >> shift
        shift <<= 1
    # Every prefix also XORs in the initial key once.
    x ^= int.from_bytes(bytes([key]) * n, "big")
    return x.to_bytes(n, "big")


def decrypt(cipher: bytes | memoryview) -> bytes:
    """Decrypt the autokey cipher: p[i] = c[i] ^ c[i-1], c[-1] = 171."""
    n = len(cipher)
    if n == 0:
        return b""
    # as one big-endian integer, c[i-1] is c shifted one byte down, with the key on top
    x = int.from_bytes(cipher, "big")
    return (x ^ (x >> 8) ^ (INITIAL_KEY << (8 * n - 8))).to_bytes(n, "big")


def encode_request(request: dict[str, Any]) -> bytes:
    """A TCP frame: 4-byte big-endian length, then the encrypted compact JSON."""
    body = encrypt(json.dumps(request, separators=(",", ":")).encode())
    return HEADER.pack(len(body)) + body


def encode_datagram(request: dict[str, Any]) -> bytes:
    """A UDP payload (discovery, or a poll over UDP): the encrypted compact JSON, no length."""
    return encrypt(json.dumps(request, separators=(",", ":")).encode())


def parse_answer(body: bytes | memoryview) -> dict[str, Any]:
    """Decrypt and parse an answer body into a JSON object; ValueError with a short reason."""
    plain = decrypt(body)
    if not plain.startswith(b"{"):
        head = " ".join(f"{b:02x}" for b in body[:8])
        raise ValueError(f"answer does not decrypt to JSON (first bytes {head}): not a Kasa plug?")
    try:  # the C scanner straight on the text: json.loads' checks cost a tenth of a reading
        text = plain.decode()
        quick: dict[str, Any]  # an object: the text starts with {
        quick, end = _scan_json(text, 0)
        if end == len(text):
            return quick
    except (ValueError, StopIteration, RecursionError):
        pass  # json.loads below says what is wrong (or takes trailing white space)
    try:
        answer = json.loads(plain)
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer of over 4,300 digits
        raise ValueError(f"answer is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("answer is JSON nested too deeply") from None
    if not isinstance(answer, dict):
        raise ValueError("answer is JSON but not an object")
    return answer


def section(answer: dict[str, Any], module: str, method: str) -> dict[str, Any]:
    """The `answer[module][method]` object, checked for shape and err_code; ValueError if bad."""
    mod = answer.get(module)
    if not isinstance(mod, dict):
        raise ValueError(f"answer has no {module!r} object")
    if method not in mod and "err_code" in mod:
        raise ValueError(_err_text(f"{module}", mod))
    result = mod.get(method)
    if not isinstance(result, dict):
        raise ValueError(f"answer has no {module}.{method} object")
    if result.get("err_code", 0) != 0:
        raise ValueError(_err_text(f"{module}.{method}", result))
    return result


def _err_text(where: str, obj: dict[str, Any]) -> str:
    msg = obj.get("err_msg")
    suffix = f" ({msg})" if msg else ""
    return f"{where} failed with err_code {obj.get('err_code')}{suffix}"


Emeter = tuple[float, float | None, float | None, float | None]


def normalise_emeter(realtime: dict[str, Any]) -> Emeter:
    """(power_w, voltage_v, current_a, energy_kwh) from either firmware style; ValueError if bad.

    v1 firmware reports floats in W/V/A/kWh (`power`, `voltage`, `current`, `total`); v2 and later
    report ints in mW/mV/mA/Wh (`power_mw`, `voltage_mv`, `current_ma`, `total_wh`).
    """
    try:
        if "power_mw" in realtime:
            return (
                realtime["power_mw"] / 1000.0,
                _opt(realtime, "voltage_mv", 1000.0),
                _opt(realtime, "current_ma", 1000.0),
                _opt(realtime, "total_wh", 1000.0),
            )
        if "power" in realtime:
            return (
                float(realtime["power"]),
                _opt(realtime, "voltage", 1.0),
                _opt(realtime, "current", 1.0),
                _opt(realtime, "total", 1.0),
            )
    except (TypeError, ValueError):
        raise ValueError("emeter.get_realtime has a value that is not a number") from None
    except OverflowError:  # an integer like 1e400 written out: too large for a float
        raise ValueError("emeter.get_realtime has a number too large to be true") from None
    raise ValueError("emeter.get_realtime has neither 'power_mw' nor 'power'")


def _opt(obj: dict[str, Any], key: str, scale: float) -> float | None:
    value = obj.get(key)
    return None if value is None else float(value) / scale


def reading_of(answer: dict[str, Any], child_id: str | None, ts: float) -> tuple[Reading, Any]:
    """(Reading stamped `ts`, alias) from a combined sysinfo + emeter answer; ValueError if bad.

    `child_id` picks a strip's outlet (its relay state and alias); None reads a single plug.
    A well-formed answer of a single plug takes a quick path with the same result; anything
    else goes through the checks that name what is wrong.
    """
    if child_id is None:
        try:
            sysinfo = answer["system"]["get_sysinfo"]
            realtime = answer["emeter"]["get_realtime"]
            relay = sysinfo["relay_state"]
            if (sysinfo.get("err_code", 0) == 0 and realtime.get("err_code", 0) == 0
                    and (relay == 0 or relay == 1) and type(sysinfo) is dict
                    and type(realtime) is dict):
                emeter = _quick_emeter(realtime)
                if emeter is not None:
                    power_w, voltage_v, current_a, energy_kwh = emeter
                    return (Reading(ts, power_w, relay == 1, energy_kwh, voltage_v, current_a),
                            sysinfo.get("alias"))
        except (KeyError, TypeError, AttributeError, OverflowError, ValueError):
            pass
    return _checked_reading(answer, child_id, ts)


def _quick_emeter(realtime: dict[str, Any]) -> Emeter | None:
    """normalise_emeter for the usual answer (numbers of the expected kinds), else None."""
    if "power_mw" in realtime:
        p, v, c, e = (realtime["power_mw"], realtime.get("voltage_mv"),
                      realtime.get("current_ma"), realtime.get("total_wh"))
        scale = 1000.0
    elif "power" in realtime:
        p, v, c, e = (realtime["power"], realtime.get("voltage"), realtime.get("current"),
                      realtime.get("total"))
        scale = 1.0
    else:
        return None
    for x in (p, v, c, e):
        if x is not None and type(x) is not int and type(x) is not float:
            return None
    if p is None:
        return None
    return (float(p) / scale, None if v is None else float(v) / scale,
            None if c is None else float(c) / scale, None if e is None else float(e) / scale)


def _checked_reading(answer: dict[str, Any], child_id: str | None, ts: float
                     ) -> tuple[Reading, Any]:
    sysinfo = section(answer, "system", "get_sysinfo")
    power_w, voltage_v, current_a, energy_kwh = normalise_emeter(
        section(answer, "emeter", "get_realtime"))
    owner: Any = sysinfo if child_id is None else child_of(sysinfo, child_id)
    relay = owner.get("relay_state" if child_id is None else "state") if owner else None
    if relay not in (0, 1):
        raise ValueError("sysinfo has no relay state 0 or 1")
    return Reading(ts, power_w, relay == 1, energy_kwh, voltage_v, current_a), owner.get("alias")


def child_of(sysinfo: dict[str, Any], child_id: str) -> dict[str, Any] | None:
    """The entry of `sysinfo["children"]` whose id is `child_id`, if there is one."""
    for child in sysinfo.get("children") or ():
        if isinstance(child, dict) and str(child.get("id")) == child_id:
            return child
    return None
