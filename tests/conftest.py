"""Test configuration: CPU, four host devices, strict promotion, shared key fixtures,
and a per-run persistent JAX compilation cache shared by the xdist workers."""

import contextlib
import os
import shutil
import tempfile

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

_CACHE_ENV = "JAXDM_TEST_JAX_CACHE_DIR"


def pytest_configure(config):
    """Point JAX's persistent compilation cache at one temporary folder per run.

    The controller (or a plain serial run) makes the folder and exports its path, so
    the pytest-xdist workers it spawns afterwards share it: a program compiled by one
    worker, or by another test whose closure lowers to the same HLO, is then loaded
    instead of compiled again (compilation dominates this suite's CPU time; measured
    in benchmarks/RESULTS.md, 2026-12-01 ci4). The folder is removed when the run
    ends, so no entry outlives the run or lands in the repository.
    ``JAXDM_TEST_JAX_CACHE_DIR=off`` turns the cache off; a path set by the caller is
    used and kept.
    """
    path = os.environ.get(_CACHE_ENV)
    if path is None:
        path = tempfile.mkdtemp(prefix="jaxdm-jax-cache-")
        os.environ[_CACHE_ENV] = path
        config.stash[_cache_owner] = path
    if path == "off":
        return
    jax.config.update("jax_compilation_cache_dir", path)
    # Cache every program: the suite is thousands of small compilations.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_unconfigure(config):
    """Remove the cache folder this process made (controller or serial run)."""
    path = config.stash.get(_cache_owner, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(_CACHE_ENV, None)


_cache_owner = pytest.StashKey[str]()


@pytest.fixture
def getkey():
    """Return a function giving a fresh typed key per call, from a fixed seed."""
    state = {"key": jax.random.key(1234)}

    def _getkey():
        state["key"], sub = jax.random.split(state["key"])
        return sub

    return _getkey


@pytest.fixture
def jit_traces():
    """Context manager listing the names of the functions ``jax.jit`` traces in it.

    A re-trace is what a compile-once test must catch. Counting the C++ dispatch
    cache (``f._cache_size()``) is not reliable: that cache is one LRU of 8,192
    functions per process, so a worker that ran many tests first evicts the entry
    and the count reads 0 (CI, stop 25). Top-level traces only (JAX records the
    event when no outer trace is active).
    """

    @contextlib.contextmanager
    def traces():
        names: list[str] = []

        def listen(event, duration, **kwargs):
            if event == "/jax/core/compile/jaxpr_trace_duration":
                names.append(str(kwargs.get("fun_name", "")))

        jax.monitoring.register_event_duration_secs_listener(listen)
        try:
            yield names
        finally:
            jax.monitoring.unregister_event_duration_listener(listen)

    return traces


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
