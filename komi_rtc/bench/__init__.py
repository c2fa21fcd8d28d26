"""Benchmarks: `python -m komi_rtc.bench` (server load) and `python -m komi_rtc.bench.analysis`."""
