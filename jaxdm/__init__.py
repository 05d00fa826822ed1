"""jaxdm: differentiable simulators and amortized inference for dark-matter searches."""

__version__ = "0.1.0"
