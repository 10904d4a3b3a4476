"""Resync through Asterisk's manager interface: ``PJSIPNotify`` to the phone's endpoint.

AMI reaches phones behind NAT because Asterisk sends the NOTIFY on the registration's flow.
A connection logs in, sends one action and logs off; answers are matched by ``ActionID``.
Written here because the AMI subset needed is three actions over a line protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass

__all__ = ["AmiError", "AmiSettings", "pjsip_notify"]


class AmiError(Exception):
    """The AMI refused the login or the action, or did not answer."""


@dataclass(frozen=True, slots=True)
class AmiSettings:
    """Where and how to reach Asterisk's AMI."""

    host: str
    port: int
    username: str
    secret: str
    timeout: float = 4.0


def _action(name: str, fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    action_id = secrets.token_hex(6)
    lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), action_id


async def _read_message(reader: asyncio.StreamReader) -> dict[str, str]:
    raw = await reader.readuntil(b"\r\n\r\n")
    message: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            message[key.strip().lower()] = value.strip()
    return message


async def _response(reader: asyncio.StreamReader, action_id: str) -> dict[str, str]:
    while True:
        message = await _read_message(reader)
        if message.get("actionid") == action_id and "response" in message:
            return message


async def pjsip_notify(
    ami: AmiSettings, *, endpoint: str | None = None, uri: str | None = None, event: str
) -> str:
    """Send PJSIPNotify to an endpoint (or a URI); returns AMI's message, raises AmiError."""
    try:
        return await asyncio.wait_for(_notify(ami, endpoint, uri, event), ami.timeout)
    except TimeoutError:
        raise AmiError(
            f"AMI at {ami.host}:{ami.port} did not answer within {ami.timeout:g} s"
        ) from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise AmiError(f"AMI at {ami.host}:{ami.port}: {exc}") from None


async def _notify(ami: AmiSettings, endpoint: str | None, uri: str | None, event: str) -> str:
    reader, writer = await asyncio.open_connection(ami.host, ami.port)
    try:
        await reader.readline()  # banner: "Asterisk Call Manager/x.y"
        data, aid = _action(
            "Login", [("Username", ami.username), ("Secret", ami.secret), ("Events", "off")]
        )
        writer.write(data)
        answer = await _response(reader, aid)
        if answer.get("response", "").lower() != "success":
            raise AmiError(f"AMI login refused: {answer.get('message', 'no reason given')}")
        target = [("Endpoint", endpoint)] if endpoint else [("URI", uri or "")]
        data, aid = _action("PJSIPNotify", [*target, ("Variable", f"Event={event}")])
        writer.write(data)
        answer = await _response(reader, aid)
        if answer.get("response", "").lower() != "success":
            raise AmiError(f"PJSIPNotify failed: {answer.get('message', 'no reason given')}")
        logoff, _ = _action("Logoff", [])
        writer.write(logoff)
        return answer.get("message", "Success")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
