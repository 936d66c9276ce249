"""The meta tables of the bus on Redis: which sessions of which node hold which
registration or subscription (see :class:`~promisifier.cluster.bus.MetaEntry`).

Keys, under the bus's prefix (``promisifier:``):

=====================================  ==========================================================
``m:<kind>:<realm>:<match>:<uri>``     hash: ``<node> <session id>`` -> created (seconds since
                                       the epoch), one field per session holding it
``mi:<kind>:<realm>``                  set of ``<match> <uri>``: the realm's registrations or
                                       subscriptions (those with at least one field)
``mn:<node>``                          hash: ``<kind> <realm> <match> <uri>`` -> how many fields
                                       the node has there (removed at 0), to clean up after it
``reaped:<node>``                      set by the reaper (for an hour): the node was lost and its
                                       entries removed, with meta events
=====================================  ==========================================================

Every change is one Lua script, so that "the first entry" and "the last entry" of a
registration or subscription are decided once for the whole cluster. Realms, match
policies and URIs hold no white space (WAMP URIs cannot), so a space separates them.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from promisifier.cluster.bus import MetaEntry

#: seconds the reaper's mark on a lost node is kept (until the node announces itself again)
REAPED_MARK_SECONDS = 3600

# Functions the scripts share (each script takes only those it uses: the smaller a script,
# the less SCRIPT LOAD sends). ARGV[1] is the key prefix.
_KEYS = """
local P = ARGV[1]
local function item_key(kind, realm, match, uri)
  return P .. 'm:' .. kind .. ':' .. realm .. ':' .. match .. ':' .. uri
end
local function index_key(kind, realm)
  return P .. 'mi:' .. kind .. ':' .. realm
end
"""
_ADD = """
local function add(node, kind, realm, match, uri, session, created)
  local key = item_key(kind, realm, match, uri)
  if redis.call('HSET', key, node .. ' ' .. session, created) == 0 then
    return -1
  end
  redis.call('HINCRBY', P .. 'mn:' .. node, kind .. ' ' .. realm .. ' ' .. match .. ' ' .. uri, 1)
  if redis.call('HLEN', key) == 1 then
    redis.call('SADD', index_key(kind, realm), match .. ' ' .. uri)
    return 1
  end
  return 0
end
"""
_FORGET = """
local function forget(node)
  local removed = {}
  local head = node .. ' '
  for _, member in ipairs(redis.call('HKEYS', P .. 'mn:' .. node)) do
    local kind, realm, match, uri = string.match(member, '^(%S+) (%S+) (%S+) (.*)$')
    local key = item_key(kind, realm, match, uri)
    local sessions = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local rest = string.sub(field, #head + 1)
      if string.sub(field, 1, #head) == head and string.match(rest, '^%d+$') then
        table.insert(sessions, rest)
      end
    end
    for i, session in ipairs(sessions) do
      redis.call('HDEL', key, head .. session)
      local last = 0
      if i == #sessions and redis.call('EXISTS', key) == 0 then
        redis.call('SREM', index_key(kind, realm), match .. ' ' .. uri)
        last = 1
      end
      for _, value in ipairs({kind, realm, match, uri, session, last}) do
        table.insert(removed, value)
      end
    end
  end
  redis.call('DEL', P .. 'mn:' .. node)
  return removed
end
"""

# ARGV: prefix, node, kind, realm, match, uri, session id, created
META_ADD = (
    _KEYS
    + _ADD
    + """
return add(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""
)

# ARGV: prefix, node, kind, realm, match, uri, session id
META_REMOVE = (
    _KEYS
    + """
local node, kind, realm, match, uri = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = item_key(kind, realm, match, uri)
if redis.call('HDEL', key, node .. ' ' .. ARGV[7]) == 0 then
  return -1
end
local member = kind .. ' ' .. realm .. ' ' .. match .. ' ' .. uri
if redis.call('HINCRBY', P .. 'mn:' .. node, member, -1) <= 0 then
  redis.call('HDEL', P .. 'mn:' .. node, member)
end
if redis.call('EXISTS', key) == 0 then
  redis.call('SREM', index_key(kind, realm), match .. ' ' .. uri)
  return 1
end
return 0
"""
)

# ARGV: prefix, node, seconds to keep the reaper's mark (0: no mark). Answers the entries
# removed: kind, realm, match, uri, session id, 1 if it was the last of its item, ...
META_FORGET = (
    _KEYS
    + _FORGET
    + """
local removed = forget(ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', P .. 'reaped:' .. ARGV[2], '1', 'EX', ARGV[3])
end
return removed
"""
)

# ARGV: prefix, node, then kind, realm, match, uri, session id, created for each entry.
# Answers whether the node had been reaped, then add's answer for each entry.
META_ANNOUNCE = (
    _KEYS
    + _ADD
    + _FORGET
    + """
local node = ARGV[2]
local answers = {redis.call('DEL', P .. 'reaped:' .. node)}
forget(node)
for i = 3, #ARGV, 6 do
  table.insert(answers, add(node, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]))
end
return answers
"""
)

# ARGV: prefix, kind, realm. Answers each item's "<match> <uri>" and its fields (HGETALL).
META_TABLE = (
    _KEYS
    + """
local out = {}
for _, member in ipairs(redis.call('SMEMBERS', index_key(ARGV[2], ARGV[3]))) do
  local match, uri = string.match(member, '^(%S+) (.*)$')
  table.insert(out, member)
  table.insert(out, redis.call('HGETALL', item_key(ARGV[2], ARGV[3], match, uri)))
end
return out
"""
)


#: every script, as SCRIPT LOAD takes them (each connection loads them before it runs one)
SCRIPTS = (META_ADD, META_REMOVE, META_FORGET, META_ANNOUNCE, META_TABLE)


@functools.cache
def script_sha(script: str) -> str:
    """The name Redis knows ``script`` by (EVALSHA)."""
    return hashlib.sha1(script.encode()).hexdigest()


def item_key(prefix: str, kind: str, realm: str, uri: str, match: str) -> str:
    """The hash of one registration's callees or one subscription's subscribers."""
    return f"{prefix}m:{kind}:{realm}:{match}:{uri}"


def entry_args(entry: MetaEntry) -> list[str | int]:
    """An entry as the scripts take it (kind, realm, match, uri, session id, created)."""
    return [entry.kind, entry.realm, entry.match, entry.uri, entry.session_id, repr(entry.created)]


def read_fields(kind: str, realm: str, uri: str, match: str, flat: list[bytes]) -> list[MetaEntry]:
    """The entries of one item from its hash (HGETALL's flat list)."""
    entries = []
    for i in range(0, len(flat) - 1, 2):
        node, _, session = flat[i].decode().rpartition(" ")
        try:
            entries.append(MetaEntry(kind, realm, uri, match, node, int(session), float(flat[i + 1])))
        except ValueError:
            continue
    return entries


def read_table(kind: str, realm: str, flat: list[Any]) -> list[MetaEntry]:
    """META_TABLE's answer as entries."""
    entries = []
    for i in range(0, len(flat) - 1, 2):
        match, _, uri = flat[i].decode().partition(" ")
        entries += read_fields(kind, realm, uri, match, flat[i + 1])
    return entries


def read_removed(node: str, flat: list[bytes]) -> list[tuple[MetaEntry, bool]]:
    """META_FORGET's answer as (entry, whether it was the last of its item)."""
    removed = []
    for i in range(0, len(flat) - 5, 6):
        kind, realm, match, uri, session = (value.decode() for value in flat[i : i + 5])
        removed.append((MetaEntry(kind, realm, uri, match, node, int(session)), bool(int(flat[i + 5]))))
    return removed
