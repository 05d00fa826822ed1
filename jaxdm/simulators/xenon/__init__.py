"""Liquid-xenon TPC simulator: recoil spectra -> quanta -> S1/S2 events, expectations.

Layers: :mod:`.spectra` (dR/dE of WIMPs and backgrounds), :mod:`.yields` (NEST v2 mean
light/charge yields and fluctuation parameters), :mod:`.detector` (TPC parameters,
LZ-like and XENONnT-like presets, geometry and corrections), :mod:`.simulate` (the
event sampler, exact or reparameterised, and the Poisson mixture sampler for an
exposure), :mod:`.moments` (signal moments and the per-node Gaussian model),
:mod:`.histogram` (differentiable expected counts per (cS1, log10 cS2) bin, density
at events, binned likelihood) and :mod:`.expectations` (expected counts in a region,
per 1-D bin and in total).

Prior work: Qin & Tunnell (2024), arXiv:2408.09057, built a continuous,
differentiable liquid-xenon simulator and fitted its parameters with NUTS. This package
differs in exposing both a stochastic event sampler (with a reparameterised,
differentiable mode) and a closed-form Gaussian expectation
(:func:`expected_histogram`) of the same chain whose gradients are exact for the
Gaussian approximation, and in composing with the recoil spectra and the jaxdm
inference tools. XENONnT's appletree (JAX, binned/KDE likelihoods from simulated
events) is the closest production tool; NEST (nestpy) is the physics reference for
the yields.

Example::

    from jaxdm.simulators import xenon
    det = xenon.lz_like()
    spec = xenon.flat_er_spectrum(1.0, e_min=0.5, e_max=20.0)
    ev = xenon.simulate_events(jax.random.key(0), spec, det, 10_000)
"""

from .detector import (
    Detector,
    check_detector,
    drift_time,
    electron_survival,
    light_collection,
    lz_like,
    nest_s2_area_scale,
    nest_xenon10_like,
    s2_width,
    sample_positions,
    xenonnt_like,
)
from .expectations import expected_histogram_1d, expected_in_region, expected_total
from .histogram import event_log_rate, expected_histogram, log_likelihood
from .moments import SignalMoments, XenonModel, signal_moments
from .simulate import (
    Events,
    ExposureEvents,
    sample_exposure,
    simulate_energies,
    simulate_events,
)
from .spectra import (
    XENON_NATURAL,
    HaloModel,
    RecoilSpectrum,
    Target,
    b8_cevns_rate,
    b8_spectrum,
    check_spectrum,
    eta_shm,
    expected_counts,
    flat_er_rate,
    flat_er_spectrum,
    helm_form_factor,
    integrate_rate,
    neutron_nr_rate,
    neutron_spectrum,
    tabulated_rate,
    tabulated_spectrum,
    wimp_si_rate,
    wimp_spectrum,
    xenon_isotope,
)
from .yields import (
    NEST_OLD_W_FACTOR,
    NEST_REF_DENSITY,
    W_DAHL_EV,
    MeanYields,
    QuantaStats,
    YieldParams,
    check_yields,
    er_mean_yields,
    lindhard_factor,
    mean_yields,
    nest_w_value,
    nr_mean_yields,
    quanta_fluctuation_params,
    quanta_moments,
    work_function,
)

__all__ = [
    "NEST_OLD_W_FACTOR",
    "NEST_REF_DENSITY",
    "W_DAHL_EV",
    "XENON_NATURAL",
    "Detector",
    "Events",
    "ExposureEvents",
    "HaloModel",
    "MeanYields",
    "QuantaStats",
    "RecoilSpectrum",
    "SignalMoments",
    "Target",
    "XenonModel",
    "YieldParams",
    "b8_cevns_rate",
    "b8_spectrum",
    "check_detector",
    "check_spectrum",
    "check_yields",
    "drift_time",
    "electron_survival",
    "er_mean_yields",
    "eta_shm",
    "event_log_rate",
    "expected_counts",
    "expected_histogram",
    "expected_histogram_1d",
    "expected_in_region",
    "expected_total",
    "flat_er_rate",
    "flat_er_spectrum",
    "helm_form_factor",
    "integrate_rate",
    "light_collection",
    "lindhard_factor",
    "log_likelihood",
    "lz_like",
    "mean_yields",
    "nest_s2_area_scale",
    "nest_w_value",
    "nest_xenon10_like",
    "neutron_nr_rate",
    "neutron_spectrum",
    "nr_mean_yields",
    "quanta_fluctuation_params",
    "quanta_moments",
    "s2_width",
    "sample_exposure",
    "sample_positions",
    "signal_moments",
    "simulate_energies",
    "simulate_events",
    "tabulated_rate",
    "tabulated_spectrum",
    "wimp_si_rate",
    "wimp_spectrum",
    "work_function",
    "xenon_isotope",
    "xenonnt_like",
]

# Non-relativistic EFT recoil spectra (O1, O3-O15; arXiv 1203.3542, 1308.6288).
from .eft import (  # noqa: E402
    EFT_OPERATORS,
    M_V_GEV,
    c1_from_sigma_si,
    eft_couplings,
    eft_nuclear_response,
    eft_rate,
    eft_spectrum,
    eta_perp_shm,
    oscillator_length_fm,
    sigma_si_from_c1,
    xenon_shell_model_target,
)

__all__ += [
    "EFT_OPERATORS",
    "M_V_GEV",
    "c1_from_sigma_si",
    "eft_couplings",
    "eft_nuclear_response",
    "eft_rate",
    "eft_spectrum",
    "eta_perp_shm",
    "oscillator_length_fm",
    "sigma_si_from_c1",
    "xenon_shell_model_target",
]

# PMT arrays, light collection and hit patterns (issue 14, raw-data layer).
from .hit_pattern import (  # noqa: E402
    DEFAULT_LIGHT_CONFIG,
    expected_hit_pattern,
    hit_image,
    light_collection_map,
    mean_s1_collection,
    pmt_efficiency_for_g1,
    sample_hit_pattern,
    top_bottom_asymmetry,
)
from .pmt import (  # noqa: E402
    LightConfig,
    OpticalParams,
    PMTArrays,
    check_optics,
    check_pmt_arrays,
    hex_layout,
    lz_like_pmts,
    small_test_pmts,
    xenonnt_like_pmts,
)

__all__ += [
    "DEFAULT_LIGHT_CONFIG",
    "LightConfig",
    "OpticalParams",
    "PMTArrays",
    "check_optics",
    "check_pmt_arrays",
    "expected_hit_pattern",
    "hex_layout",
    "hit_image",
    "light_collection_map",
    "lz_like_pmts",
    "mean_s1_collection",
    "pmt_efficiency_for_g1",
    "sample_hit_pattern",
    "small_test_pmts",
    "top_bottom_asymmetry",
    "xenonnt_like_pmts",
]
from .position import (  # noqa: E402
    PositionFit,
    ResolutionTable,
    centroid_position,
    likelihood_position,
    position_resolution,
    simulate_s2_patterns,
)

__all__ += [
    "PositionFit",
    "ResolutionTable",
    "centroid_position",
    "likelihood_position",
    "position_resolution",
    "simulate_s2_patterns",
]

# Raw-data layer (issue #14): interaction records, waveforms, reduced pulses, classes.
from .event_classes import (  # noqa: E402
    sample_accidentals,
    sample_below_cathode_s2_only,
    sample_cathode_events,
    sample_event_classes,
    sample_gas_events,
    sample_gate_events,
    sample_multiple_scatters,
    sample_s2_only,
    sample_single_scatters,
)
from .event_rates import (  # noqa: E402
    EventClassRates,
    accidental_rate,
    check_rates,
    class_probabilities,
    lz_like_event_rates,
)
from .interactions import (  # noqa: E402
    CLASS_NAMES,
    REGION_NAMES,
    Interactions,
    interactions_from_events,
    make_interactions,
    select_events,
    stack_interactions,
)
from .pulse_timing import (  # noqa: E402
    PulseParams,
    check_pulse,
    intrinsic_s2_width,
    singlet_fraction,
)
from .pulses import (  # noqa: E402
    PulseFeatures,
    RawFeatures,
    area_quantile_times,
    expected_s2_sigma,
    reduce_raw_events,
    reduce_waveforms,
)
from .waveform import (  # noqa: E402
    Waveform,
    WaveformConfig,
    WaveformParams,
    expected_waveform,
    simulate_waveform,
)

__all__ += [
    "CLASS_NAMES",
    "REGION_NAMES",
    "EventClassRates",
    "Interactions",
    "PulseFeatures",
    "PulseParams",
    "RawFeatures",
    "Waveform",
    "WaveformConfig",
    "WaveformParams",
    "accidental_rate",
    "area_quantile_times",
    "check_pulse",
    "check_rates",
    "class_probabilities",
    "expected_s2_sigma",
    "expected_waveform",
    "interactions_from_events",
    "intrinsic_s2_width",
    "lz_like_event_rates",
    "make_interactions",
    "reduce_raw_events",
    "reduce_waveforms",
    "sample_accidentals",
    "sample_cathode_events",
    "sample_event_classes",
    "sample_gas_events",
    "sample_gate_events",
    "sample_multiple_scatters",
    "sample_below_cathode_s2_only",
    "sample_s2_only",
    "sample_single_scatters",
    "select_events",
    "simulate_waveform",
    "singlet_fraction",
    "stack_interactions",
]
from .raw import (  # noqa: E402
    RawEvents,
    expected_raw_events,
    simulate_hit_patterns,
    simulate_raw_events,
)

__all__ += [
    "RawEvents",
    "expected_raw_events",
    "simulate_hit_patterns",
    "simulate_raw_events",
]
