"""The TFTP wire format: packet parsing and encoding, option negotiation, path policy.

Kept apart from the server so that the byte-level rules (RFC 1350 packets, RFC 2347 option
lists, the RFC 2348/2349/7440 option ranges) can be tested without sockets, and so that the
test client and the benchmark build packets with exactly the code the server parses them with.
Nothing here does I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from urllib.parse import unquote_to_bytes

__all__ = [
    "DEFAULT_BLKSIZE",
    "MAX_BLKSIZE",
    "MAX_REQUEST_SIZE",
    "MIN_BLKSIZE",
    "ErrorCode",
    "MalformedPacket",
    "Negotiated",
    "Opcode",
    "ParsedRequest",
    "data_header",
    "encode_ack",
    "encode_error",
    "encode_oack",
    "encode_request",
    "negotiate",
    "netascii_encode",
    "normalise_path",
    "parse_error",
    "parse_oack",
    "parse_request",
]

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
MAX_REQUEST_SIZE = 512
MAX_TIMEOUT_OPTION = 255
MAX_WINDOWSIZE_OPTION = 65535
# Decoding more layers than this is only ever an attack; such names are refused outright.
_MAX_PERCENT_LAYERS = 4

_HEADER = struct.Struct(">HH")
_OPCODE = struct.Struct(">H")


class Opcode(IntEnum):
    """RFC 1350 and RFC 2347 packet types."""

    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(IntEnum):
    """RFC 1350 error codes, plus RFC 2347's option negotiation failure."""

    UNDEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


class MalformedPacket(ValueError):
    """A request that cannot be parsed; carries the TFTP error code to answer with."""

    def __init__(self, message: str, code: int = ErrorCode.ILLEGAL_OPERATION) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """An RRQ or WRQ as it came off the wire, before any policy is applied."""

    opcode: int
    filename: bytes
    mode: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The transfer parameters agreed for one RRQ, and the options to acknowledge."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float | None = None
    acked: dict[str, str] = field(default_factory=dict)


def parse_request(data: bytes) -> ParsedRequest:
    """Parse an RRQ/WRQ packet; raise MalformedPacket saying what is wrong."""
    if len(data) > MAX_REQUEST_SIZE:
        raise MalformedPacket(f"request too long: {len(data)} bytes, at most {MAX_REQUEST_SIZE}")
    if len(data) < 2:
        raise MalformedPacket(f"packet too short: {len(data)} bytes")
    opcode = _OPCODE.unpack_from(data)[0]
    if opcode not in (Opcode.RRQ, Opcode.WRQ):
        raise MalformedPacket(f"opcode {opcode} is not a request")
    if not data.endswith(b"\0"):
        raise MalformedPacket("request is not NUL-terminated")
    fields = data[2:-1].split(b"\0")
    if len(fields) < 2:
        raise MalformedPacket("request has no transfer mode")
    filename, raw_mode, *rest = fields
    if not filename:
        raise MalformedPacket("request has an empty filename")
    if len(rest) % 2:
        raise MalformedPacket(f"option list has an odd number of fields ({len(rest)})")
    mode = _ascii_lower(raw_mode, "mode")
    options: dict[str, str] = {}
    for i in range(0, len(rest), 2):
        name = _ascii_lower(rest[i], "option name")
        if not name:
            raise MalformedPacket("option list has an empty option name")
        # The first occurrence wins; a repeated option cannot override a validated one.
        options.setdefault(name, _ascii(rest[i + 1], f"value of option {name!r}"))
    return ParsedRequest(opcode, filename, mode, options)


def _ascii(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not ASCII: {raw[:32]!r}") from None


def _ascii_lower(raw: bytes, what: str) -> str:
    return _ascii(raw, what).lower()


def negotiate(
    requested: Mapping[str, str],
    size: int,
    *,
    max_blksize: int,
    max_windowsize: int,
    max_timeout: int = MAX_TIMEOUT_OPTION,
) -> Negotiated:
    """Choose blksize, windowsize and timeout from a client's options; ignore bad ones.

    A timeout over ``max_timeout`` is not acknowledged (RFC 2349 lets a server leave an option
    out): the server keeps its own back-off. Taken as asked, 255 s made one ACK hold a transfer
    slot 255 s per retransmission, 25 minutes in all."""
    acked: dict[str, str] = {}
    blksize = DEFAULT_BLKSIZE
    windowsize = 1
    timeout: float | None = None
    value = _int_option(requested.get("blksize"), MIN_BLKSIZE, MAX_BLKSIZE)
    if value is not None:
        blksize = min(value, max(MIN_BLKSIZE, max_blksize))
        acked["blksize"] = str(blksize)
    if _int_option(requested.get("tsize"), 0, None) is not None:
        acked["tsize"] = str(size)
    value = _int_option(requested.get("timeout"), 1, min(max_timeout, MAX_TIMEOUT_OPTION))
    if value is not None:
        timeout = float(value)
        acked["timeout"] = str(value)
    value = _int_option(requested.get("windowsize"), 1, MAX_WINDOWSIZE_OPTION)
    if value is not None:
        windowsize = min(value, max(1, max_windowsize))
        acked["windowsize"] = str(windowsize)
    return Negotiated(blksize, windowsize, timeout, acked)


def _int_option(raw: str | None, low: int, high: int | None) -> int | None:
    """Return the option as an int when it is a plain decimal in range, else None."""
    if raw is None or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    if value < low or (high is not None and value > high):
        return None
    return value


def data_header(block: int) -> bytes:
    """Return the 4-byte DATA header for a (16-bit wrapped) block number."""
    return _HEADER.pack(Opcode.DATA, block & 0xFFFF)


def encode_ack(block: int) -> bytes:
    """Encode an ACK for a (16-bit wrapped) block number."""
    return _HEADER.pack(Opcode.ACK, block & 0xFFFF)


def encode_error(code: int, message: str) -> bytes:
    """Encode an ERROR packet, trimming the message so the packet stays under 512 bytes."""
    text = message.encode("utf-8", "replace")[: MAX_REQUEST_SIZE - 5]
    return _HEADER.pack(Opcode.ERROR, code) + text + b"\0"


def encode_oack(options: Mapping[str, str]) -> bytes:
    """Encode an OACK acknowledging the given options."""
    parts = [_OPCODE.pack(Opcode.OACK)]
    for name, value in options.items():
        parts.append(name.encode("ascii") + b"\0" + value.encode("ascii") + b"\0")
    return b"".join(parts)


def encode_request(
    opcode: int, filename: str | bytes, mode: str, options: Mapping[str, str] | None = None
) -> bytes:
    """Encode an RRQ/WRQ (used by clients and tests)."""
    name = filename.encode("utf-8") if isinstance(filename, str) else filename
    parts = [_OPCODE.pack(opcode), name, b"\0", mode.encode("ascii"), b"\0"]
    for key, value in (options or {}).items():
        parts.append(key.encode("ascii") + b"\0" + value.encode("ascii") + b"\0")
    return b"".join(parts)


def parse_oack(data: bytes) -> dict[str, str]:
    """Parse an OACK's options (lower-cased names); raise MalformedPacket if broken."""
    if len(data) < 2 or _OPCODE.unpack_from(data)[0] != Opcode.OACK:
        raise MalformedPacket("not an OACK")
    body = data[2:]
    if not body:
        return {}
    if not body.endswith(b"\0"):
        raise MalformedPacket("OACK is not NUL-terminated")
    fields = body[:-1].split(b"\0")
    if len(fields) % 2:
        raise MalformedPacket("OACK has an odd number of fields")
    return {
        _ascii_lower(fields[i], "option name"): _ascii(fields[i + 1], "option value")
        for i in range(0, len(fields), 2)
    }


def parse_error(data: bytes) -> tuple[int, str]:
    """Return (code, message) of an ERROR packet."""
    if len(data) < 4:
        return ErrorCode.UNDEFINED, "truncated error packet"
    code = _OPCODE.unpack_from(data, 2)[0]
    message = data[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return code, message


def netascii_encode(data: bytes) -> bytes:
    """Convert bytes to netascii: CR becomes CR NUL and LF becomes CR LF."""
    # CR first, so the CRs that the LF rule adds are not themselves padded with NUL.
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def normalise_path(raw: bytes) -> str:
    """Turn a requested filename into a safe relative path; raise ValueError with a reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("filename is not valid UTF-8") from None
    _check_chars(text)
    text = text.replace("\\", "/")
    segments = [s for s in text.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise ValueError("filename has a '..' segment")
    path = "/".join(segments)
    if not path:
        raise ValueError("filename is empty")
    _check_percent_layers(path)
    return path


def _check_chars(text: str) -> None:
    for char in text:
        if char < " " or char == "\x7f":
            raise ValueError(f"filename has a control character {char!r}")


def _check_percent_layers(path: str) -> None:
    """Refuse names that become a traversal once percent-decoded (possibly repeatedly)."""
    current = path
    for _ in range(_MAX_PERCENT_LAYERS):
        if "%" not in current:
            return
        try:
            decoded = unquote_to_bytes(current).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("filename is not valid UTF-8 once percent-decoded") from None
        if decoded == current:
            return
        _check_chars(decoded)
        segments = decoded.replace("\\", "/").split("/")
        if ".." in segments:
            raise ValueError("filename has a '..' segment once percent-decoded")
        if decoded.startswith(("/", "\\")):
            raise ValueError("filename is absolute once percent-decoded")
        current = decoded
    raise ValueError("filename is percent-encoded too many times")
