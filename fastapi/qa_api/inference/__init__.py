"""Inference runtime: model loading, windowing, span decoding, batching. No web framework."""

import os

# torch's OpenMP threads go to sleep when the gap between two parallel regions outlasts their spin,
# and in the server the Python between a forward pass's operations makes such gaps common: waking
# them cost 15-25 ms per forward pass (BETO-shaped, bf16, 2 cores; bench/NOTES.md). One million
# spins is about 13 ms of spinning after the last operation. libgomp reads this once, when torch
# loads, and torch loads only through this package; a value set in the environment wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000000")
