"""TFTP packet shapes and opcodes, as extractors receive them."""

from __future__ import annotations

from typing import TypedDict

__all__ = ["OP_RRQ", "Packet"]

OP_RRQ = b"\x00\x01"
OP_WRQ = b"\x00\x02"
OP_DATA = b"\x00\x03"
OP_ACK = b"\x00\x04"
OP_ERR = b"\x00\x05"
OP_OACK = b"\x00\x06"


class Packet(TypedDict, total=False):
    """A read request: opcode, file name and mode as bytes, options."""

    opcode: bytes
    filename: bytes
    mode: bytes
    options: dict[bytes, bytes]
