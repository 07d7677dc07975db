"""The soak test: the production topology on loopback, loaded and broken (`make soak`).

Not a benchmark module (`make bench` does not run it): it starts a dozen processes and
its own Redis and PostgreSQL, and takes minutes. README, Production, Soak.
"""
