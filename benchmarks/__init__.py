"""Benchmarks: `make bench` (python -m benchmarks) runs every module here with a main()."""
