"""Dynamic authentication and authorization for the relay (see examples/relay.toml).

- ``check_ticket`` is a dynamic ticket authenticator: ``[listeners.auth.ticket]
  authenticator = "relay_auth.check_ticket"``. It is called for an authid that is not
  among the static principals and returns the role (or a dict with ``role`` and
  ``authid``, or a Deferred of either); anything else, or raising, refuses the session.
- ``check_key`` is a dynamic WAMP-Cryptosign authenticator: ``[listeners.auth.cryptosign]
  authenticator = "relay_auth.check_key"``, for public keys no principal lists.
- ``authorize`` is a dynamic authorizer: ``[[realms.roles]] authorizer =
  "relay_auth.authorize"``. It decides each call, register, publish and subscribe of the
  role's sessions: True allows (a Deferred of True too), anything else denies.

The relay imports them by dotted path, so this folder must be on the Python path
(``PYTHONPATH=examples``).
"""

#: tickets of the users checked here (a real one would ask a database or a service)
_TICKETS = {"carol": "carol-ticket"}


def check_ticket(realm, authid, ticket, details):
    if _TICKETS.get(authid) == ticket:
        return "user"
    return None


#: public keys (hex) of devices checked here, by authid
_DEVICE_KEYS = {"6b5a0d4f6ee4e1e1b9c36bb7a5a8d3c8b0f1b0d6a3a4f1e0c2d3e4f5a6b7c8d9": "device-2"}


def check_key(realm, authid, pubkey, details):
    # called only after the client signed the challenge with this key
    if pubkey in _DEVICE_KEYS:
        return {"role": "user", "authid": _DEVICE_KEYS[pubkey]}
    return None


def authorize(session, uri, action):
    # session: the session's details (session id, authid, authrole, authmethod, transport)
    return uri.startswith(f"com.example.{session['authid']}.") or action in ("call", "subscribe")
