"""`python -m services.bench.echo ADDRESS`: a bare grpc.aio server that answers only
grpc.health.v1 Check, with the services' own server options. `gongji bench` calls it with the
same client as the services, so each service's cost reads in echo equivalents."""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.server import SERVER_OPTIONS


async def serve(address: str) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if not server.add_insecure_port(address):
        sys.exit(f"echo: cannot listen on {address}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1]))  # the services' own event loop
