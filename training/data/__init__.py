"""Offline data tools: the shard writer, the train/test splits and the training cache.

Import the submodules directly; this package imports nothing so that, e.g., the
simulator can use the writer without pulling in torch.
"""
