"""Run the installed ``provisor`` console script as a subprocess on a test's data and database.

Its standard output is a pipe, as in a shell pipeline or a CI job. The server's advertised URL
is passed too: every CLI run opens the store and rewrites the ``base`` config from its settings.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from provisor.settings import Settings


def provisor_exe() -> str:
    """The ``provisor`` entry point of this environment (the one pip installed)."""
    beside = Path(sys.executable).parent / "provisor"
    found = str(beside) if beside.exists() else shutil.which("provisor")
    assert found, "the provisor console script is not installed"
    return found


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for a CLI run on the same data directory and database as ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update(
        PROVISOR_DATA_DIR=str(settings.data_dir),
        PROVISOR_DATABASE_URL=settings.database_url,
        PROVISOR_GENERAL__ADVERTISED_HTTP_URL=settings.advertised_http_url,
        COLUMNS="80",
    )
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``provisor ARGS`` to completion (60 s at most)."""
    return subprocess.run(
        [provisor_exe(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(settings),
        check=False,
    )


async def arun_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """run_cli off the event loop (a server may be running on it)."""
    return await asyncio.to_thread(run_cli, settings, *args)
