"""Micro-benchmarks behind `facescope bench` (each returns one JSON-able dict)."""
