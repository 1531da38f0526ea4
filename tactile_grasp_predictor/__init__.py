"""Tactile grasp-outcome prediction at run time.

The core (phase tracking, snapshot selection, preprocessing, model definition, bundle
I/O, prediction, replay) imports neither ROS nor the offline ``training`` package; the
ROS 2 adapters live in :mod:`tactile_grasp_predictor.ros`.
"""

__version__ = "0.1.0"
