"""Per-layer statistics on probed steps: capture (probe), reductions (stats) and their numpy/torch ops."""

from nntui.engine.probes.probe import LAYER_FIELDS, Probe, ProbeRecord, param_groups

__all__ = ["LAYER_FIELDS", "Probe", "ProbeRecord", "param_groups"]
