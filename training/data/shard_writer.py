"""Shards in the Calandra layout: the runtime package's :mod:`tactile_grasp_predictor.data.shard_writer`.

The node records its own grasps into shards (``record_dir``), so the one writer lives in the
runtime package; the offline tools import it from here as before.
"""

from tactile_grasp_predictor.data.shard_writer import DEEPDISH_IO_VERSION, pytables_chunkshape, write_shard

__all__ = ["DEEPDISH_IO_VERSION", "pytables_chunkshape", "write_shard"]
