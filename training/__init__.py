"""Offline work: data, the simulator, self-supervised training, probes, Table I, export.

Depends on the runtime package :mod:`tactile_grasp_predictor`, never the reverse.
"""
