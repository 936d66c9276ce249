"""Packaging: in fresh virtualenvs, both ``pip install .`` and ``pip install -e .`` make
``twistd --help`` list ``promisifier-relay``, and neither touches Twisted's own
``twisted/plugins/__init__.py``.

Each install builds the project from a copy of this checkout and takes its dependencies
from pip's cache (or the package index). Deselect with ``-m "not packaging"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: what a build of the project reads
PROJECT_FILES = ["pyproject.toml", "setup.cfg", "setup.py", "README.md", "LICENSE", "promisifier", "twisted_plugins"]

pytestmark = [pytest.mark.slow, pytest.mark.packaging, pytest.mark.timeout(600)]


def run(argv: list[str], cwd: Path, timeout: float = 540) -> str:
    """Run a command with a clean Python environment; its output, or fail with it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-5000:]}")
    return result.stdout


def copy_project(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "dropin.cache")
    destination.mkdir()
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    return destination


def site_packages(venv: Path) -> Path:
    (path,) = (venv / "lib").glob("python3*/site-packages")
    return path


def install(tmp_path: Path, editable: bool) -> Path:
    """A fresh virtualenv with the project installed from its own copy of the sources."""
    kind = "editable" if editable else "regular"
    source = copy_project(tmp_path / f"src-{kind}")
    venv = tmp_path / f"venv-{kind}"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *(["-e"] if editable else []), str(source)],
        cwd=tmp_path,
    )
    return venv


@pytest.fixture(scope="module")
def venvs(tmp_path_factory) -> dict[str, Path]:
    """``pip install .`` and ``pip install -e .``, each in a new virtualenv, side by side."""
    tmp_path = tmp_path_factory.mktemp("packaging")
    with ThreadPoolExecutor(2) as pool:
        regular = pool.submit(install, tmp_path, False)
        editable = pool.submit(install, tmp_path, True)
        return {"regular": regular.result(), "editable": editable.result()}


@pytest.mark.parametrize("kind", ["regular", "editable"])
def test_twistd_lists_the_plugin(venvs, kind, tmp_path):
    venv = venvs[kind]
    twistd = str(venv / "bin" / "twistd")
    # twice: the first run writes dropin.cache next to the plugin, the second reads it
    for _ in range(2):
        assert "promisifier-relay" in run([twistd, "--help"], cwd=tmp_path)
    help_text = run([twistd, "promisifier-relay", "--help"], cwd=tmp_path)
    for option in ("--endpoint", "--path", "--realm", "--max-message-size"):
        assert option in help_text


@pytest.mark.parametrize("kind", ["regular", "editable"])
def test_twisteds_own_plugins_are_untouched(venvs, kind, tmp_path):
    venv = venvs[kind]
    plugins = site_packages(venv) / "twisted" / "plugins"
    assert "pluginPackagePaths" in (plugins / "__init__.py").read_text()
    (record,) = site_packages(venv).glob("promisifier-*.dist-info/RECORD")
    assert "twisted/plugins/__init__.py" not in record.read_text()
    # twistd still finds Twisted's own plugins next to ours
    assert "web " in run([str(venv / "bin" / "twistd"), "--help"], cwd=tmp_path)


def test_regular_install_ships_the_plugin_module(venvs):
    assert (site_packages(venvs["regular"]) / "twisted" / "plugins" / "promisifier_relay.py").is_file()


def test_editable_install_runs_the_checkout(venvs, tmp_path):
    venv = venvs["editable"]
    source = venv.parent / "src-editable"
    code = "import os, promisifier.relay.command_line as m; print(os.path.realpath(m.__file__))"
    imported = Path(run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path).strip())
    assert imported == (source / "promisifier" / "relay" / "command_line.py").resolve()
    # twistd's plugin cache went next to the linked plugin, not into the sources
    run([str(venv / "bin" / "twistd"), "--help"], cwd=tmp_path)
    assert not (source / "twisted_plugins" / "dropin.cache").exists()


def test_regular_install_has_the_version_and_the_licence(venvs, tmp_path):
    python = str(venvs["regular"] / "bin" / "python")
    code = (
        "import importlib.metadata as m, promisifier; d = m.metadata('promisifier');"
        " print(d['Version'], promisifier.__version__, d['License'])"
    )
    version, own, licence = run([python, "-c", code], cwd=tmp_path).split()
    assert version == own and licence == "MIT"
    (dist_info,) = site_packages(venvs["regular"]).glob("promisifier-*.dist-info")
    assert any(path.name == "LICENSE" for path in dist_info.rglob("LICENSE"))


def test_regular_install_can_do_tls(venvs, tmp_path):
    # wss:// clients and ssl: listeners work after `pip install .` alone
    code = "import OpenSSL, service_identity; from twisted.internet import ssl; print(ssl.optionsForClientTLS)"
    assert "optionsForClientTLS" in run([str(venvs["regular"] / "bin" / "python"), "-c", code], cwd=tmp_path)
