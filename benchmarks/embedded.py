"""RPC to a procedure inside the relay: calls/s to an in-process ``register`` (embedding).

The relay process is ``python -m benchmarks.servers relay --embedded``: a
:class:`promisifier.embed.Router` whose in-process session (``Router.session``) registers
``com.bench.echo`` (it returns its first argument). ``--callers`` caller processes call
it over the network with ``--outstanding`` calls in flight per session; each call is 2
network messages (CALL in, RESULT out) plus the in-process INVOCATION and YIELD.
Figures per transport and serializer: ``embedded.T.S.rate`` (calls/s), ``.relay_cpu``,
``.capacity`` (calls/s per relay core).
"""

from __future__ import annotations

import argparse

from benchmarks import harness, rpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    rpc.add_call_arguments(parser)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    return rpc.run_calls(args, "embedded", "embedded")
