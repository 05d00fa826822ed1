"""Bad inputs to the NR-EFT recoil rate (``jaxdm.simulators.xenon.eft``).

Policy as for the rest of the xenon package: raise, eagerly and under jit, naming
the public argument. Bad values are ``jnp`` arrays so that the traced path runs.
"""

import jax.numpy as jnp

from jaxdm.simulators import xenon
from tests.bad_inputs.case import Case

_E = jnp.array([2.0, 10.0])
_C = xenon.eft_couplings(4, 1.0)
_NAN_C = _C.at[0, 3].set(jnp.nan)
_O2 = _C.at[0, 1].set(1.0)
_O4 = xenon.eft_couplings(4, 1.0)

CASES = [
    Case(
        "xenon_eft.eft_rate: negative mass",
        xenon.eft_rate,
        (_E, jnp.asarray(-50.0), _C),
        match="mass_gev",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_rate: NaN coupling",
        xenon.eft_rate,
        (_E, jnp.asarray(50.0), _NAN_C),
        match="couplings",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_rate: O2 coupling (not in the basis)",
        xenon.eft_rate,
        (_E, jnp.asarray(50.0), _O2),
        match="O2",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_rate: negative energy",
        xenon.eft_rate,
        (jnp.array([-1.0, 5.0]), jnp.asarray(50.0), _C),
        match="energy_kev",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_rate: wrong couplings shape",
        xenon.eft_rate,
        (_E, jnp.asarray(50.0), jnp.ones((2, 14))),
        match="couplings",
    ),
    Case(
        "xenon_eft.eft_rate: helm with a spin operator",
        xenon.eft_rate,
        (_E, jnp.asarray(50.0), _O4),
        {"nuclear_response": "helm"},
        match="helm",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_rate: unknown nuclear response",
        xenon.eft_rate,
        (_E, jnp.asarray(50.0), _C),
        {"nuclear_response": "shell"},
        match="nuclear_response",
    ),
    Case(
        "xenon_eft.eft_couplings: unknown operator",
        xenon.eft_couplings,
        (2, jnp.asarray(1.0)),
        match="operator",
    ),
    Case(
        "xenon_eft.eft_couplings: operator 16",
        xenon.eft_couplings,
        (16, jnp.asarray(1.0)),
        match="operator",
    ),
    Case(
        "xenon_eft.eft_couplings: NaN coupling",
        xenon.eft_couplings,
        (1, jnp.asarray(jnp.nan)),
        match="isoscalar",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eta_perp_shm: negative v_min",
        xenon.eta_perp_shm,
        (jnp.array([-10.0]),),
        match="v_min",
        jit_expect="poison",
    ),
    Case(
        "xenon_eft.eft_nuclear_response: unknown isotope",
        xenon.eft_nuclear_response,
        (jnp.array([10.0]), 127, "M"),
        match="A",
    ),
]
