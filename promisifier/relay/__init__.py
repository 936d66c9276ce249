"""The relay as a program: options, the twistd service, and (later) its config file and web pages.

- :mod:`promisifier.relay.options`: :class:`RelayOptions`, the command line of
  ``twistd promisifier-relay`` and ``python -m promisifier relay``.
- :mod:`promisifier.relay.service`: :func:`make_service`, the service both of them run.

Nothing is imported here, so that twistd can list its plugins without loading the router.
"""
