"""Traces of one call across the services (OpenTelemetry), when an exporter is configured.

The standard variable chooses: OTEL_TRACES_EXPORTER=otlp sends spans to the collector named by
the standard OTEL_EXPORTER_OTLP_* variables; `console` writes them as JSON on stdout (a local
look, or a test). Unset or `none`: no interceptor is installed and no call pays for tracing.
A Settle is then one trace: the settlement server's span, its call to the account service and
that service's span, joined by the W3C `traceparent` header the client interceptor sends.
Health checks are left out: they would be most of the spans and tell nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import health_check, negate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

EXPORTERS = ("otlp", "console")


class Tracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    @classmethod
    def of(cls, service: str, exporter: str) -> Tracing | None:
        if not exporter:
            return None
        provider = TracerProvider(resource=Resource.create({"service.name": f"gongji-{service}"}))
        provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
        return cls(provider)

    def server_interceptors(self) -> list[Any]:
        return [aio_server_interceptor(self.provider, filter_=negate(health_check()))]  # type: ignore[no-untyped-call]

    def client_interceptors(self) -> list[Any]:
        return list(aio_client_interceptors(self.provider, filter_=negate(health_check())))  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        """Send what is still buffered (at the end of a drain)."""
        self.provider.shutdown()


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
