"""Summarize a py-spy profile in collapsed-stack form: ``python -m benchmarks.stacks FILE``.

``py-spy record --format raw`` writes one line per distinct stack, ``frame;frame;... N``
(N samples). This prints the functions with the most samples on top of the stack (self)
and the most samples anywhere on the stack (inclusive), as shares of all samples, with
``--idle`` samples (the reactor waiting in epoll) left out unless ``--keep-idle``.
A frame is ``function (file:line)``; ``--by-function`` merges the lines of a function.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")
IDLE = ("poll (twisted/internet/epollreactor.py", "doPoll (twisted/internet/epollreactor.py")


def short(frame: str, by_function: bool) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if by_function or not match["line"]:
        return f"{match['function']} ({path})"
    return f"{match['function']} ({path}:{match['line']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stacks", description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--by-function", action="store_true", help="merge the lines of each function")
    parser.add_argument("--keep-idle", action="store_true", help="count samples waiting in epoll")
    args = parser.parse_args(argv)
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    with open(args.file) as f:
        for line in f:
            match = _LINE.match(line.rstrip("\n"))
            if not match:
                continue
            stack, count = match[1], int(match[2])
            frames = [short(frame, args.by_function) for frame in stack.split(";") if frame]
            if not frames:
                continue
            if not args.keep_idle and any(marker in frames[-1] for marker in IDLE):
                idle += count
                continue
            total += count
            self_counts[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total} busy samples ({idle} idle samples left out)")
    print(f"\nself (top of stack), top {args.top}:")
    for frame, count in self_counts.most_common(args.top):
        print(f"{100 * count / total:6.2f}%  {frame}")
    print(f"\ninclusive (anywhere on the stack), top {args.top}:")
    for frame, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:6.2f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
