"""Client channels to peer services: keepalive matched to the servers, retries on UNAVAILABLE."""

from __future__ import annotations

import json

import grpc

from services.common.faults import PointedCalls

_RETRY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)

CLIENT_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", _RETRY),
]


def channel(address: str, pointed: bool = False) -> grpc.aio.Channel:
    """`pointed`: every call is a fault point (tests that inject faults)."""
    interceptors = [PointedCalls()] if pointed else None
    return grpc.aio.insecure_channel(address, options=CLIENT_OPTIONS, interceptors=interceptors)
