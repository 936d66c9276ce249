"""The seeds' APIs as thin façades over the client and the router.

Each façade is a module of its own (e.g. :mod:`promisifier.compat.websockets`, the
Dirigible-style plain WebSocket endpoints, also importable as ``promisifier.websockets``).
Nothing is imported here, so that importing one façade does not load the others.
"""
