"""The pure core: Genesys constants, the life cycle, the dialing simulation, statistics,
bodies, the engine and schedule parsing. No I/O, no clock, no aiohttp: time and
randomness come in as arguments, so everything here runs under a fake clock and a seed."""
