"""The relay as a program: options, config file, the twistd service, its web pages and logs.

- :mod:`promisifier.relay.command_line`: :class:`RelayOptions`, the command line of
  ``twistd promisifier-relay`` and ``python -m promisifier relay`` (``--config``,
  ``--check-config``).
- :mod:`promisifier.relay.relay_config`: the TOML config file -> :class:`RelayConfig` (checked,
  with errors naming the key path); :mod:`promisifier.relay.checks` does the checking,
  :mod:`promisifier.relay.endpoints` looks into Twisted endpoint strings,
  :mod:`promisifier.relay.auth_config` reads a listener's ``auth`` table and
  :mod:`promisifier.relay.bridge_config` the bridges' listener sections.
- :mod:`promisifier.relay.site`: the web site of a listener (WAMP, plain WebSocket
  endpoints, bridges and the web pages on one port).
- :mod:`promisifier.relay.web` (with ``status/``) and :mod:`promisifier.relay.metrics`:
  the status page, its JSON, the health check and Prometheus metrics.
- :mod:`promisifier.relay.logging`: ``--log-format text|json`` and ``--log-level``.
- :mod:`promisifier.relay.memory`: after start-up, memory back to the system and the
  start-up objects out of the garbage collector's way.
- :mod:`promisifier.relay.service`: :func:`make_service`, the service both commands run
  (listeners, reload on SIGHUP, a clean stop).

Nothing is imported here, so that twistd can list its plugins without loading the router.
"""
