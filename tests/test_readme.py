"""README.md runs as written: every Python, shell and TOML code block is run against a relay
on a free port, in the README's order, unless the line before it marks it
``<!-- fragment: why -->`` (it cannot run alone: output samples, code that needs a
surrounding function, a second relay on 8080, a browser) or ``<!-- relay: ... -->`` (the
relay this test starts stands in for it).

How blocks run:

* the ports 8080, 8081, 8082, 8000 and 8443 become free ports (8080 is the test's relay),
  and ``$PROMISIFIER_URL`` points at that relay, so the commands' and examples' defaults
  reach it;
* ``sh``: each command runs with bash from a folder where ``.venv/bin/python``,
  ``.venv/bin/twistd`` and ``examples/`` are this checkout's; it must exit 0, and a
  trailing comment ``# prints VALUE`` with a JSON value is compared with its output.
  Commands that serve until Ctrl-C (:data:`SERVERS`) start in the background, and the
  block goes on once they say they are ready; they stop when the README's section ends;
* ``python``: the block is a script, which must exit 0;
* ``toml``: the block is a configuration file ``--check-config`` must find ``ok``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.relay_support import Process, subprocess_env
from tests.support import free_ports

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RUNNABLE = ("python", "sh", "toml")
#: seconds a command may take
COMMAND_TIMEOUT = 90.0
#: commands that serve until Ctrl-C (a regex on the command line) -> what they print when ready
SERVERS = {
    r"examples/callee\.py": "registered com.example.add",
    r"examples/embedded\.py": "page on",
    r"examples/rpc_server\.py": "listening on",
    r"promisifier subscribe (?!.*--count)": "subscribed to",
    r"promisifier register (?!.*--count)": "registered ",
}
PORTS = ("8080", "8081", "8082", "8000", "8443")

pytestmark = [pytest.mark.process, pytest.mark.slow]


@dataclass
class Block:
    line: int  # of the opening fence
    section: str
    language: str
    text: str
    marker: str  # "", "fragment" or "relay"

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}, {self.section})"


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with their section and marker."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = re.match(r"^(\s*)```(\w*)\s*$", line)
        if fence is None:
            index += 1
            continue
        indent, language = len(fence.group(1)), fence.group(2).lower()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not re.match(r"^\s*```\s*$", lines[index]):
            body.append(lines[index][indent:] if lines[index][:indent].strip() == "" else lines[index])
            index += 1
        index += 1
        previous = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = re.match(r"<!--\s*(fragment|relay)\b", previous)
        blocks.append(Block(start + 1, section, language, "\n".join(body) + "\n", marker.group(1) if marker else ""))
    return blocks


def test_blocks_are_found_and_marked():
    blocks = readme_blocks(README.read_text())
    runnable = [b for b in blocks if b.language in RUNNABLE and not b.marker]
    assert len(runnable) >= 10, [str(b) for b in runnable]
    # the first two commands stay first, marked: the packaging tests and CI run them
    assert blocks[0].text.startswith("python3 -m venv .venv && .venv/bin/pip install . &&")
    assert blocks[1].text.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[test]'")


# -- the run -----------------------------------------------------------------------------------


def _wrapper(path: Path, target: str) -> None:
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(target)} "$@"\n')
    path.chmod(0o755)


class ReadmeRun:
    """The folder the README's commands run in, the relay, and the servers of a section."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = dict(zip(PORTS, (str(port) for port in free_ports(len(PORTS)))))
        bin_dir = workdir / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        _wrapper(bin_dir / "python", sys.executable)
        _wrapper(bin_dir / "python3", sys.executable)
        _wrapper(bin_dir / "twistd", str(Path(sys.executable).with_name("twistd")))
        (workdir / "examples").symlink_to(REPO / "examples")
        self.env = subprocess_env()
        self.env["PATH"] = os.pathsep.join([str(bin_dir), self.env.get("PATH", "")])
        self.env["PROMISIFIER_URL"] = f"ws://127.0.0.1:{self.ports['8080']}/ws"
        self.env.pop("PROMISIFIER_REALM", None)
        self.section = ""
        self.servers: list[subprocess.Popen] = []
        port = self.ports["8080"]
        self.relay = self._start(
            [sys.executable, "-m", "promisifier", "relay", "--endpoint", f"tcp:{port}:interface=127.0.0.1"]
        )
        self.relay.wait_for_output(f"serving ws://127.0.0.1:{port}/ws")

    def _start(self, argv: list[str]) -> Process:
        """A process in the background, in the README's folder and environment."""
        overrides = [f"{name}={self.env[name]}" for name in ("PATH", "PROMISIFIER_URL")]
        return Process(["env", "-u", "PROMISIFIER_REALM", *overrides, *argv], cwd=self.workdir)

    def substitute(self, text: str) -> str:
        for port, free in self.ports.items():
            text = re.sub(rf"(?<!\d){port}(?!\d)", free, text)
        return text

    def enter(self, section: str) -> None:
        if section != self.section:
            self.stop_servers()
            self.section = section

    def stop_servers(self) -> None:
        for server in self.servers:
            if server.popen.poll() is None:
                server.stop(signal.SIGINT, timeout=20)
            server.kill()
        self.servers = []

    def close(self) -> None:
        self.stop_servers()
        self.relay.stop()
        self.relay.kill()

    # -- running ----------------------------------------------------------------------------

    def run(self, argv: list[str], what: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result

    def run_sh(self, block: Block) -> None:
        """The block's commands in one bash script (variables carry from line to line),
        except those that serve (:data:`SERVERS`): each starts in the background at its
        place, and the script goes on once it is ready."""
        script: list[str] = []
        for line in self.substitute(block.text).replace("\\\n", " ").splitlines():
            parts = re.split(r"\s+#\s", line, maxsplit=1)
            command, comment = parts[0].strip(), parts[1].strip() if len(parts) > 1 else ""
            if not command or command.startswith("#"):
                continue
            ready = next((text for pattern, text in SERVERS.items() if re.search(pattern, command)), None)
            if ready is None:
                script.append(_checked(command, comment))
                continue
            self.run_script(script, block)
            script = []
            server = self._start(["bash", "-c", f"exec {command}"])
            self.servers.append(server)
            server.wait_for_output(ready, timeout=COMMAND_TIMEOUT)
        self.run_script(script, block)

    def run_script(self, lines: list[str], block: Block) -> None:
        if lines:
            self.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], str(block))

    def run_python(self, block: Block) -> None:
        script = self.workdir / f"readme_{block.line}.py"
        script.write_text(self.substitute(block.text))
        self.run([str(self.workdir / ".venv" / "bin" / "python"), script.name], str(block))

    def run_toml(self, block: Block) -> None:
        config = self.workdir / f"readme_{block.line}.toml"
        config.write_text(self.substitute(block.text))
        result = self.run([sys.executable, "-m", "promisifier", "relay", "--check-config", config.name], str(block))
        assert result.stdout.strip() == "ok", result.stderr


def _checked(command: str, comment: str) -> str:
    """``command`` as a line of the script; with a comment ``prints VALUE`` (a JSON value),
    one that also fails unless the command prints exactly that."""
    printed = re.match(r"prints (\S.*)$", comment)
    if not printed or not re.match(r'^[-\d"\[{]|^(true|false|null)\b', printed.group(1)):
        return command
    expected = shlex.quote(printed.group(1))
    return (
        f'out=$({command}); if [ "$out" != {expected} ]; then'
        f" echo {shlex.quote(command)}' printed '\"$out\"', not '{expected} >&2; exit 1; fi; echo \"$out\""
    )


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    run = ReadmeRun(tmp_path_factory.mktemp("readme"))
    yield run
    run.close()


RUN = [b for b in readme_blocks(README.read_text()) if b.language in RUNNABLE and not b.marker]


@pytest.mark.parametrize("block", RUN, ids=[f"line{b.line}-{b.language}" for b in RUN])
def test_readme_block_runs_as_written(readme_run, block):
    readme_run.enter(block.section)
    getattr(readme_run, f"run_{block.language}")(block)
