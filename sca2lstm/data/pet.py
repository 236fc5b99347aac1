"""Potential evapotranspiration from air temperature and latitude (Oudin et al., 2005).

    PE = Re / (lambda * rho) * (T + 5) / 100    if T + 5 > 0, else 0          [m/d]
       = Re / 2.45 * (T + 5) / 100                                              [mm/d, Re in MJ m-2 d-1]

with T the daily mean air temperature (degC), lambda = 2.45 MJ/kg the latent heat of vaporisation,
rho = 1000 kg/m3 the density of water, and Re the extraterrestrial radiation of the day, from latitude
and day of year by FAO-56 (Allen et al., 1998, eq. 21-25):

    dr    = 1 + 0.033 cos(2 pi J / 365)                       inverse relative Earth-Sun distance
    delta = 0.409 sin(2 pi J / 365 - 1.39)                    solar declination (rad)
    ws    = arccos(-tan(phi) tan(delta))                      sunset hour angle (rad)
    Re    = 24 * 60 / pi * Gsc * dr * (ws sin(phi) sin(delta) + cos(phi) cos(delta) sin(ws))

Gsc = 0.0820 MJ m-2 min-1 (solar constant), phi the latitude (rad), J the day of the year (1..366).
Beyond the polar circles the arccos argument leaves [-1, 1]: it is clipped, so polar night gives
ws = 0 (Re = 0) and polar day ws = pi.

The formula is causal: day t uses T(t) and the calendar only.

References
----------
Oudin, L., Hervieu, F., Michel, C., Perrin, C., Andreassian, V., Anctil, F., Loumagne, C. (2005). Which
potential evapotranspiration input for a lumped rainfall-runoff model? Part 2. Journal of Hydrology
303, 290-306. doi:10.1016/j.jhydrol.2004.08.026
Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998). Crop evapotranspiration. FAO Irrigation and
Drainage Paper 56, chapter 3, equations 21-25.
"""

from __future__ import annotations

import numpy as np

GSC = 0.0820          # solar constant, MJ m-2 min-1
LAMBDA = 2.45         # latent heat of vaporisation, MJ kg-1
RHO = 1000.0          # density of water, kg m-3
PET_COLUMNS = ("pet", "peti")
PET_MODES = ("missing", "always", "never")


def extraterrestrial_radiation(lat_deg, doy) -> np.ndarray:
    """Daily extraterrestrial radiation Re [MJ m-2 d-1] (FAO-56 eq. 21-25).

    Parameters
    ----------
    lat_deg : float or array_like
        Latitude in degrees north (negative south), broadcast against ``doy``.
    doy : array_like [T]
        Day of the year, 1..366.
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    j = np.asarray(doy, dtype=np.float64)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    re = 24.0 * 60.0 / np.pi * GSC * dr * (ws * np.sin(phi) * np.sin(delta)
                                           + np.cos(phi) * np.cos(delta) * np.sin(ws))
    return np.maximum(re, 0.0)  # rounding can leave -1e-17 at ws = 0


def oudin_pet(temperature, lat_deg, doy) -> np.ndarray:
    """Oudin (2005) potential evapotranspiration [mm/d], NaN where the temperature is missing.

    Parameters
    ----------
    temperature : array_like [T]
        Daily mean air temperature, degC.
    lat_deg : float
        Latitude of the basin (gauge), degrees north.
    doy : array_like [T]
        Day of the year of each day.
    """
    t = np.asarray(temperature, dtype=np.float64)
    re = extraterrestrial_radiation(lat_deg, doy)
    # Re / (lambda rho) is in m/d; x 1000 gives mm/d.
    pe = re / (LAMBDA * RHO) * 1000.0 * (t + 5.0) / 100.0
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(t), np.nan, np.where(t + 5.0 > 0.0, pe, 0.0))
