"""Interceptors that record every RPC in flight, for the report of what a stop cut.

Each RPC is entered when its handler begins and left when it returns (for a streaming
response, when the stream ends or is closed); the entry names the method, the peer, the
start time and whether it streams. The handler's own nature is kept (a coroutine stays a
coroutine, an async generator an async generator, a sync handler runs on its thread), so
grpc serves it exactly as it would without the interceptor.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from .._inflight import InFlight, Work

PeerMap = Callable[[str], str]

_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap(
    handler: grpc.RpcMethodHandler, method: str, inflight: InFlight, peer: PeerMap
) -> grpc.RpcMethodHandler:
    attr, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attr)
    streaming = handler.request_streaming or handler.response_streaming

    def enter(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> int:
        thread = threading.current_thread()
        on_thread = thread if thread is not threading.main_thread() else None
        return inflight.begin(Work(method, peer(context.peer()), streaming, thread=on_thread))

    wrapped: Callable[..., Any]
    if inspect.isasyncgenfunction(behaviour):

        async def agen(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = inflight.begin(Work(method, peer(context.peer()), streaming))
            try:
                async for item in behaviour(request, context):
                    yield item
            finally:
                inflight.end(token)

        wrapped = agen
    elif inspect.iscoroutinefunction(behaviour):

        async def coro(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = inflight.begin(Work(method, peer(context.peer()), streaming))
            try:
                return await behaviour(request, context)
            finally:
                inflight.end(token)

        wrapped = coro
    elif handler.response_streaming:

        def gen(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token = enter(context)
            try:
                yield from behaviour(request, context)
            finally:
                inflight.end(token)

        wrapped = gen
    else:

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            token = enter(context)
            try:
                return behaviour(request, context)
            finally:
                inflight.end(token)

        wrapped = call
    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class TrackingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """For ``grpc.server``: records each RPC in ``inflight``."""

    def __init__(self, inflight: InFlight, peer: PeerMap) -> None:
        self._inflight = inflight
        self._peer = peer

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, handler_call_details.method, self._inflight, self._peer)


class AioTrackingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """For ``grpc.aio.server``: records each RPC in ``inflight``."""

    def __init__(self, inflight: InFlight, peer: PeerMap) -> None:
        self._inflight = inflight
        self._peer = peer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, handler_call_details.method, self._inflight, self._peer)
