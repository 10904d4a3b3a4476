"""TFTP services a plugin constructs; provisor serves the files itself, through its pipeline."""

from __future__ import annotations

from typing import TypedDict

from wazo_provd.servers.tftp.packet import Packet

__all__ = ["TFTPFileService", "TFTPNullService", "TFTPRequest"]


class TFTPRequest(TypedDict):
    """A TFTP read request as extractors see it."""

    address: tuple[str, int]
    packet: Packet
    rfc2347: bool


class TFTPFileService:
    """Marks the folder a plugin serves over TFTP (its ``var/tftpboot``)."""

    def __init__(self, path: str) -> None:
        self.path = path


class TFTPNullService:
    """A plugin that serves nothing over TFTP."""

    def __init__(self, errcode: bytes | None = None, errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
