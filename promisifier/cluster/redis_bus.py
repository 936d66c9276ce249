"""The bus on Redis 7, with txredisapi (see :mod:`promisifier.cluster.bus` for the contract).

Two connections per node, each reconnecting on its own with a bounded delay: one for
commands (publications, node messages, scripts; one connection keeps a publisher's order)
and one subscriber connection (the node's inbox channel and the topic channels and
patterns its sessions need).

Keys and channels, all under the prefix ``promisifier:``:

========================  ===================================================================
``nodes``                 sorted set: node name -> last heartbeat (Redis server time, ms)
``slot:<k>``              the node holding session id slot k (expires with the node's TTL)
``n:<node>`` (channel)    a node's inbox: node messages, and its own liveness probes
``t:<realm>:<topic>``     (channel) publications on a topic; prefix and wildcard
                          subscriptions PSUBSCRIBE glob patterns over these
``reg:<realm>:<match>:<uri>``  hash: invoke, realm, uri, match, and ``n:<node>`` for each
                          node with callees for it
``regs``                  set of every ``reg:`` key; ``node-regs:<node>``: those of a node
``sessions:<realm>``      hash: session id -> its details (msgpack), every node's sessions
``node-sessions:<node>``  set of ``<realm> <session id>`` of a node's sessions
``figures:<node>``        a node's status figures (JSON, expiring), for the workers of one
                          relay to show one status page
``testaments:<realm>``    hash: session id -> its testaments (msgpack), for the reaper
``retained:<realm>``      hash: topic -> its retained publication; ``retained-order:<realm>``:
                          sorted set of those topics by time (the oldest go over the cap)
``regs-version``          counter: one step per change of the registration table
``c`` (channel)           every change of the registration table, as msgpack
                          ``[version, realm, uri, match, invoke, node, added]``
========================  ===================================================================

The meta tables (``m:``, ``mi:``, ``mn:``, ``reaped:``) are described in
:mod:`promisifier.cluster.redis_meta`.

txredisapi facts this is built around: while a connection is being re-established its
commands wait forever, so nothing is sent unless the link is up and every awaited reply has
a timeout; its subscriber factory reads neither bytes nor a password, so ours does; it does
not subscribe again after a reconnect, so ours does; a connection that answers nothing any
more is only noticed by a heartbeat that times out (then the connection is aborted); a
subscriber connection that silently stopped delivering is noticed by a probe the node sends
itself through its own inbox with every heartbeat.

The path every cross-node call and publication takes is kept short: replies are parsed by
hiredis (txredisapi's own parser takes a reactor turn, and pauses the connection, after every
bulk string of a reply), a subscriber message goes from the parser straight to the bus, and a
PUBLISH is written as ready-made bytes whose reply is taken from the connection's reply queue
(txredisapi builds a command argument by argument and chains two Deferreds per reply).
Writes need no batching of their own: Twisted sends everything written to a connection
in one reactor turn with one system call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import txredisapi  # type: ignore[import-untyped]
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from promisifier.cluster import redis_meta
from promisifier.cluster.bus import SLOTS, Bus, BusHandler, LinkDown, MetaEntry, RegistrationChange
from promisifier.cluster.cluster_config import ClusterConfig, RedisAddress

log = Logger(namespace="promisifier.cluster")

if txredisapi.hiredis is None:  # a dependency of promisifier; txredisapi only tries it
    raise ImportError("promisifier's cluster needs hiredis (pip install hiredis)")

PREFIX = "promisifier:"
NODES_KEY = PREFIX + "nodes"
SLOT_KEY = PREFIX + "slot:"
#: a node's inbox channel
INBOX = PREFIX + "n:"
#: topic channels
TOPIC = PREFIX + "t:"
_TOPIC_BYTES = TOPIC.encode()
REGISTRATION_PREFIX = PREFIX + "reg:"
REGISTRATIONS_KEY = PREFIX + "regs"
NODE_REGISTRATIONS_PREFIX = PREFIX + "node-regs:"
VERSION_KEY = PREFIX + "regs-version"
SESSIONS_PREFIX = PREFIX + "sessions:"
TESTAMENTS_PREFIX = PREFIX + "testaments:"
RETAINED_PREFIX = PREFIX + "retained:"
RETAINED_ORDER_PREFIX = PREFIX + "retained-order:"
NODE_SESSIONS_PREFIX = PREFIX + "node-sessions:"
#: a node's figures for status pages (expire with their time-to-live)
FIGURES_PREFIX = PREFIX + "figures:"
#: the channel of registration table changes
CHANGES = PREFIX + "c"
_CHANGES_BYTES = CHANGES.encode()
#: the payload of a liveness probe (node messages are never empty)
PROBE = b""
#: seconds a TCP connection attempt to Redis may take
CONNECT_TIMEOUT = 2.0
#: seconds before the first attempt to connect again, doubled up to the maximum
INITIAL_RECONNECT_DELAY = 0.1
MAX_RECONNECT_DELAY = 1.0

# One round trip per heartbeat: refresh this node's score (ZADD answers 1 if the node was
# not there: new server, lost data, or reaped), keep or claim a session id slot, remove the
# nodes whose last heartbeat is older than the TTL (when reaping: whoever removes a node
# cleans up after it, exactly once), probe the node's own inbox, and list the live nodes.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local node, ttl, slot, reap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local fresh = redis.call('ZADD', KEYS[1], now, node)
if slot >= 0 then
  local owner = redis.call('GET', KEYS[2] .. slot)
  if owner == node then
    redis.call('PEXPIRE', KEYS[2] .. slot, ttl)
  elseif owner or not redis.call('SET', KEYS[2] .. slot, node, 'NX', 'PX', ttl) then
    slot = -1
  end
end
if slot < 0 then
  for k = 0, tonumber(ARGV[5]) - 1 do
    if redis.call('SET', KEYS[2] .. k, node, 'NX', 'PX', ttl) then
      slot = k
      break
    end
  end
end
local reaped = {}
if reap then
  reaped = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl))
  for _, gone in ipairs(reaped) do
    redis.call('ZREM', KEYS[1], gone)
  end
end
local receivers = redis.call('PUBLISH', KEYS[3], '')
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')
return {fresh, slot, reaped, live, receivers}
"""

_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
"""

# Registration table scripts. KEYS: the registration's hash, the set of all of them, the
# node's set, the version counter, the changes channel. A hash has four fields besides its
# nodes (invoke, realm, uri, match). Registering answers nil, or the invoke policy of a
# registration it conflicts with (another node's "single", or another policy).
_REGISTER = """
local field = 'n:' .. ARGV[5]
local current = redis.call('HGET', KEYS[1], 'invoke')
if current then
  local mine = redis.call('HEXISTS', KEYS[1], field) == 1
  local alone = mine and redis.call('HLEN', KEYS[1]) == 5
  if not alone and (current ~= ARGV[4] or current == 'single') then
    return current
  end
  if mine and current == ARGV[4] then
    return false
  end
end
redis.call('HSET', KEYS[1], 'invoke', ARGV[4], 'realm', ARGV[1], 'uri', ARGV[2], 'match', ARGV[3], field, '1')
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('SADD', KEYS[3], KEYS[1])
local version = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', KEYS[5], cmsgpack.pack({version, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], 1}))
return false
"""

_UNREGISTER = """
if redis.call('HDEL', KEYS[1], 'n:' .. ARGV[4]) == 0 then
  return 0
end
local invoke = redis.call('HGET', KEYS[1], 'invoke')
if redis.call('HLEN', KEYS[1]) <= 4 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], KEYS[1])
end
redis.call('SREM', KEYS[3], KEYS[1])
local version = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', KEYS[5], cmsgpack.pack({version, ARGV[1], ARGV[2], ARGV[3], invoke, ARGV[4], 0}))
return 1
"""

# KEYS: the realm's session hash, the node's session set; ARGV: session id, details, member
_SESSION_JOINED = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"""

# KEYS: the realm's session hash, the node's session set; ARGV: the realm, then session
# id and details of each session
_SESSIONS_JOINED = """
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('SADD', KEYS[2], ARGV[1] .. ' ' .. ARGV[i])
end
return 1
"""

#: sessions recorded by one script when a node announces itself again (one script for all
#: of 20,000 sessions would hold Redis for a while; one command each costs the node a
#: timer and a reply each, and blocked its reactor for seconds)
SESSIONS_PER_ANNOUNCE = 1000

# KEYS: the realm's session hash, the node's session set, the realm's testaments
_SESSION_LEFT = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

# KEYS: the lost node's registration set, the set of all registrations, the version, the
# channel, the node's session set; ARGV: the node, the prefixes of session and testament
# hashes. Answers the sessions removed: realm, details, testaments or '', realm, ...
_FORGET = """
local removed = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local realm, id = string.match(member, '^(.*) (%d+)$')
  local details = redis.call('HGET', ARGV[2] .. realm, id)
  if details then
    redis.call('HDEL', ARGV[2] .. realm, id)
    table.insert(removed, realm)
    table.insert(removed, details)
    table.insert(removed, redis.call('HGET', ARGV[3] .. realm, id) or '')
  end
  redis.call('HDEL', ARGV[3] .. realm, id)
end
redis.call('DEL', KEYS[5])
local field = 'n:' .. ARGV[1]
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HDEL', key, field) == 1 then
    local r = redis.call('HMGET', key, 'realm', 'uri', 'match', 'invoke')
    if redis.call('HLEN', key) <= 4 then
      redis.call('DEL', key)
      redis.call('SREM', KEYS[2], key)
    end
    local version = redis.call('INCR', KEYS[3])
    redis.call('PUBLISH', KEYS[4], cmsgpack.pack({version, r[1], r[2], r[3], r[4], ARGV[1], 0}))
  end
end
redis.call('DEL', KEYS[1])
return removed
"""

# KEYS: the set of all registrations, the version. Answers the version, then each hash.
_DUMP = """
local out = {tonumber(redis.call('GET', KEYS[2]) or '0')}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  table.insert(out, redis.call('HGETALL', key))
end
return out
"""

# A retained publication, in one command: keep it, forget the oldest topics over the cap,
# publish it. KEYS: the channel, the realm's retained hash, its order; ARGV: payload, topic, cap
_PUBLISH_RETAINED = """
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[2])
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[3])
if extra > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[3], extra)
  for i = 1, #oldest, 2 do
    redis.call('HDEL', KEYS[2], oldest[i])
  end
end
return redis.call('PUBLISH', KEYS[1], ARGV[1])
"""

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    """``text`` as a Redis glob pattern that matches only itself."""
    return text.translate(_GLOB_SPECIAL)


def topic_channel(realm: str, topic: str) -> str:
    return f"{TOPIC}{realm}:{topic}"


def listen_target(realm: str, uri: str, match: str) -> tuple[bool, str]:
    """(is a pattern, channel or glob pattern) for a subscription to ``uri`` with ``match``.

    WAMP's prefix match is by character, like a trailing ``*``. A wildcard URI's empty
    components become ``*``, which also matches across dots: the receiving node checks each
    topic against its subscriptions anyway.
    """
    if match == "exact":
        return False, topic_channel(realm, uri)
    head = glob_escape(f"{TOPIC}{realm}:")
    if match == "prefix":
        return True, head + glob_escape(uri) + "*"
    if match == "wildcard":
        return True, head + ".".join("*" if part == "" else glob_escape(part) for part in uri.split("."))
    raise ValueError(f"unknown match policy {match!r}")


def _publish_command(channel: bytes, payload: bytes) -> bytes:
    """``PUBLISH channel payload`` in Redis's protocol."""
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


def _received(reply: Any) -> bool:
    """A PUBLISH's reply (the number of receivers, or the error instance the reply queue
    holds): whether anybody received it."""
    if type(reply) is int:
        return reply > 0
    if isinstance(reply, txredisapi.ConnectionError):
        raise LinkDown(f"cluster link to Redis: {reply}")
    raise reply


def registration_key(realm: str, uri: str, match: str) -> str:
    return f"{REGISTRATION_PREFIX}{realm}:{match}:{uri}"


def _change(fields: list) -> RegistrationChange:
    version, realm, uri, match, invoke, node, added = fields
    return RegistrationChange(version, realm, uri, match, invoke, node, bool(added))


def _entries(flat: list[bytes]) -> list[RegistrationChange]:
    """The changes that build one registration hash (HGETALL's flat list) from nothing."""
    fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    nodes = [name[2:] for name in fields if name.startswith("n:")]
    return [
        RegistrationChange(0, fields["realm"], fields["uri"], fields["match"], fields["invoke"], node, True)
        for node in nodes
    ]


def redis_endpoint(reactor: Any, address: RedisAddress) -> Any:
    """The client endpoint of the Redis server at ``address`` (TCP, or its UNIX socket)."""
    if address.socket is not None:
        return UNIXClientEndpoint(reactor, address.socket, timeout=CONNECT_TIMEOUT)
    return HostnameEndpoint(reactor, address.host, address.port, timeout=CONNECT_TIMEOUT)


class _Connector:
    """Keeps one connection of a txredisapi factory up: connects, and after a failed attempt
    or a lost connection connects again after a growing delay of at most
    :data:`MAX_RECONNECT_DELAY` (txredisapi's own reconnecting waits up to 10 s and logs
    every attempt; the bus logs the link going down and up, once each)."""

    def __init__(self, factory: Any, endpoint: Any, reactor: Any) -> None:
        self.factory = factory
        self.endpoint = endpoint
        self.reactor = reactor
        self.delay = INITIAL_RECONNECT_DELAY
        self.stopped = False
        self._complained = False
        self._attempt: defer.Deferred | None = None
        self._timer: Any = None

    def start(self) -> None:
        self._timer = None
        if self.stopped or self.factory.stopped:  # stopped, or txredisapi gave up (AUTH refused)
            return
        self._attempt = self.endpoint.connect(self.factory)
        self._attempt.addCallbacks(self._connected, self._failed)

    def _connected(self, protocol: Any) -> None:
        self._attempt = None
        protocol.whenConnected().addCallback(self._usable)
        protocol.whenDisconnected().addCallback(lambda _: self._again())

    def _usable(self, _: object) -> None:
        self.delay = INITIAL_RECONNECT_DELAY
        self._complained = False

    def _failed(self, failure: Any) -> None:
        self._attempt = None
        if failure.check(defer.CancelledError):
            return
        if not self._complained:  # once per outage
            self._complained = True
            log.warn(
                "cluster: cannot connect to Redis ({error}); trying again every {delay} s",
                error=failure.getErrorMessage(),
                delay=MAX_RECONNECT_DELAY,
            )
        self._again()

    def _again(self) -> None:
        if self.stopped or self._timer is not None:
            return
        self._timer = self.reactor.callLater(self.delay, self.start)
        self.delay = min(self.delay * 2, MAX_RECONNECT_DELAY)

    def stop(self) -> None:
        self.stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._attempt is not None:
            self._attempt.cancel()


class _Notifying:
    """A txredisapi factory that tells the bus when its one connection is usable or gone."""

    bus: RedisBus

    def addConnection(self, conn: Any) -> None:  # noqa: N802 - txredisapi's API
        super().addConnection(conn)  # type: ignore[misc]
        if conn in self.pool:  # type: ignore[attr-defined]
            self.bus._connected(self, conn)

    def delConnection(self, conn: Any) -> None:  # noqa: N802
        super().delConnection(conn)  # type: ignore[misc]
        self.bus._disconnected(self, conn)


class _Commands(txredisapi.HiredisProtocol):
    """The command connection: every reply goes to the reply queue as hiredis gives it
    (the bus uses neither MULTI nor pipelining, and reads bytes)."""

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:  # noqa: N802 - Twisted API
        reader = self._reader
        reader.feed(data)
        put = self.replyQueue.put
        reply = reader.gets()
        while reply is not False:
            put(reply)
            reply = reader.gets()


class _CommandFactory(_Notifying, txredisapi.RedisFactory):
    protocol = _Commands

    def __init__(self, bus: RedisBus) -> None:
        address = bus.address
        super().__init__(
            None, address.db, 1, isLazy=True, charset=None, password=address.password, convertNumbers=False
        )
        self.bus = bus


class _Subscriber(txredisapi.SubscriberProtocol):
    def dataReceived(self, data: bytes, unpause: bool = False) -> None:  # noqa: N802 - Twisted API
        reader = self._reader
        reader.feed(data)
        deliver = self.factory.bus._message
        reply = reader.gets()
        while reply is not False:
            # ["message", channel, payload] and ["pmessage", pattern, channel, payload]
            # straight to the bus; acknowledgements and errors as txredisapi handles them
            if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                deliver(reply[1], reply[2])
            elif type(reply) is list and len(reply) == 4 and reply[0] == b"pmessage":
                deliver(reply[2], reply[3])
            else:
                self.replyReceived(reply)
            reply = reader.gets()

    def messageReceived(self, pattern: bytes | None, channel: bytes, message: bytes) -> None:  # noqa: N802
        self.factory.bus._message(channel, message)


class _SubscriberFactory(_Notifying, txredisapi.SubscriberFactory):
    """txredisapi's subscriber factory reads payloads as text and knows no password: this
    one reads bytes and authenticates."""

    protocol = _Subscriber

    def __init__(self, bus: RedisBus) -> None:
        # SubscriberFactory's own __init__ takes no charset or password: skip it
        txredisapi.RedisFactory.__init__(
            self, None, None, 1, isLazy=True, charset=None, password=bus.address.password, convertNumbers=False
        )
        self.bus = bus


@dataclass
class _Listen:
    """One channel or pattern the node listens to, and who waits for its acknowledgement."""

    pattern: bool
    name: str
    acknowledged: bool = False
    waiting: list[defer.Deferred] = field(default_factory=list)

    def acknowledge(self) -> None:
        self.acknowledged = True
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)


class RedisBus(Bus):
    """The bus of one node on one Redis server."""

    def __init__(self, config: ClusterConfig, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        if config.redis is None:
            raise ValueError("a cluster node needs the address of its Redis")
        self.config = config
        #: the Redis server of the cluster
        self.address: RedisAddress = config.redis
        self.node = config.node
        self.reactor = reactor
        #: seconds any awaited Redis reply may take: the time-to-live, not the heartbeat
        #: interval. A reply later than one interval is merely late (a busy machine, a
        #: garbage collection, a reactor turn with thousands of handshakes); only one later
        #: than the time-to-live, past which the others count this node lost anyway, means
        #: the link is broken and worth reconnecting. With the interval as the limit, a
        #: saturated machine made every node reconnect and announce itself again and again.
        self.command_timeout = config.ttl
        self._handler: BusHandler | None = None
        self._commands: _CommandFactory | None = None
        self._subscriptions: _SubscriberFactory | None = None
        self._connectors: list[_Connector] = []
        self._command_conn: Any = None
        self._subscriber_conn: Any = None
        self._inbox_ready = False
        self._up = False
        self._slot: int | None = None
        self._live: frozenset[str] = frozenset()
        self._listens: dict[tuple[bool, str], _Listen] = {}
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = reactor
        self._beating = False
        #: no node is counted lost before this reactor time (after this node's own reconnect)
        self._judge_after = 0.0
        self._probe_seen = 0.0
        self._last_message: tuple[bytes, bytes] | None = None
        #: the inbox channel of each node sent to
        self._inboxes: dict[str, bytes] = {}
        self._stopping = False
        #: the command connection that loaded the meta-table scripts
        self._meta_scripts_on: Any = None
        #: facts for the status page and the metrics
        self.reconnects = 0
        self.dropped_publications = 0

    # -- facts --------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    @property
    def slot(self) -> int | None:
        return self._slot

    @property
    def live_nodes(self) -> frozenset[str]:
        return self._live

    @property
    def inbox(self) -> str:
        return INBOX + self.node

    # -- start and stop -------------------------------------------------------------------

    def start(self, handler: BusHandler) -> None:
        self._handler = handler
        address = self.address
        self._commands = _CommandFactory(self)
        self._subscriptions = _SubscriberFactory(self)
        for factory in (self._commands, self._subscriptions):
            factory.deferred.addErrback(self._connection_error)
            connector = _Connector(factory, redis_endpoint(self.reactor, address), self.reactor)
            self._connectors.append(connector)
            connector.start()
        log.info(
            "cluster node {node} connecting to {redis} (a heartbeat every {interval:g} s, lost after {ttl:g} s)",
            node=self.node,
            redis=str(address),
            interval=self.config.heartbeat_interval,
            ttl=self.config.ttl,
        )

    def _connection_error(self, failure: Any) -> None:
        # txredisapi gives up for good after a failed AUTH or SELECT
        log.error("cluster: Redis refused this node: {error}", error=failure.getErrorMessage())

    @defer.inlineCallbacks
    def stop(self) -> Any:
        self._stopping = True
        if self._heartbeat.running:
            self._heartbeat.stop()
        if self._up and self._slot is not None:
            try:
                yield self._command(
                    "EVAL", _LEAVE, 2, NODES_KEY, f"{SLOT_KEY}{self._slot}", self.node, timeout=self.command_timeout
                )
            except Exception as error:  # noqa: BLE001 - leaving is best effort; the TTL does it too
                log.info("cluster: could not leave cleanly: {error}", error=error)
        for connector in self._connectors:
            connector.stop()
        self._connectors = []
        factories = [factory for factory in (self._commands, self._subscriptions) if factory is not None]
        self._commands = self._subscriptions = None
        yield defer.gatherResults([factory.disconnect() for factory in factories], consumeErrors=True)
        self._set_up(False)

    # -- connections ------------------------------------------------------------------------

    def _connected(self, factory: Any, conn: Any) -> None:
        if factory is self._commands:
            self._command_conn = conn
        elif factory is self._subscriptions:
            self._subscriber_conn = conn
            self._resubscribe(conn)
        self._check_up()

    def _disconnected(self, factory: Any, conn: Any) -> None:
        if factory is self._commands and conn is self._command_conn:
            self._command_conn = None
        elif factory is self._subscriptions and conn is self._subscriber_conn:
            self._subscriber_conn = None
            self._inbox_ready = False
            for listen in self._listens.values():
                listen.acknowledged = False
        self._check_up()

    def _resubscribe(self, conn: Any) -> None:
        """A new subscriber connection: the registration changes and the inbox first (the
        link is up once they are), then every channel and pattern."""
        self._execute_subscribe(conn, False, CHANGES).addErrback(self._ignore)
        self._execute_subscribe(conn, False, self.inbox).addCallbacks(self._inbox_subscribed, self._ignore)
        for listen in self._listens.values():
            self._subscribe(conn, listen)

    def _inbox_subscribed(self, _: object) -> None:
        self._inbox_ready = True
        self._probe_seen = self.reactor.seconds()
        self._check_up()

    def _subscribe(self, conn: Any, listen: _Listen) -> None:
        def acknowledged(_: object) -> None:
            if self._listens.get((listen.pattern, listen.name)) is listen:
                listen.acknowledge()

        self._execute_subscribe(conn, listen.pattern, listen.name).addCallbacks(acknowledged, self._ignore)

    @staticmethod
    def _execute_subscribe(conn: Any, pattern: bool, name: str) -> defer.Deferred:
        # one channel per command: txredisapi matches acknowledgements to commands in order
        return conn.execute_command("PSUBSCRIBE" if pattern else "SUBSCRIBE", name, apply_timeout=False)

    @staticmethod
    def _ignore(failure: Any) -> None:
        """A reply lost with its connection: the reconnect takes care of it."""

    def _check_up(self) -> None:
        up = (
            not self._stopping
            and self._command_conn is not None
            and self._subscriber_conn is not None
            and self._inbox_ready
        )
        self._set_up(up)

    def _set_up(self, up: bool) -> None:
        if up == self._up:
            return
        self._up = up
        if up:
            log.info("cluster node {node}: link to Redis up", node=self.node)
            self._judge_after = self.reactor.seconds() + self.config.ttl
            self._beating = False
            self._heartbeat.start(self.config.heartbeat_interval, now=True)
        else:
            self.reconnects += 1
            if self._heartbeat.running:
                self._heartbeat.stop()
            if not self._stopping:
                log.warn("cluster node {node}: link to Redis down", node=self.node)
            # listeners do not wait for a server that is not there; they are set up again
            # on reconnect
            for listen in self._listens.values():
                listen.acknowledge()
                listen.acknowledged = False
        if self._handler is not None:
            self._handler.bus_link_changed(up)

    def _abort(self, conn: Any, why: str) -> None:
        if conn is not None and conn.transport is not None:
            log.warn("cluster node {node}: {why}; reconnecting", node=self.node, why=why)
            conn.transport.abortConnection()

    # -- commands ----------------------------------------------------------------------------

    def _command(self, *args: Any, timeout: float | None) -> defer.Deferred:
        """Send a command; its reply, or :class:`LinkDown`. ``timeout`` None: no timer of
        its own (for the many small commands of routing): a connection that answers
        nothing fails every command waiting on it when the next heartbeat times out."""
        conn = self._command_conn
        if not self._up or conn is None:
            return defer.fail(LinkDown("cluster link to Redis is down"))
        try:
            d = conn.execute_command(*args)
        except txredisapi.ConnectionError as error:
            return defer.fail(LinkDown(str(error)))
        if timeout is not None:
            d.addTimeout(timeout, self.reactor)
        return d.addErrback(self._as_link_down)

    @staticmethod
    def _as_link_down(failure: Any) -> Any:
        if failure.check(defer.TimeoutError, txredisapi.ConnectionError):
            raise LinkDown(f"cluster link to Redis: {failure.getErrorMessage()}")
        return failure

    # -- heartbeat ---------------------------------------------------------------------------

    def _beat(self) -> None:
        if self._beating:  # the previous one has not answered yet (it times out soon)
            return
        now = self.reactor.seconds()
        if now - self._probe_seen > self.config.ttl:
            self._abort(self._subscriber_conn, "the subscriber connection stopped delivering")
            return
        self._beating = True
        judging = now >= self._judge_after
        d = self._command(
            "EVAL",
            _HEARTBEAT,
            3,
            NODES_KEY,
            SLOT_KEY,
            self.inbox,
            self.node,
            int(self.config.ttl * 1000),
            -1 if self._slot is None else self._slot,
            "1" if judging else "0",
            SLOTS,
            timeout=self.command_timeout,
        )
        d.addCallbacks(self._beaten, self._beat_failed, callbackArgs=(judging,))

    def _beaten(self, reply: list, judging: bool) -> None:
        self._beating = False
        fresh, slot, reaped, live, receivers = reply
        if slot >= 0:
            self._slot = slot
        handler = self._handler
        if handler is None or not self._up:
            return
        if receivers == 0:
            self._abort(self._subscriber_conn, "the subscriber connection no longer listens to the inbox")
        if fresh:
            handler.bus_announce()
        nodes = frozenset(name.decode() for name in live) - {self.node}
        joined = nodes - self._live
        lost = self._live - nodes if judging else frozenset()
        self._live = nodes if judging else nodes | self._live
        if joined or lost:
            handler.bus_nodes_changed(joined, lost)
        if reaped:
            handler.bus_reap([name.decode() for name in reaped])

    def _beat_failed(self, failure: Any) -> None:
        self._beating = False
        if self._up:
            self._abort(self._command_conn, f"heartbeat failed: {failure.getErrorMessage()}")

    # -- topics ------------------------------------------------------------------------------

    def publish_topic(self, realm: str, topic: str, payload: bytes, retain: int = 0) -> bool:
        conn = self._command_conn
        if not self._up or conn is None:
            self.dropped_publications += 1
            return False
        channel = topic_channel(realm, topic)
        if retain:
            keys = (channel, RETAINED_PREFIX + realm, RETAINED_ORDER_PREFIX + realm)
            conn.execute_command("EVAL", _PUBLISH_RETAINED, 3, *keys, payload, topic, retain).addErrback(self._ignore)
        elif conn.connected:
            conn.transport.write(_publish_command(channel.encode(), payload))
            conn.replyQueue.get()  # the reply (or the error instance) is not looked at
        return True

    def retained(self, realm: str) -> defer.Deferred[list[bytes]]:
        return self._command("HVALS", RETAINED_PREFIX + realm, timeout=self.command_timeout)

    def listen(self, realm: str, uri: str, match: str) -> defer.Deferred[None]:
        pattern, name = listen_target(realm, uri, match)
        listen = self._listens.get((pattern, name))
        if listen is None:
            listen = self._listens[(pattern, name)] = _Listen(pattern, name)
            if self._subscriber_conn is not None and self._up:
                self._subscribe(self._subscriber_conn, listen)
        if listen.acknowledged or not self._up:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        listen.waiting.append(d)
        return d

    def unlisten(self, realm: str, uri: str, match: str) -> None:
        pattern, name = listen_target(realm, uri, match)
        listen = self._listens.pop((pattern, name), None)
        if listen is None:
            return
        listen.acknowledge()
        conn = self._subscriber_conn
        if conn is not None:
            conn.execute_command("PUNSUBSCRIBE" if pattern else "UNSUBSCRIBE", name).addErrback(self._ignore)

    def _message(self, channel: bytes, payload: bytes) -> None:
        if payload == PROBE:
            self._probe_seen = self.reactor.seconds()
            return
        handler = self._handler
        if handler is None:
            return
        if not channel.startswith(_TOPIC_BYTES):
            if channel == _CHANGES_BYTES:
                try:
                    change = _change(msgpack.unpackb(payload, raw=False))
                except (ValueError, TypeError, msgpack.UnpackException):
                    log.warn("cluster: unreadable registration change {payload!r}", payload=payload[:100])
                    return
                handler.bus_registration_changed(change)
            else:
                handler.bus_node_message(payload)
            return
        # Redis sends one copy per matching channel and pattern, one right after the other
        # (a publication's payload is unique: it carries a publication id)
        message = (channel, payload)
        if message != self._last_message:
            self._last_message = message
            handler.bus_topic_message(payload)

    # -- node messages ------------------------------------------------------------------------

    def send(self, node: str, payload: bytes) -> defer.Deferred[bool]:
        conn = self._command_conn
        if not self._up or conn is None or not conn.connected:
            return defer.fail(LinkDown("cluster link to Redis is down"))
        channel = self._inboxes.get(node)
        if channel is None:
            channel = self._inboxes[node] = (INBOX + node).encode()
        # no timer of its own, as for the other small commands of routing (see _command)
        conn.transport.write(_publish_command(channel, payload))
        received: defer.Deferred[bool] = conn.replyQueue.get().addCallback(_received)
        return received

    # -- registrations -------------------------------------------------------------------------

    def _registration_keys(self, realm: str, uri: str, match: str) -> tuple[str, ...]:
        key = registration_key(realm, uri, match)
        return (key, REGISTRATIONS_KEY, NODE_REGISTRATIONS_PREFIX + self.node, VERSION_KEY, CHANGES)

    def register(self, realm: str, uri: str, match: str, invoke: str) -> defer.Deferred[str | None]:
        keys = self._registration_keys(realm, uri, match)
        d = self._command(
            "EVAL", _REGISTER, len(keys), *keys, realm, uri, match, invoke, self.node, timeout=self.command_timeout
        )
        return d.addCallback(lambda conflict: conflict.decode() if isinstance(conflict, bytes) else None)

    def unregister(self, realm: str, uri: str, match: str) -> None:
        keys = self._registration_keys(realm, uri, match)
        d = self._command(
            "EVAL", _UNREGISTER, len(keys), *keys, realm, uri, match, self.node, timeout=self.command_timeout
        )
        d.addErrback(self._ignore)

    def registrations(self) -> defer.Deferred[tuple[int, list[RegistrationChange]]]:
        d = self._command("EVAL", _DUMP, 2, REGISTRATIONS_KEY, VERSION_KEY, timeout=self.command_timeout)

        def read(reply: list) -> tuple[int, list[RegistrationChange]]:
            return reply[0], [change for flat in reply[1:] for change in _entries(flat)]

        return d.addCallback(read)

    def forget(self, node: str) -> defer.Deferred[list[tuple[str, bytes]]]:
        keys = (NODE_REGISTRATIONS_PREFIX + node, REGISTRATIONS_KEY, VERSION_KEY, CHANGES, NODE_SESSIONS_PREFIX + node)
        d = self._command(
            "EVAL", _FORGET, len(keys), *keys, node, SESSIONS_PREFIX, TESTAMENTS_PREFIX, timeout=self.command_timeout
        )
        return d.addCallback(
            lambda flat: [(flat[i].decode(), flat[i + 1], flat[i + 2] or None) for i in range(0, len(flat), 3)]
        )

    # -- sessions --------------------------------------------------------------------------------

    def session_joined(self, realm: str, session_id: int, details: bytes) -> None:
        keys = (SESSIONS_PREFIX + realm, NODE_SESSIONS_PREFIX + self.node)
        member = f"{realm} {session_id}"
        d = self._command("EVAL", _SESSION_JOINED, 2, *keys, session_id, details, member, timeout=self.command_timeout)
        d.addErrback(self._ignore)

    def sessions_joined(self, realm: str, sessions: list[tuple[int, bytes]]) -> None:
        keys = (SESSIONS_PREFIX + realm, NODE_SESSIONS_PREFIX + self.node)
        for start in range(0, len(sessions), SESSIONS_PER_ANNOUNCE):
            chunk = sessions[start : start + SESSIONS_PER_ANNOUNCE]
            fields = [value for session_id, details in chunk for value in (session_id, details)]
            d = self._command("EVAL", _SESSIONS_JOINED, 2, *keys, realm, *fields, timeout=self.command_timeout)
            d.addErrback(self._ignore)

    def testaments(self, realm: str, session_id: int, testaments: bytes | None) -> None:
        key = TESTAMENTS_PREFIX + realm
        if testaments is None:
            d = self._command("HDEL", key, session_id, timeout=self.command_timeout)
        else:
            d = self._command("HSET", key, session_id, testaments, timeout=self.command_timeout)
        d.addErrback(self._ignore)

    def session_left(self, realm: str, session_id: int) -> None:
        keys = (SESSIONS_PREFIX + realm, NODE_SESSIONS_PREFIX + self.node, TESTAMENTS_PREFIX + realm)
        d = self._command(
            "EVAL", _SESSION_LEFT, 3, *keys, session_id, f"{realm} {session_id}", timeout=self.command_timeout
        )
        d.addErrback(self._ignore)

    def sessions(self, realm: str) -> defer.Deferred[list[bytes]]:
        return self._command("HVALS", SESSIONS_PREFIX + realm, timeout=self.command_timeout)

    # -- figures ---------------------------------------------------------------------------------

    def share_figures(self, payload: bytes, ttl: float) -> None:
        d = self._command(
            "SET", FIGURES_PREFIX + self.node, payload, "PX", int(ttl * 1000), timeout=self.command_timeout
        )
        d.addErrback(self._ignore)

    def figures(self, nodes: list[str]) -> defer.Deferred[dict[str, bytes]]:
        if not nodes:
            return defer.succeed({})
        d = self._command("MGET", *(FIGURES_PREFIX + node for node in nodes), timeout=self.command_timeout)
        return d.addCallback(lambda values: {node: value for node, value in zip(nodes, values) if value is not None})

    # -- meta tables (promisifier.cluster.redis_meta) ---------------------------------------------

    def _meta(self, script: str, *args: Any) -> defer.Deferred:
        """Run a meta-table script by its SHA1 (a script body is sent once per connection:
        SCRIPT LOAD goes first on a connection that has not loaded them, and Redis runs a
        connection's commands in order)."""
        conn = self._command_conn
        if conn is not None and self._up and self._meta_scripts_on is not conn:
            self._meta_scripts_on = conn
            for body in redis_meta.SCRIPTS:
                self._command("SCRIPT", "LOAD", body, timeout=self.command_timeout).addErrback(self._ignore)
        sha = redis_meta.script_sha(script)
        return self._command("EVALSHA", sha, 0, PREFIX, *args, timeout=self.command_timeout)

    def meta_add(self, entry: MetaEntry) -> defer.Deferred[int]:
        return self._meta(redis_meta.META_ADD, self.node, *redis_meta.entry_args(entry))

    def meta_remove(self, entry: MetaEntry) -> defer.Deferred[int]:
        return self._meta(redis_meta.META_REMOVE, self.node, *redis_meta.entry_args(entry)[:5])

    def meta_announce(self, entries: list[MetaEntry]) -> defer.Deferred[tuple[bool, list[int]]]:
        args = [value for entry in entries for value in redis_meta.entry_args(entry)]
        d = self._meta(redis_meta.META_ANNOUNCE, self.node, *args)
        return d.addCallback(lambda answers: (bool(answers[0]), list(answers[1:])))

    def meta_forget(self, node: str, reaped: bool) -> defer.Deferred[list[tuple[MetaEntry, bool]]]:
        mark = redis_meta.REAPED_MARK_SECONDS if reaped else 0
        d = self._meta(redis_meta.META_FORGET, node, mark)
        return d.addCallback(lambda flat: redis_meta.read_removed(node, flat))

    def meta_table(self, kind: str, realm: str) -> defer.Deferred[list[MetaEntry]]:
        d = self._meta(redis_meta.META_TABLE, kind, realm)
        return d.addCallback(lambda flat: redis_meta.read_table(kind, realm, flat))

    def meta_item(self, kind: str, realm: str, uri: str, match: str) -> defer.Deferred[list[MetaEntry]]:
        key = redis_meta.item_key(PREFIX, kind, realm, uri, match)
        d = self._command("HGETALL", key, timeout=self.command_timeout)
        return d.addCallback(lambda flat: redis_meta.read_fields(kind, realm, uri, match, flat))
