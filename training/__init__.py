"""Offline work: data sets and splits, the simulator, self-supervised training, probes,
Table I and bundle export. Depends on the runtime package, never the reverse."""
