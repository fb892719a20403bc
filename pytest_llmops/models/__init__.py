"""Provider access: the model client, the call records, the cache, the retry policy.

Nothing here imports litellm or llama.cpp at module import; backends load
their SDK on first use.
"""
