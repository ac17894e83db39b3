"""Training networks on films: frame caches, batch samplers, training loops, metrics.

* `chain.training.frames`: decode a film once into a uint8 ``.npy`` cache at the training
  size (memory-mapped, never all in memory) and draw seeded shuffled batches from it.
* `chain.training.vaegan`: train a VAE-GAN (``models/vaegan.py``) on one film, with
  checkpoints that resume bit for bit, sample grids and a loss log.
* `chain.training.metrics`: PSNR, the mean-frame baseline, loss-curve plots.
"""
