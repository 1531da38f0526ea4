"""The grasp simulator: MuJoCo world, Winkler gel model, GelSight renderer, Calandra protocol.

``tgp simulate`` (:mod:`training.sim.cli`) writes simulated trials in the Calandra shard
layout. See ``docs/simulator.md``.
"""
