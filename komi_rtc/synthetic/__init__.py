"""Synthetic people: a kinematic body model and its rendering as video, for the demo and the
benchmarks."""
