"""Physical constants and unit conversions, each with its unit and source.

Values are CODATA 2018 / IAU 2015 unless stated; simulator-specific defaults
(halo model, detector presets) live next to the physics that uses them.
"""

# Speed of light [km/s] (exact, SI definition).
C_KM_S = 299_792.458
# Speed of light [cm/s].
C_CM_S = 2.99792458e10
# Newton's constant [kpc (km/s)^2 / M_sun] (IAU 2015 nominal GM_sun,
# 1 kpc = 3.0857e16 km).
G_KPC_KMS2_MSUN = 4.30091727e-6
# Newton's constant [Mpc (km/s)^2 / M_sun].
G_MPC_KMS2_MSUN = 4.30091727e-9
# Kiloparsec [cm] (IAU 2012 au, 1 pc = 648000/pi au).
KPC_CM = 3.0856775814913673e21
# Megaparsec [km].
MPC_KM = 3.0856775814913673e19
# Arcsecond [rad].
ARCSEC = 4.84813681109536e-6
# Degree [rad].
DEGREE = 0.017453292519943295
# Solar mass [GeV] (M_sun = 1.98841e30 kg, 1 GeV/c^2 = 1.78266192e-27 kg).
MSUN_GEV = 1.115416e57
# Atomic mass unit [GeV/c^2] (CODATA 2018).
AMU_GEV = 0.93149410242
# Proton mass [GeV/c^2] (CODATA 2018).
PROTON_MASS_GEV = 0.93827208816
# Neutron mass [GeV/c^2] (CODATA 2018).
NEUTRON_MASS_GEV = 0.93956542052
# hbar * c [GeV fm] (CODATA 2018).
HBARC_GEV_FM = 0.1973269804
# Avogadro constant [1/mol] (exact).
AVOGADRO = 6.02214076e23
# Seconds per Julian year [s].
YEAR_S = 3.15576e7
# Fermi constant [GeV^-2] (PDG 2022).
G_FERMI_GEV2 = 1.1663787e-5
# Weak mixing angle sin^2(theta_W) at low energy (MS-bar at Z pole, PDG 2022).
SIN2_THETA_W = 0.23121
# 1 GeV/cm^3 in M_sun/kpc^3.
GEV_CM3_IN_MSUN_KPC3 = KPC_CM**3 / MSUN_GEV
