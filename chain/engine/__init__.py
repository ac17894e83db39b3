"""The run engine: what happens to a run's frames between the front doors (`chain.api`, the CLI,
the cluster) and the stages.

`pipeline` is the `Chain` and its run loop; `batches` reads decoded frames in batches (and a
shard's `Part`); `views` says what each output receives for a batch; `render` draws masks,
overlays and side-by-side panels; `summary` keeps the trackers and the `RunSummary`; `overlap`
runs decoding ahead of the networks and writing behind them. Each name is imported from its own
module (``from chain.engine.pipeline import Chain``); this package imports nothing itself.
"""
