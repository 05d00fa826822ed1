"""jaxdm: differentiable simulators and amortized inference for dark-matter searches.

Subpackages and modules (import what you need; nothing heavy is imported here):
``jaxdm.simulators.{lensing, gamma, xenon}``, ``jaxdm.inference``, ``jaxdm.flows``,
``jaxdm.nn``, ``jaxdm.train``, ``jaxdm.store``, ``jaxdm.tasks``, ``jaxdm.plots``.
"""

__version__ = "0.1.0"
