"""The deterministic simulator: the three services' real handlers and Lua scripts over a real
Redis, under a simulated clock and a seeded scheduler, with a seeded workload, the audit's
checks and a model of the rules; `gongji simulate --seed S --steps N` replays one run."""
