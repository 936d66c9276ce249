"""RouterCore.traffic: counters by serializer over open and closed connections (in memory)."""

from __future__ import annotations

from typing import Any

from promisifier.relay.web import RelayWeb
from promisifier.transport.stats import ConnectionStats
from tests.memory_router import MemoryClient, MemoryRouter


class CountingClient(MemoryClient):
    """A memory connection with traffic counters, as the transports' connections have."""

    def __init__(self, memory: MemoryRouter, serializer: str | None, stats: ConnectionStats) -> None:
        self.stats = stats  # before the session is made, as a transport does
        super().__init__(memory, serializer)


def join(memory: MemoryRouter, serializer: str | None, **counters: Any) -> CountingClient:
    client = CountingClient(memory, serializer, ConnectionStats(**counters))
    memory.clients.append(client)
    client.join()
    return client


def test_traffic_sums_open_and_closed_connections_by_serializer():
    memory = MemoryRouter()
    a = join(memory, "json", bytes_in=10, messages_in=1, protocol_errors=1)
    b = join(memory, "json", bytes_in=5, bytes_out=7, messages_out=2)
    join(memory, "msgpack", dropped_events=3)
    memory.join(serializer=None)  # an in-process peer without counters is left out
    assert memory.router.traffic() == {
        "json": ConnectionStats(bytes_in=15, bytes_out=7, messages_in=1, messages_out=2, protocol_errors=1),
        "msgpack": ConnectionStats(dropped_events=3),
    }
    b.stats.messages_in += 4  # counters move on: read when asked
    a.drop()  # its counters are kept
    join(memory, "json", bytes_in=100)
    assert memory.router.traffic()["json"] == ConnectionStats(
        bytes_in=115, bytes_out=7, messages_in=5, messages_out=2, protocol_errors=1
    )
    a.stats.bytes_in += 1000  # a closed connection's counters were taken when it closed
    assert memory.router.traffic()["json"].bytes_in == 115


def test_traffic_is_a_copy():
    memory = MemoryRouter()
    join(memory, "json", bytes_in=1).drop()
    memory.router.traffic()["json"].bytes_in += 1000
    assert memory.router.traffic()["json"].bytes_in == 1


def test_no_traffic_without_connections():
    memory = MemoryRouter()
    assert memory.router.traffic() == {}
    join(memory, "msgpack").drop()
    assert memory.router.traffic() == {"msgpack": ConnectionStats()}


def test_the_status_page_reads_the_traffic_afresh_and_its_periodic_readings_share_one():
    memory = MemoryRouter()
    web = RelayWeb.of(memory.router)
    client = join(memory, "json", bytes_in=1)
    assert web.totals()["bytes_in"] == 1
    client.stats.bytes_in = 5
    assert web.totals()["bytes_in"] == 5  # what a client asks for is read afresh
    assert web.local_snapshot()["traffic"]["json"]["bytes_in"] == 5
    client.stats.bytes_in = 9
    assert web._traffic(max_age=2.0)["json"].bytes_in == 5  # the chart's sample reuses a young reading
    memory.advance(2.0)
    assert web._traffic(max_age=2.0)["json"].bytes_in == 9


def test_a_snapshot_lists_at_most_max_rows_per_realm():
    memory = MemoryRouter()
    for _ in range(3):
        memory.join()
    web = RelayWeb.of(memory.router)
    (realm,) = web.local_snapshot(max_rows=2)["realms"]
    assert len(realm["sessions"]) == 2 and realm["counts"]["sessions"] == 3
    (realm,) = web.local_snapshot()["realms"]
    assert len(realm["sessions"]) == 3
