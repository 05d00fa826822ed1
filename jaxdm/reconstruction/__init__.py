"""Learned reconstructions of detector observables (analysis layer).

Sits above the learning core (``jaxdm.nn``, ``jaxdm.train``) and the simulators it
reads; nothing below imports it.
"""

from .xenon_position import PositionNet, net_position, train_position_net

__all__ = ["PositionNet", "net_position", "train_position_net"]
