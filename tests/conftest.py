"""Test configuration: CPU, four host devices, strict promotion, shared key fixtures."""

import os

# Must be set before jax initialises its backends.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (
        _flags + " --xla_force_host_platform_device_count=4"
    ).strip()
os.environ.setdefault("MPLBACKEND", "Agg")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """Return a function giving a fresh typed key per call, from a fixed seed."""
    state = {"key": jax.random.key(1234)}

    def _getkey():
        state["key"], sub = jax.random.split(state["key"])
        return sub

    return _getkey


@pytest.fixture(params=["eager", "jit"])
def jit(request):
    """Identity or ``eqx.filter_jit``, so a test runs both eagerly and compiled."""
    if request.param == "eager":
        return lambda f: f

    def jit(f):
        # Wrap in a plain function: filter_jit on a transformed callable (jax.vmap(m))
        # triggers equinox's "JAX-transformed callable as attribute" warning.
        return eqx.filter_jit(lambda *args, **kwargs: f(*args, **kwargs))

    return jit


@pytest.fixture(autouse=True)
def _x64(request):
    """Turn on float64 for tests marked ``x64`` and off again afterwards."""
    if request.node.get_closest_marker("x64") is None:
        yield
        return
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)
