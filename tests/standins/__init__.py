"""Loopback stand-ins for what cannot be reached here: the public APIs and hosted LLMs.

They speak the real protocols over real sockets on 127.0.0.1, so the product's own code
(httpx, retries, rate limits, parsing) runs exactly as against the real services.
"""
