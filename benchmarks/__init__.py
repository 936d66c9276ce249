"""Benchmarks of promisifier: ``python -m benchmarks SCENARIO [options]``.

Each scenario prints ``RESULT name=... value=... unit=...`` lines and writes its figures to
a JSON file. Figures worth keeping go to ``benchmarks/RESULTS.md`` with the exact command.

Scenarios:

* ``patterns``: the router's per-message cost of routing calls and publications with 10
  and with 10,000 registered patterns (exact, prefix, wildcard), in-process, no sockets.
"""
