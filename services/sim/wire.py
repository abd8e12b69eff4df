"""One connection to one Redis, one command at a time: what a service's client sends under the
simulator, where only one command is ever in flight (the scheduler opens one gate at a time).

redis-py's asyncio connection (a pool, a stream reader, a timeout per read) is made for many
commands at once; here it was half the time of a run. This is the same wire protocol, packed
and parsed by hiredis as redis-py packs and parses it, its errors the same exceptions
(redis-py's own parser's), and the client's reply callbacks applied as redis-py applies them.
Pipelines go through redis-py's connections as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError


class Wire(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=BaseParser.parse_error, encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[Any] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Wire:
        """A connection speaking RESP3, as redis-py's do (its reply callbacks expect it)."""
        loop = asyncio.get_running_loop()
        _, wire = await loop.create_connection(cls, host, port)
        await wire.ask(("HELLO", 3))
        return wire

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        reply = self.reader.gets()
        if reply is not False and self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(RedisConnectionError(f"connection lost: {exc}"))
        self.transport = None

    async def ask(self, args: tuple[Any, ...]) -> Any:
        """One command's reply (an error reply as its exception, raised)."""
        if self.transport is None:
            raise RedisConnectionError("the connection is closed")
        if isinstance(args[0], str) and " " in args[0]:  # e.g. 'CONFIG GET': words apart
            args = (*args[0].split(), *args[1:])
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(hiredis.pack_command(args))
        reply = await self.waiting
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
