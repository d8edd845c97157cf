"""`make bench`: the real stack on loopback, driven by wrk and small Python drivers (see BENCHMARKS.md)."""
