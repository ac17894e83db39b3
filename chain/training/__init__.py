"""Training networks on films and datasets: one training loop, two trainers, metrics.

The data they train on (frame caches, batch samplers, dataset pairs) is `chain.datasets`.

* `chain.training.loop`: the loop both generators train in (`train`), behind a small
  `Trainer` protocol: what a generator provides (data, networks, one step, checkpoint
  contents, sample grid); the loop does options, resume, precision, logging, samples,
  checkpoints and Ctrl-C alike for all.
* `chain.training.flags`: each command-line training option declared once (help, type, bounds,
  default), torch-free; the options dataclasses and ``chain train``'s options are made from it.
* `chain.training.options`: keyword-only option dataclasses that nest their model's config,
  the CLI flags that set them, and how ``--resume`` compares them.
* `chain.training.vaegan`, `chain.training.spade`: the two trainers and their options; Python runs
  them with ``train_vaegan(films, out, flags, settings)`` / ``train_spade(data, out, flags, settings)``
  (a mapping of flags or an options dataclass, and a `chain.training.loop.RunSettings`).
* `chain.training.metrics`: PSNR, the mean-frame baseline, loss-curve plots.
"""
