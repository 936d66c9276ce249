"""Every scenario but patterns and soak in a row, with its defaults, into one JSON file.

The order: hotpath, startup, echo, rpc, embedded, latency, payload, fanout, idle.

``--seconds``, ``--warmup``, ``--transports`` and ``--serializers`` are passed to every
scenario that has them; ``--only a,b`` runs a subset. A scenario that fails is reported
(``all.failed`` in the JSON) and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import traceback

from benchmarks import harness

ORDER = ("hotpath", "startup", "echo", "rpc", "embedded", "latency", "payload", "fanout", "idle")
#: this scenario prints each RESULT line as soon as its scenario finished (__main__ does not)
PRINTS_ITS_OWN_RESULTS = True
PASSED = ("seconds", "warmup", "repeat", "transports", "serializers", "relay", "log_dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    parser.add_argument("--only", type=harness.csv(), default=list(ORDER), help="scenarios to run (default: all)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    results: list[dict] = []
    setups: dict = {}
    failed: dict = {}
    for name in args.only:
        if name not in ORDER:
            raise SystemExit(f"--only: one of {', '.join(ORDER)}, not {name!r}")
        module = importlib.import_module(f"benchmarks.{name}")
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        sub_args = parser.parse_args([])
        for key in PASSED:
            if hasattr(sub_args, key):
                value = getattr(args, key)
                if key == "serializers" and name == "idle":
                    value = value[:1]
                setattr(sub_args, key, value)
        try:
            sub_results, setup = module.run(sub_args)
        except Exception as error:  # noqa: BLE001 - the other scenarios still run
            failed[name] = "".join(traceback.format_exception_only(type(error), error)).strip()
            continue
        for result in sub_results:
            print(f"RESULT name={result['name']} value={result['value']:.4g} unit={result['unit']}", flush=True)
        results.extend(sub_results)
        setups[name] = setup
    if failed:
        setups["failed"] = failed
    return results, setups
