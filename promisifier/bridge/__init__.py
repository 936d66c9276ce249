"""Clients that don't speak WAMP, in a WAMP realm: the rpc-websockets dialect of JSON-RPC
over WebSocket (:mod:`promisifier.bridge.rpc_websockets`), HTTP publish and call
(:mod:`promisifier.bridge.http`) and their wiring into a router
(:mod:`promisifier.bridge.mount`)."""
