"""Training networks on films and datasets: one training loop, two trainers, metrics.

The data they train on (frame caches, batch samplers, dataset pairs) is `chain.datasets`.

* `chain.training.loop`: the loop both generators train in (`train`), behind a small
  `Trainer` protocol: what a generator provides (data, networks, one step, checkpoint
  contents, sample grid); the loop does options, resume, precision, logging, samples,
  checkpoints and Ctrl-C alike for all.
* `chain.training.options`: keyword-only option dataclasses that nest their model's config,
  the CLI flags that set them, and how ``--resume`` compares them.
* `chain.training.vaegan`, `chain.training.spade`: the two trainers and their options.
* `chain.training.metrics`: PSNR, the mean-frame baseline, loss-curve plots.
"""
