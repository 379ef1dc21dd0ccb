"""Per-layer statistics on probed steps of any model: capture (hooks), probe (snapshot, collect, read),
reductions (stats) and their numpy/torch ops."""

from nntui.engine.probes.capture import find_layers
from nntui.engine.probes.probe import LAYER_FIELDS, Probe, ProbeRecord, param_groups

__all__ = ["LAYER_FIELDS", "Probe", "ProbeRecord", "find_layers", "param_groups"]
