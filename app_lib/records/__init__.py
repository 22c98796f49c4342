"""The records database as the pages use it (shared_store): one store per server, the viewer a
browser session is, the person picker, saving to history."""
