"""What networks are trained and scored on, shared by `chain.training` and `chain.evaluation`.

* `chain.datasets.frames`: a film decoded once into a memory-mapped uint8 ``.npy`` cache at the
  training size, seeded shuffled batches from it, and the ``WIDTHxHEIGHT`` training size.
* `chain.datasets.pairs`: (image, label map) pairs from dataset folders (CamVid, NVlabs
  COCO-Stuff) or a video labelled by a segmenter, cached once per source and size.
"""
