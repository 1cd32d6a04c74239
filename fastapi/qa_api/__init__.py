"""Spanish extractive question answering server."""
