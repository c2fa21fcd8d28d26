"""Exercise analysis: catalog, repetition counting, scoring and feedback from pose streams."""
