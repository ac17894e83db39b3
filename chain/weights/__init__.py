"""Weights: one module per model kind with its load, save, `MODEL_KIND` and default location.

* `chain.weights.folder`: our checkpoint format (``model.safetensors`` + ``config.json``) and
  the user's weights folder (``$CHAIN_WEIGHTS``).
* `chain.weights.fit`: configs checked against weight shapes before any memory is allocated;
  safe ``torch.load``.
* `chain.weights.spade`, `chain.weights.vaegan`, `chain.weights.deeplab_mnv2`: each network's
  checkpoints (and, for SPADE, NVlabs' ``latest_net_G.pth``).
* `chain.weights.deeplab`: torchvision's DeepLabV3 weights (its download cache or a state_dict file).
* ControlNet and transformers segmenters load their own formats through diffusers' and
  transformers' ``from_pretrained`` (`chain.stages.hub` finds them in the Hugging Face cache).
"""
