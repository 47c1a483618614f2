"""Tick-data recorder: journal first, sans-I/O venue adapters, one schema registry, atomic Parquet."""

__version__ = "0.1.0"
