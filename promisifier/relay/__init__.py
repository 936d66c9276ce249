"""The relay as a program: options, config file, the twistd service, and (later) its web pages.

- :mod:`promisifier.relay.options`: :class:`RelayOptions`, the command line of
  ``twistd promisifier-relay`` and ``python -m promisifier relay`` (``--config``,
  ``--check-config``).
- :mod:`promisifier.relay.config`: the TOML config file -> :class:`RelayConfig` (checked,
  with errors naming the key path); :mod:`promisifier.relay.checks` does the checking and
  :mod:`promisifier.relay.endpoints` looks into Twisted endpoint strings.
- :mod:`promisifier.relay.site`: the web site of a listener (WAMP and plain WebSocket
  endpoints on one port).
- :mod:`promisifier.relay.service`: :func:`make_service`, the service both commands run
  (listeners, reload on SIGHUP).

Nothing is imported here, so that twistd can list its plugins without loading the router.
"""
