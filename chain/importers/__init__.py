"""Importers: read other frameworks' pretrained files and write them as chain checkpoints (`chain.weights`)."""
