"""The project's Redis client lets a cancel through at every await. A handler whose caller's
deadline passed is cancelled at whatever Redis command it is on, and a service stops its
background loops by cancelling them: a client that swallowed the cancel would leave the handler
running on, and the loop, forever (README "Money safety: the rule every money path follows")."""

import asyncio
import random

from services.common.redisdb import connect

TRIALS = 150


async def test_a_task_cancelled_among_redis_commands_stops(redis_url):
    client = connect(redis_url)
    rng = random.Random(7)
    ran_on = 0
    try:
        for _ in range(TRIALS):

            async def loop() -> None:
                while True:
                    await client.zrange("cancel-probe:z", 0, 99)
                    await client.get("cancel-probe:s")

            task = asyncio.create_task(loop())
            await asyncio.sleep(rng.random() * 0.005)  # lands anywhere in a command
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2)
            if not done:
                ran_on += 1
                task.cancel()
                await asyncio.wait([task], timeout=2)
            else:
                assert task.cancelled()
    finally:
        await client.aclose()
    assert ran_on == 0, f"{ran_on} of {TRIALS} cancelled tasks ran on"
