"""Temporary names for atomic writes: the runtime package's :mod:`tactile_grasp_predictor.tempfiles`.

The node writes shards too (``record_dir``), so the one implementation lives in the runtime
package; the offline tools import it from here as before.
"""

from tactile_grasp_predictor.tempfiles import host_name, temp_sibling

__all__ = ["host_name", "temp_sibling"]
