"""Shared helpers of the test suite (and of the benchmarks); no test module imports another.

``test/`` is on ``sys.path`` (pyproject's pytest ``pythonpath``; the benchmarks insert it), so
tests import ``from helpers.<module> import ...``:

- :mod:`helpers.bundles`: tiny random-weight model bundles through the real write path.
- :mod:`helpers.fuzz`: the fuzzing harness of the ``test_fuzz_*`` modules (``Tally``, budgets);
  :mod:`helpers.fuzz_run` is ``make fuzz``.
- :mod:`helpers.package`: ``console_scripts()`` as setup.py declares them.
- :mod:`helpers.rig`: the ROS rig (real rclpy, real DDS on loopback): ``Rig``, ``Driver``,
  ``BrightnessPredictor``, ``GraspScript``/``run_grasp``, ``start_predictor``.
- :mod:`helpers.shards`: synthetic trials written as Calandra-layout shards.
- :mod:`helpers.streams`: gripper/frame streams for the trigger core, ``feed_gate``, ``outcomes``.
- :mod:`helpers.waiting`: ``wait_for`` / ``spin_until`` (poll a condition with a deadline).

Fixtures shared by several modules (``ros_context``, ``one_thread``) are in ``conftest.py``.
"""
