"""``Daemons`` over gRPC: the servicer the daemon registers, and the client ``hodei --server`` uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc

from hodei.api.client import Connection
from hodei.api.errors import answers
from hodei.api.v1 import daemons_pb2 as dpb
from hodei.api.v1 import daemons_pb2_grpc as dpb_grpc
from hodei.services.daemons import LocalDaemons
from hodei.services.views import DaemonInfo

DAEMONS_SERVICE = dpb.DESCRIPTOR.services_by_name["Daemons"].full_name


def daemon_message(daemon: DaemonInfo) -> dpb.Daemon:
    return dpb.Daemon(id=daemon.id, host=daemon.host, pid=daemon.pid, address=daemon.address,
                      version=daemon.version, started_at=daemon.started_at.isoformat(),
                      heartbeat_at=daemon.heartbeat_at.isoformat(), lease_seconds=daemon.lease_seconds,
                      providers_owned=daemon.providers_owned)


def daemon_info(message: dpb.Daemon) -> DaemonInfo:
    return DaemonInfo(id=message.id, host=message.host, pid=message.pid, address=message.address,
                      version=message.version, started_at=datetime.fromisoformat(message.started_at),
                      heartbeat_at=datetime.fromisoformat(message.heartbeat_at),
                      lease_seconds=message.lease_seconds, providers_owned=message.providers_owned)


class DaemonsServicer(dpb_grpc.DaemonsServicer):
    def __init__(self, daemons: LocalDaemons, call: Callable[..., Awaitable[Any]]):
        self.daemons, self.call = daemons, call

    @answers
    async def ListDaemons(self, request: dpb.ListDaemonsRequest, context: grpc.aio.ServicerContext
                          ) -> dpb.ListDaemonsResponse:
        found = await self.call(self.daemons.live)
        return dpb.ListDaemonsResponse(daemons=[daemon_message(d) for d in found])


class RemoteDaemons:
    def __init__(self, connection: Connection):
        self.call = connection.call
        self.api = dpb_grpc.DaemonsStub(connection.channel)

    def live(self) -> list[DaemonInfo]:
        return [daemon_info(d) for d in self.call(self.api.ListDaemons, dpb.ListDaemonsRequest()).daemons]
