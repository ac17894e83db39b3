"""Code that both the tests and the benchmarks use, and that chain itself never runs.

Reference implementations a benchmark times against (the TF Lite runtime, the palette segmenter's
per-pixel search) and builders of tiny models with random weights. They live here rather than in
``tests/`` so that a benchmark never imports a test module (importing one would also collect its
tests' fixtures and parametrizations), and rather than in ``chain/`` because they are not part of
the tool a user installs (``pyproject.toml`` packages ``chain*`` and ``models*`` only). Both tests
and benchmarks run with the repository root on ``sys.path`` (pytest's rootdir insertion; the
benchmarks put it there themselves).
"""
