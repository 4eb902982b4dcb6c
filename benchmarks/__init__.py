"""Speed and memory benchmarks; run them as modules from the repository root, e.g.
`python -m benchmarks.run_all` (they import the tests' tiny-model helpers as `tests.tiny_models`)."""
