"""The version and the licence: ``promisifier.__version__`` is the package's version, every
command line prints it with ``--version``, and the licence is declared."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

import promisifier
from tests.relay_support import subprocess_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TWISTD = Path(sys.executable).with_name("twistd")

VERSION_COMMANDS = {
    "main": [sys.executable, "-m", "promisifier", "--version"],
    "relay": [sys.executable, "-m", "promisifier", "relay", "--version"],
    "call": [sys.executable, "-m", "promisifier", "call", "--version"],
    "twistd": [str(TWISTD), "-n", "promisifier-relay", "--version"],
}


def test_version_is_a_release_number():
    parts = promisifier.__version__.split(".")
    assert len(parts) == 3 and all(part.isdigit() for part in parts), promisifier.__version__


def test_setup_cfg_takes_the_version_and_declares_the_licence():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    metadata = config["metadata"]
    assert metadata["version"] == "attr: promisifier.__version__"
    assert metadata["license"] == "MIT"
    assert metadata["license_files"] == "LICENSE"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("name", list(VERSION_COMMANDS))
def test_version_option_prints_promisifiers_version(name):
    result = subprocess.run(
        VERSION_COMMANDS[name],
        cwd=REPO,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, f"promisifier {promisifier.__version__}\n"), result.stderr
