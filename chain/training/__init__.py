"""Training networks on films and datasets: training loops, metrics.

The data they train on (frame caches, batch samplers, dataset pairs) is `chain.datasets`.

* `chain.training.vaegan`: train a VAE-GAN (``models/vaegan.py``) on one film, with
  checkpoints that resume bit for bit, sample grids and a loss log.
* `chain.training.metrics`: PSNR, the mean-frame baseline, loss-curve plots.
"""
