"""Gamma-ray Galactic Centre map simulator: templates, dark matter, point sources."""

from .instrument import (
    DEFAULT_EXPOSURE as DEFAULT_EXPOSURE,
    cartesian_kernels as cartesian_kernels,
    convolve_cartesian as convolve_cartesian,
    convolve_cartesian_unchecked as convolve_cartesian_unchecked,
    convolve_healpix as convolve_healpix,
    convolve_healpix_unchecked as convolve_healpix_unchecked,
    healpix_kernels as healpix_kernels,
    psf_profile as psf_profile,
    psf_sigmas as psf_sigmas,
)
from .point_sources import (
    check_max_sources as check_max_sources,
    check_source_counts as check_source_counts,
    expected_flux as expected_flux,
    expected_number as expected_number,
    sample_fluxes as sample_fluxes,
    sample_population as sample_population,
    source_flux_map as source_flux_map,
)
from .roi import (
    RegionOfInterest as RegionOfInterest,
    roi_d_factor as roi_d_factor,
    roi_j_factor as roi_j_factor,
    roi_pixel_weights as roi_pixel_weights,
    roi_solid_angle as roi_solid_angle,
    roi_subpixels as roi_subpixels,
)
from .simulation import (
    GammaConfig as GammaConfig,
    GammaParams as GammaParams,
    GammaSimulation as GammaSimulation,
    checked_params as checked_params,
    expected_counts as expected_counts,
    expected_f_src as expected_f_src,
    geometry as geometry,
    log_likelihood as log_likelihood,
    simulate as simulate,
)
from .sky import (
    Geometry as Geometry,
    cartesian_geometry as cartesian_geometry,
    healpix_geometry as healpix_geometry,
    roi_mask as roi_mask,
)
from .spectra import (
    bbbar_bins as bbbar_bins,
    bbbar_dnde as bbbar_dnde,
    check_energy_edges as check_energy_edges,
    cutoff_power_law_bins as cutoff_power_law_bins,
    power_law_bins as power_law_bins,
)
from .templates import (
    CONE_CUSP_PSI as CONE_CUSP_PSI,
    PSI_FLOOR as PSI_FLOOR,
    S_MAX_CONVERGED as S_MAX_CONVERGED,
    GNFWHalo as GNFWHalo,
    bubbles_map as bubbles_map,
    bulge_map as bulge_map,
    checked_halo as checked_halo,
    d_factor_map as d_factor_map,
    disk_map as disk_map,
    gas_map as gas_map,
    gnfw_density as gnfw_density,
    ic_map as ic_map,
    isotropic_map as isotropic_map,
    j_factor_cone as j_factor_cone,
    j_factor_map as j_factor_map,
    los_integral as los_integral,
)

__all__ = [n for n in dir() if not n.startswith("_")]
