"""Benchmarks (``make bench``): each compares the lab with a named baseline measured in the same run."""
