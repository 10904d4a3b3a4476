"""TFTP front end: translates a TFTP read request into a FileRequest for the pipeline.

Identical bytes to HTTP: the same pipeline renders the same cached file. A refusal or a missing
file is TFTP error 1 ("Nowhere to route this request."), a plugin failure error 0.
"""

from __future__ import annotations

import logging
import socket

from provisor.provisioning.pipeline import Pipeline
from provisor.provisioning.request import FileRequest
from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpRequest, TftpServer
from provisor.settings import Settings

__all__ = ["start_tftp", "tftp_handler"]

log = logging.getLogger(__name__)


def tftp_handler(pipeline: Pipeline):  # type: ignore[no-untyped-def]
    """The TftpHandler that runs the pipeline."""

    async def handle(req: TftpRequest) -> TftpReply:
        # a banned address is refused (and logged) by the pipeline itself
        result = await pipeline.handle(FileRequest("tftp", req.filename, req.client[0]))
        if result.status == 200:
            if result.file is not None:
                return TftpReply(data=result.file.read_bytes())
            return TftpReply(data=result.body)
        if result.status == 404:
            return TftpReply(error_code=1, error_message="Nowhere to route this request.")
        if result.status == 503:  # database unreachable and no earlier copy of this file
            return TftpReply(error_code=0, error_message="Service unavailable, try again later")
        return TftpReply(error_code=0, error_message="Internal processing error")

    return handle


async def start_tftp(
    pipeline: Pipeline,
    settings: Settings,
    *,
    max_transfers: int | None = None,
    share: int = 1,
    sock: socket.socket | None = None,
) -> TftpServer:
    """Start the TFTP listener configured in the settings.

    ``max_transfers`` is the file-descriptor share of TFTP (a socket per transfer): the
    configured cap is lowered to it so a flood of requests cannot starve the HTTP listeners.
    ``share`` is the number of phone workers serving the same socket (``sock``, bound by the
    main process): each takes that fraction of ``tftp_max_transfers`` and of the reserved
    slots, so the configured total holds; the per-client cap is each worker's.
    """
    cfg = settings.provisioning
    total = max(1, cfg.tftp_max_transfers // share)
    if max_transfers is not None and max_transfers < total:
        log.warning(
            "tftp: at most %d transfers at once (the file-descriptor limit's share), not %d",
            max_transfers,
            total,
        )
        total = max_transfers
    limits = TftpLimits(
        max_blksize=cfg.tftp_max_blksize,
        max_transfers=total,
        max_transfers_per_client=cfg.tftp_max_transfers_per_client,
        reserved_transfers=min(cfg.tftp_reserved_transfers // share, total // 2),
        reserved_per_client=cfg.tftp_reserved_per_client,
        unacked_timeout=cfg.tftp_unacked_timeout,
        busy_grace=cfg.tftp_busy_grace,
    )
    server = TftpServer(
        tftp_handler(pipeline),
        host=settings.phone_host,
        port=settings.tftp_port,
        limits=limits,
        sock=sock,
    )
    await server.start()
    return server
