"""minibase: a Python backend for mini-programs."""
