"""Bad inputs to the scaling layer: sharded banks, campaign workers, jax.distributed.

Host-side I/O and process start-up, so these cases are eager only; files are built
in a fresh temporary directory when a case runs.
"""

import socket
import tempfile
from pathlib import Path

import cloudpickle
import jax
import numpy as np

from jaxdm import distributed
from jaxdm.campaign import _run_batch, run_campaign, uniform_box
from jaxdm.inference.amortised import sample_posteriors_into
from jaxdm.sharded_store import ShardedStore
from jaxdm.store import SimulationStore
from tests.bad_inputs.case import Case

EAGER = ("eager",)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="jaxdm-bad-scale-"))


def _bank():
    st = ShardedStore.create(_tmp() / "bank", theta_dim=2, x_shape=(3,))
    st.add_region([0, 0], [1, 1])
    return st


def _write(theta_shape, x_shape):
    st = _bank()
    st.write_shard(0, np.full(theta_shape, 0.5), np.ones(x_shape), 0)


def _worker_batch(x_dim):
    """What a Dask worker runs, with a simulator whose x does not fit the bank."""
    st = _bank()
    payload = cloudpickle.dumps(
        (lambda k, th: jax.numpy.zeros(x_dim), uniform_box)
    )  # fmt: skip
    key = jax.random.key(0)
    data, impl = np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    return _run_batch("bad", payload, st.path, data, impl, 0, 4, 0, [0, 0], [1, 1])


def _open_wrong_schema(**kw):
    st = _bank()
    return ShardedStore.open(st.path, **kw)


def _open_h5_as_bank():
    path = _tmp() / "s.h5"
    SimulationStore.create(path, theta_dim=2, x_shape=(3,)).close()
    return ShardedStore.open(path)


def _open_bank_as_h5():
    return SimulationStore.open(_bank().path)


def _silent_coordinator():
    with socket.socket() as s:  # bound, never accepts: a coordinator that is down
        s.bind(("127.0.0.1", 0))
        return distributed.wait_for_coordinator(
            f"127.0.0.1:{s.getsockname()[1]}", timeout=0.5
        )


def _campaign_on_single_file():
    path = _tmp() / "s.h5"
    with SimulationStore.create(path, theta_dim=2, x_shape=(3,)) as st:
        return run_campaign(jax.random.key(0), st, lambda k, t: t, uniform_box, 4,
                            low=[0, 0], high=[1, 1])  # fmt: skip


class _FakeNPE:
    theta_dim = 2


CASES = [
    Case(
        "scale.write_shard: x rows != theta rows",
        _write,
        ((4, 2), (3, 3)),
        match="`x` must have shape",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.write_shard: theta of the wrong width",
        _write,
        ((4, 3), (4, 3)),
        match="`theta` must have shape",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.campaign worker: simulate returns the wrong x shape",
        _worker_batch,
        (5,),
        match="`simulate`.*`x` must have shape",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.ShardedStore.open: wrong theta_dim",
        _open_wrong_schema,
        kwargs={"theta_dim": 4},
        match="`theta_dim`.*wrong schema",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.ShardedStore.open: wrong x_shape",
        _open_wrong_schema,
        kwargs={"x_shape": (64, 64)},
        match="`x_shape`.*wrong schema",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.ShardedStore.open: a single-file store",
        _open_h5_as_bank,
        match="`path`.*not a sharded",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.SimulationStore.open: a sharded bank directory",
        _open_bank_as_h5,
        match="`path`",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.initialize: coordinator does not answer",
        _silent_coordinator,
        match="`coordinator_address`.*did not answer",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.initialize: address without a port",
        distributed.initialize,
        ("nohost", 2, 1),
        match="`coordinator_address`",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.initialize: process_id out of range",
        distributed.initialize,
        ("127.0.0.1:1234", 2, 5),
        match="`process_id`",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.run_campaign: a single-file store",
        _campaign_on_single_file,
        match="`store`",
        modes=EAGER,
    ),  # fmt: skip
    Case(
        "scale.sample_posteriors_into: non-finite observations",
        lambda: sample_posteriors_into(
            jax.random.key(0),
            _FakeNPE(),
            np.full((3, 2), np.nan),
            _tmp() / "p.h5",
            2,
            progress=False,
        ),
        match="`observations`",
        modes=EAGER,
    ),  # fmt: skip
]
