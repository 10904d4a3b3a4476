"""Packaging hook: the wheel carries the vendor plugins of ``plugins/`` as package data.

Everything else is in pyproject.toml. The plugins stay at the top of the source tree (one
folder per vendor, with their tests beside them in tests/plugins/); this copies them into
``provisor/bundled_plugins`` in the built package, where ``provisor.plugins.build`` finds them
when the source tree is not there (an installed wheel).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithPlugins(build_py):
    """build_py, then the bundled plugins beside the package."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).parent / "plugins"
        target = Path(self.build_lib) / "provisor" / "bundled_plugins"
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithPlugins})
