"""The many-tastes benchmark of the learning loop.

Simulated developers with latent code-style preferences (``tastes``) work through a corpus
of coding contexts (``corpus``) in a real ``prefloop lsp`` talking to a real
``prefloop serve`` (``developer``); after each round the service retrains with its default
settings, and held-out contexts are scored on the served version (``metrics``,
``humaneval``). ``python -m bench.loop`` runs it and writes the tables and plots
(``report``).
"""
