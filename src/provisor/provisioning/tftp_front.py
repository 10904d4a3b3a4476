"""TFTP front end: translates a TFTP read request into a FileRequest for the pipeline.

Identical bytes to HTTP: the same pipeline renders the same cached file. A refusal or a missing
file is TFTP error 1 ("Nowhere to route this request."), a plugin failure error 0.
"""

from __future__ import annotations

from provisor.provisioning.pipeline import Pipeline
from provisor.provisioning.request import FileRequest
from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpRequest, TftpServer
from provisor.settings import Settings

__all__ = ["start_tftp", "tftp_handler"]


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


async def start_tftp(pipeline: Pipeline, settings: Settings) -> TftpServer:
    """Start the TFTP listener configured in the settings."""
    cfg = settings.provisioning
    limits = TftpLimits(
        max_blksize=cfg.tftp_max_blksize,
        max_transfers=cfg.tftp_max_transfers,
        max_transfers_per_client=cfg.tftp_max_transfers_per_client,
    )
    server = TftpServer(
        tftp_handler(pipeline), host=settings.phone_host, port=settings.tftp_port, limits=limits
    )
    await server.start()
    return server
