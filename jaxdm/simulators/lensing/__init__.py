"""Strong-lensing image simulator with CDM/WDM subhalo populations."""

from .cosmology import (
    Cosmology as Cosmology,
    angular_diameter_distance as angular_diameter_distance,
    angular_diameter_distance_z1z2 as angular_diameter_distance_z1z2,
    comoving_distance as comoving_distance,
    critical_density as critical_density,
    hubble_rate as hubble_rate,
    sigma_crit as sigma_crit,
)
from .light import (
    GaussianParams as GaussianParams,
    PixelatedParams as PixelatedParams,
    SersicParams as SersicParams,
    gaussian as gaussian,
    pixelated as pixelated,
    sersic as sersic,
    sersic_b as sersic_b,
    sersic_total_flux as sersic_total_flux,
    surface_brightness as surface_brightness,
)
from .mass import (
    EPLParams as EPLParams,
    NFWParams as NFWParams,
    PointMassParams as PointMassParams,
    ShearParams as ShearParams,
    SIEParams as SIEParams,
    SISParams as SISParams,
    SubhaloPopulation as SubhaloPopulation,
    TNFWParams as TNFWParams,
    convergence as convergence,
    deflection as deflection,
    epl_convergence as epl_convergence,
    epl_deflection as epl_deflection,
    epl_potential as epl_potential,
    nfw_convergence as nfw_convergence,
    nfw_deflection as nfw_deflection,
    nfw_enclosed_fraction as nfw_enclosed_fraction,
    nfw_potential as nfw_potential,
    point_mass_deflection as point_mass_deflection,
    point_mass_potential as point_mass_potential,
    potential as potential,
    shear_deflection as shear_deflection,
    shear_potential as shear_potential,
    sie_convergence as sie_convergence,
    sie_deflection as sie_deflection,
    sie_potential as sie_potential,
    sis_convergence as sis_convergence,
    sis_deflection as sis_deflection,
    sis_potential as sis_potential,
    subhalo_convergence as subhalo_convergence,
    subhalo_deflection as subhalo_deflection,
    tnfw_convergence as tnfw_convergence,
    tnfw_deflection as tnfw_deflection,
    tnfw_enclosed_fraction as tnfw_enclosed_fraction,
    tnfw_potential as tnfw_potential,
)
from .observe import (
    GaussianPSF as GaussianPSF,
    KernelPSF as KernelPSF,
    ObservationConfig as ObservationConfig,
    add_noise as add_noise,
    apply_psf as apply_psf,
    bin_image as bin_image,
    euclid_like as euclid_like,
    fft_convolve as fft_convolve,
    hst_like as hst_like,
    pixel_grid as pixel_grid,
    separable_convolve as separable_convolve,
    subpixel_grids as subpixel_grids,
)
from .simulation import (
    LensingParams as LensingParams,
    SceneParams as SceneParams,
    expected_image as expected_image,
    log_likelihood as log_likelihood,
    sample_scene as sample_scene,
    simulate as simulate,
    simulate_population_image as simulate_population_image,
)
from .subhalos import (
    SubhaloConfig as SubhaloConfig,
    SubhaloDraw as SubhaloDraw,
    concentration_duffy08 as concentration_duffy08,
    expected_cdm_number as expected_cdm_number,
    half_mode_mass as half_mode_mass,
    mean_subhalo_mass as mean_subhalo_mass,
    nfw_params_from_mass as nfw_params_from_mass,
    nfw_physical as nfw_physical,
    population_from_draw as population_from_draw,
    required_max_n as required_max_n,
    sample_masses as sample_masses,
    sample_subhalos as sample_subhalos,
    tnfw_params_from_mass as tnfw_params_from_mass,
    wdm_concentration_factor as wdm_concentration_factor,
    wdm_suppression as wdm_suppression,
)

__all__ = [
    n
    for n in dir()
    if not n.startswith("_")
    and n not in {"cosmology", "light", "mass", "observe", "simulation", "subhalos"}
]
