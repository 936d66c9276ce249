"""``python -m benchmarks SCENARIO [options]``: run one benchmark scenario.

Prints one ``RESULT name=... value=... unit=...`` line per figure and writes every figure,
with the command and the machine, to a JSON file (``--json``, default
``benchmarks/last-SCENARIO.json``, which git ignores).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

#: scenario name -> module with add_arguments(parser) and run(args) -> (results, setup)
SCENARIOS = {
    "patterns": "benchmarks.patterns",
    "rpc": "benchmarks.rpc",
    "embedded": "benchmarks.embedded",
    "latency": "benchmarks.latency",
    "payload": "benchmarks.payload",
    "fanout": "benchmarks.fanout",
    "idle": "benchmarks.idle",
    "startup": "benchmarks.startup",
    "echo": "benchmarks.echo",
    "hotpath": "benchmarks.hotpath",
    "soak": "benchmarks.soak",
    "cluster": "benchmarks.cluster",
    "cluster-soak": "benchmarks.cluster_soak",
    "cluster-death": "benchmarks.cluster_death",
    "workers": "benchmarks.workers",
    "xconn": "benchmarks.versus_xconn",
    "all": "benchmarks.all",
}


def _machine() -> dict:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    modules = {}
    for name, module_name in SCENARIOS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        scenario_parser = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0], description=module.__doc__)
        module.add_arguments(scenario_parser)
        scenario_parser.add_argument(
            "--json",
            type=Path,
            default=Path(__file__).parent / f"last-{name}.json",
            help="where to write the figures (default: benchmarks/last-%(prog)s.json)".replace("%(prog)s", name),
        )
    args = parser.parse_args(argv)
    started = time.time()
    module = modules[args.scenario]
    results, setup = module.run(args)
    for result in [] if getattr(module, "PRINTS_ITS_OWN_RESULTS", False) else results:
        print(f"RESULT name={result['name']} value={result['value']:.4g} unit={result['unit']}", flush=True)
    report = {
        "scenario": args.scenario,
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 2),
        "machine": _machine(),
        "setup": setup,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"figures written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
