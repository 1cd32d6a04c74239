"""Inference runtime: model loading, windowing, span decoding, batching. No web framework."""
