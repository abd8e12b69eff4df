"""A gRPC status as a caller receives it, made in process: what an in-process call raises where
a call over the network would raise its `AioRpcError`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc


def status_error(
    code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, str | bytes]] = ()
) -> grpc.aio.AioRpcError:
    """The error a caller sees; `trailing` carries the ErrorInfo (services.common.rpc)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)
