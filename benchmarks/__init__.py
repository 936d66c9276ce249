"""Benchmarks of promisifier: ``python -m benchmarks SCENARIO [options]``.

Each scenario prints ``RESULT name=... value=... unit=...`` lines and writes its figures to
a JSON file. Figures worth keeping go to ``benchmarks/RESULTS.md`` with the exact command.

Scenarios:

* ``patterns``: the router's per-message cost of routing calls and publications with 10
  and with 10,000 registered patterns (exact, prefix, wildcard), in-process, no sockets.

Network scenarios (:mod:`benchmarks.harness`): the relay runs in its own process, load
generator workers (:mod:`benchmarks.loadgen`) in others, all on 127.0.0.1; the relay's
CPU share is sampled from ``/proc`` so that each rate also comes with the relay's
capacity at one full core. Each takes ``--transports ws,rs``, ``--serializers
msgpack,json``, ``--seconds``, ``--warmup``, and ``--url`` to measure another router.

* ``rpc``: relayed calls/s (caller -> relay -> callee), W in flight.
* ``embedded``: calls/s to a procedure registered in-process in the relay.
* ``latency``: sequential call latency, p50 / p90 / p99.
* ``payload``: relayed calls with 50 B, 4 KiB and 64 KiB arguments.
* ``fanout``: events delivered/s from 1 publisher to K = 10, 100, 1,000 subscribers.
* ``idle``: relay memory per idle session with 1,000 and 10,000 sessions.
* ``startup``: relay start to listening, to the first WELCOME, idle RSS.
* ``echo``: the ceiling, raw echo servers per transport (autobahn WebSocket, RawSocket).
* ``hotpath``: µs of CPU per relayed call through the real transport protocols in one
  process (no sockets), next to µs per echo of the same transport.
* ``all``: every network scenario in a row.
"""
