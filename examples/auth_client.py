"""Logging in: a WAMP-CRA session and a ticket session, each doing what its role allows.

Start the relay with ``examples/relay_auth.toml`` (users ``alice``, ticket, role ``user``;
``backend``, WAMP-CRA, role ``backend``), then::

    python -m promisifier relay --config examples/relay_auth.toml
    python examples/auth_client.py [--url ws://127.0.0.1:8080/ws] [--realm realm1]

``backend`` logs in with WAMP-CRA (``credentials={"secret": ...}``; the relay sends a
salted challenge, the client derives the key and signs it) and registers
``com.example.greet``. ``alice`` logs in with a ticket (``credentials={"ticket": ...}``)
and calls it, then tries to register a procedure, which her role does not allow. A wrong
ticket is refused. Exits 1 when anything turns out otherwise.
"""

import argparse
import os

from twisted.internet import task

from promisifier import ApplicationError, SessionAborted, connect
from promisifier.cli import exit_on_error


def joined(session) -> str:
    return (
        f"{session.authid} joined {session.realm} as session {session.session_id}: "
        f"role {session.authrole}, authmethod {session.authmethod}"
    )


async def main(reactor, args) -> None:
    backend = await connect(args.url, args.realm, authid="backend", credentials={"secret": args.backend_secret})
    print(joined(backend), flush=True)
    await backend.register("com.example.greet", lambda name: f"hello, {name}")

    alice = await connect(args.url, args.realm, authid="alice", credentials={"ticket": args.alice_ticket})
    print(joined(alice), flush=True)
    print(f"alice calls com.example.greet: {await alice.call('com.example.greet', 'alice')!r}", flush=True)
    try:
        await alice.register("com.example.alice.mine", lambda: None)
        raise SystemExit("alice registered a procedure, but role user should not allow it")
    except ApplicationError as error:
        print(f"alice may not register: {error.error}", flush=True)

    try:
        intruder = await connect(args.url, args.realm, authid="alice", credentials={"ticket": "wrong"})
        await intruder.leave()
        raise SystemExit("a wrong ticket was accepted")
    except SessionAborted as error:
        print(f"a wrong ticket is refused: {error.reason}", flush=True)

    await alice.leave()
    await backend.leave()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PROMISIFIER_URL") or "ws://127.0.0.1:8080/ws")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--alice-ticket", default="alice-secret", help="alice's ticket (relay_auth.toml)")
    parser.add_argument("--backend-secret", default="backend-secret", help="backend's WAMP-CRA secret")
    task.react(exit_on_error(main, "auth_client.py"), (parser.parse_args(),))
