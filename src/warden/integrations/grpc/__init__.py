"""gRPC servers (grpcio, sync and ``grpc.aio``) under warden's lifecycle.

Install with the ``grpc`` extra (``grpcio``, ``grpcio-health-checking``). The server is a
component: READY=1 once it accepts RPCs; at stop, health NOT_SERVING during the drain delay,
then a grace bounded by the component's stop timeout and the shutdown deadline, and a
:class:`WorkCut` fact naming each RPC the grace cut. See docs/integrations/grpc.md.
"""

from __future__ import annotations

from .._events import Cut as Cut
from .._events import Draining as Draining
from .._events import WorkCut as WorkCut
from ._server import AioGrpcServer as AioGrpcServer
from ._server import GrpcServer as GrpcServer

__all__ = ["AioGrpcServer", "Cut", "Draining", "GrpcServer", "WorkCut"]
