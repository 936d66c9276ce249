"""The package's public names: all importable, and the relay does not load the client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import promisifier

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", promisifier.__all__)
def test_every_public_name_resolves(name):
    assert getattr(promisifier, name) is not None
    assert name in dir(promisifier)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'conect'"):
        promisifier.conect  # noqa: B018


def test_the_relay_does_not_import_the_client_library():
    probe = (
        "import sys, promisifier.relay.service, promisifier.__main__\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('promisifier.client'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
