"""Differentiable simulators: liquid-xenon TPC, strong lensing, gamma-ray sky."""
