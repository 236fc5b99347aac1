"""Built-in synthetic basins in the CAMELS-GB layout.

Lets the whole pipeline (training, fine-tuning, prediction, tests, benchmarks) run without the real
CAMELS-GB download. Every basin gets a stochastic daily weather series and a discharge series simulated
by the GR4J rainfall-runoff model (Perrin, Michel & Andreassian 2003, J. Hydrol. 279, 275-289) behind a
degree-day snow bucket, so discharge has the memory, seasonality and nonlinearity a forecaster must
learn. Static attributes come from the same latent basin properties that set the model parameters, so,
as in CAMELS-GB, they carry real information about each basin's response.

Layout (the one NeuralHydrology's CAMELS-GB loader reads)::

    out_dir/attributes/CAMELS_GB_<group>_attributes.csv     8 files, the real CAMELS-GB columns
    out_dir/timeseries/CAMELS_GB_hydromet_timeseries_<id>_<YYYYMMDD>-<YYYYMMDD>.csv

Each basin draws from its own random stream ``(seed, basin index)``, so basin *i* is the same whatever
``n_basins`` is; the model runs vectorised over basins (a Python loop over days, numpy over basins).
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import tempfile
import warnings

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError
from .pet import extraterrestrial_radiation

DEFAULT_START = "1970-10-01"
DEFAULT_END = "2015-09-30"

_REAL_IDS = ("32006", "10002", "10003", "22001", "39025", "42003", "51001", "75003", "79005")
_HEAVY_GAP_INDEX = 2  # "10003": its real record starts in 1983, ~28 % of 1970-2015 is missing
_TS_COLUMNS = ("precipitation", "pet", "temperature", "discharge_spec", "discharge_vol", "peti",
               "humidity", "shortwave_rad", "longwave_rad", "windspeed")
_SOIL_TEXTURE = ("sand_perc", "silt_perc", "clay_perc", "organic_perc")
_SOIL_STATS = ("bulkdens", "tawc", "porosity_cosby", "porosity_hypres", "conductivity_cosby",
               "conductivity_hypres", "root_depth", "soil_depth_pelletier")
_LANDCOVER = ("dwood_perc", "ewood_perc", "grass_perc", "shrub_perc", "crop_perc", "urban_perc",
              "inwater_perc", "bares_perc")
_HYDROGEOLOGY = ("inter_high_perc", "inter_mod_perc", "inter_low_perc", "frac_high_perc", "frac_mod_perc",
                 "frac_low_perc", "no_gw_perc", "low_nsig_perc", "nsig_low_perc")
_ABSTRACTION = tuple(f"abs_{k}_perc" for k in ("agriculture", "amenities", "energy", "environmental",
                                                "industry", "watersupply"))
_RESERVOIR_USE = tuple(f"reservoir_{k}" for k in ("he", "nav", "drain", "wr", "fs", "env", "nousedata"))
_UNCERT = tuple(f"q{p}_uncert_{s}" for p in (5, 25, 50, 75, 95, 99) for s in ("upper", "lower"))
# Column order of the real CAMELS-GB files (gauge_id first, added when writing).
_ATTRIBUTE_COLUMNS = {
    "climatic": ("p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq",
                 "high_prec_dur", "high_prec_timing", "low_prec_freq", "low_prec_dur", "low_prec_timing"),
    "humaninfluence": ("benchmark_catch", "surfacewater_abs", "groundwater_abs", "discharges",
                       *_ABSTRACTION, "num_reservoir", "reservoir_cap", *_RESERVOIR_USE,
                       "reservoir_year_first", "reservoir_year_last"),
    "hydrogeology": _HYDROGEOLOGY,
    "hydrologic": ("q_mean", "runoff_ratio", "stream_elas", "slope_fdc", "baseflow_index",
                   "baseflow_index_ceh", "hfd_mean", "Q5", "Q95", "high_q_freq", "high_q_dur",
                   "low_q_freq", "low_q_dur", "zero_q_freq"),
    "hydrometry": ("station_type", "flow_period_start", "flow_period_end", "flow_perc_complete",
                   "bankfull_flow", "structurefull_flow", *_UNCERT, "quncert_meta"),
    "landcover": (*_LANDCOVER, "dom_land_cover"),
    "soil": tuple(c for k in _SOIL_TEXTURE for c in (k, k + "_missing"))
    + tuple(c for k in _SOIL_STATS for c in (k, k + "_missing", k + "_5", k + "_50", k + "_95")),
    "topographic": ("gauge_name", "gauge_lat", "gauge_lon", "gauge_easting", "gauge_northing",
                    "gauge_elev", "area", "dpsbar", "elev_mean", "elev_min", "elev_10", "elev_50",
                    "elev_90", "elev_max"),
}
_INT_COLUMNS = {"gauge_easting", "gauge_northing", "elev_mean", "num_reservoir", "reservoir_cap",
                "reservoir_year_first", "reservoir_year_last"}
_DECIMALS3 = {"surfacewater_abs", "groundwater_abs", "discharges"}
_LAND_NAMES = ("Deciduous Woodland", "Evergreen Woodland", "Grass and Pasture", "Shrubs", "Crops", "Urban")
_SEASONS = ("djf", "mam", "jja", "son")
_RIVERS = ("Alder Beck", "Brackwater", "Cleddon", "Dunmere", "Elsburn", "Farrow", "Glenisk", "Hollin Brook",
           "Kestle", "Lyddon", "Marrow Water", "Nethy Burn", "Ormesby Beck", "Pellow", "Ruddle", "Tarrant")
_PLACES = ("Ashford Mill", "Bridgend Farm", "Castleton", "Dale Foot", "Eastholme", "Fenwick",
           "Greystones", "Hallbank", "Kirkby Weir", "Longmoor", "Millbridge", "Northwood", "Stanton Lees")
_STATION_TYPES = ("VA", "FV", "C", "CC", "FVVA", "MIS", "FL")
_OMEGA = 2.0 * np.pi / 365.25
_CHUNK = 128  # basins simulated together: bounds memory (peak ~1 GB for 45 years) whatever n_basins is


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def synthetic_gauge_ids(n_basins: int) -> list[str]:
    """CAMELS-GB-style gauge ids of the synthetic basins.

    Parameters
    ----------
    n_basins : int
        Number of basins (>= 1).

    Returns
    -------
    list of str
        The nine ids of the real CAMELS-GB sample first (so guides and configs naming 32006 work on
        either dataset), then 5-digit ids ``<area 20-99><station 050-999>``, unique and deterministic;
        station numbers >= 050 never clash with the real sample.
    """
    limit = len(_REAL_IDS) + 80 * 950  # station numbers 050..999 in 80 areas
    if not _is_int(n_basins) or not 1 <= n_basins <= limit:
        raise UsageError(f"number of synthetic basins must be an integer 1..{limit}, got {n_basins!r}")
    ids = list(_REAL_IDS[:n_basins])
    for k in range(n_basins - len(ids)):
        # 37 is coprime with 80, so each run of 80 ids visits every hydrometric area 20-99 once, scattered.
        ids.append(f"{20 + (37 * k) % 80:02d}{50 + k // 80:03d}")
    return ids


def _draw_basin(rng: np.random.Generator) -> dict:
    """Latent properties, climate and GR4J parameters of one basin (scalars)."""
    u = rng.beta(1.6, 2.4)  # 'upland-ness': wet, cool, steep, high, thin soils, fast response (NW Britain)
    perm = rng.beta(1.5, 3.0)  # permeability: big slow stores, groundwater-fed flow (chalk, sandstone)
    area = float(np.exp(np.clip(rng.normal(np.log(180.0), 0.9), np.log(20.0), np.log(2000.0))))
    lat = float(np.clip(50.6 + 5.5 * u + rng.normal(0, 0.9), 50.1, 58.6))
    elev = (30.0 + 480.0 * u ** 1.3) * rng.lognormal(0, 0.15)
    return dict(
        u=u, perm=perm, area=area, lat=lat, elev=elev,
        lon=float(np.clip(-0.8 - 3.2 * u + rng.normal(0, 0.9), -6.4, 1.5)),
        dpsbar=(14.0 + 260.0 * u ** 1.5) * rng.lognormal(0, 0.2),
        t_mean=10.9 - 0.0065 * elev - 0.3 * (lat - 50.5) + rng.normal(0, 0.2),
        t_amp=6.4 - 1.2 * u + rng.normal(0, 0.2), t_sd=rng.uniform(1.8, 2.6), t_phi=rng.uniform(0.65, 0.8),
        p_mean=(1.5 + 7.0 * u ** 1.6) * rng.lognormal(0, 0.08),
        p_amp=0.05 + 0.35 * u + rng.normal(0, 0.06),  # winter excess of rain; western uplands most seasonal
        pw=float(np.clip(0.55 + 0.2 * u + rng.normal(0, 0.03), 0.35, 0.85)), pw_amp=rng.uniform(0.02, 0.08),
        persist=rng.uniform(0.35, 0.5), shape=rng.uniform(0.55, 0.75), tau=rng.uniform(0.46, 0.56),
        rh=rng.uniform(0.74, 0.84), wind=3.3 + 1.8 * u + rng.normal(0, 0.4), ddf=rng.uniform(2.0, 4.0),
        # GR4J: x1 production store (mm), x2 groundwater exchange (mm/d), x3 routing store (mm),
        # x4 unit-hydrograph time base (d). Permeable basins store more and lose water to deep aquifers;
        # uplands have thin soils, small stores and quick, short hydrographs; big basins respond slower.
        x1=float(np.clip(80.0 * np.exp(1.8 * perm + 0.8 * (1 - u) + rng.normal(0, 0.25)), 50, 2000)),
        x2=float(np.clip(-0.1 - 1.2 * perm + rng.normal(0, 0.25), -2.0, 0.3)),
        x3=float(np.clip(24.0 * np.exp(2.2 * perm - 0.8 * u + rng.normal(0, 0.3)), 10, 500)),
        x4=float(np.clip(0.6 + 0.45 * np.log10(area) + 0.9 * (1 - u) + rng.normal(0, 0.15), 1.05, 4.0)),
    )


def _describe(rng: np.random.Generator, b: dict) -> dict:
    """Descriptive attributes (topography, soils, land cover, geology, human influence, gauging)."""
    u, perm, e = b["u"], b["perm"], b["elev"]
    lo = e * rng.uniform(0.05, 0.4)
    a = dict(gauge_name=f"{rng.choice(_RIVERS)} at {rng.choice(_PLACES)}", gauge_lat=b["lat"],
             gauge_lon=b["lon"], gauge_elev=lo + rng.uniform(0, 2), area=b["area"], dpsbar=b["dpsbar"],
             elev_mean=round(e), elev_min=lo, elev_10=lo + 0.4 * (e - lo), elev_50=e - 0.05 * (e - lo),
             elev_90=e + (e - lo) * (0.6 + 0.8 * u), elev_max=e + (e - lo) * (1.2 + 1.5 * u),
             # British National Grid from lat/lon by a local linearisation: good to a few km over GB.
             gauge_easting=round(400000 + (b["lon"] + 2) * 111320 * np.cos(np.radians(b["lat"]))),
             gauge_northing=round(111193 * (b["lat"] - 49.9)))
    sand = float(np.clip(28 + 35 * perm + rng.normal(0, 5), 15, 85))
    clay = float(np.clip((100 - sand) * rng.uniform(0.35, 0.6), 5, 55))
    organic = 0.4 + 28 * u ** 3 * rng.lognormal(0, 0.3)
    # Cosby et al. (1984) pedotransfer functions; tawc tracks the GR4J production store x1 it stands for.
    cosby_por = 50.5 - 0.142 * sand - 0.037 * clay  # %
    cosby_k = 2.54 * 10 ** (-0.6 + 0.0126 * sand - 0.0064 * clay)  # inch/h -> cm/h
    stats = dict(bulkdens=np.clip(1.45 - 0.03 * organic + rng.normal(0, 0.04), 0.28, 1.7),
                 tawc=np.clip(30 + 0.18 * b["x1"] + rng.normal(0, 8), 38, 236), porosity_cosby=cosby_por,
                 porosity_hypres=cosby_por + 3 + 0.5 * organic + rng.normal(0, 1), conductivity_cosby=cosby_k,
                 conductivity_hypres=cosby_k * rng.uniform(0.8, 1.1),
                 root_depth=np.clip(1.3 - 0.9 * u + rng.normal(0, 0.1), 0.3, 1.3),
                 soil_depth_pelletier=0.8 + 30 * perm ** 3 * rng.lognormal(0, 0.4))
    missing = rng.uniform(0, 15) if rng.random() < 0.1 else 0.0
    for k, v in zip(_SOIL_TEXTURE, (sand, 100 - sand - clay, clay, organic)):
        a[k], a[k + "_missing"] = v, missing
    q5, q95 = rng.uniform(0.5, 0.85), rng.uniform(1.15, 1.8)
    for k, v in stats.items():
        a.update({k: v, k + "_missing": missing, k + "_5": v * q5, k + "_50": v * rng.uniform(0.95, 1.05),
                  k + "_95": v * q95})
    land = np.array([7, 2 + 12 * u, 45, 1 + 35 * u ** 2, 45 * (1 - u) ** 2, 6, 0.6, 0.1 + 3 * u ** 3])
    land = land * rng.lognormal(0, 0.4, 8)
    land = 100 * land / land.sum()
    a.update(zip(_LANDCOVER, land), dom_land_cover=_LAND_NAMES[int(np.argmax(land[:6]))])
    geo = np.array([2 * perm, 20, 0.5, 40 * perm ** 2, 8 * perm, 15 * u, 55 * (1 - perm), 0.1, 0.2])
    geo = geo * rng.lognormal(0, 0.5, 9)
    a.update(zip(_HYDROGEOLOGY, 100 * geo / geo.sum()))
    has_abs, n_res = rng.random() < 0.65, int(rng.random() < 0.15) * (1 + rng.poisson(0.8))
    shares = [np.nan] * 6
    if has_abs and rng.random() < 0.8:
        shares = 100 * rng.dirichlet([1, 0.1, 0.3, 0.1, 0.5, 2])  # water supply dominates, as in GB
    uses = 100 * rng.dirichlet(np.full(7, 0.3)) if n_res else [np.nan] * 7
    year1 = int(rng.integers(1850, 1990)) if n_res else np.nan
    a.update(zip(_ABSTRACTION + _RESERVOIR_USE, [*shares, *uses]))
    a.update(benchmark_catch="Y" if rng.random() < 0.2 else "N",
             surfacewater_abs=rng.exponential(0.06) if has_abs else np.nan,
             groundwater_abs=rng.exponential(0.02 + 0.08 * perm) if has_abs else np.nan,
             discharges=rng.exponential(0.05) if has_abs else np.nan, num_reservoir=n_res,
             reservoir_cap=round(rng.lognormal(8.5, 1.5)) if n_res else 0, reservoir_year_first=year1,
             reservoir_year_last=min(year1 + int(rng.integers(0, 40)), 1992) if n_res else np.nan)
    spread, rated = rng.uniform(8, 20), rng.random() < 0.75
    for name, f in zip(_UNCERT, np.repeat([2.0, 1.3, 1.0, 0.9, 0.8, 0.75], 2)):  # widest at low flows
        a[name] = (f * spread * (1 if name.endswith("upper") else -1)) if rated else np.nan
    a.update(station_type=str(rng.choice(_STATION_TYPES, p=[.35, .15, .15, .1, .1, .1, .05])),
             quncert_meta="Calculated discharge uncertainties" if rated
             else "Discharge uncertainty estimates not provided",
             bankfull_factor=rng.uniform(0.7, 1.3) if rng.random() < 0.55 else np.nan,
             structurefull_flow=b["area"] / 86.4 * rng.uniform(5, 20) if rng.random() < 0.4 else np.nan)
    return a


def _draw_noise(rng: np.random.Generator, b: dict, n: int) -> dict:
    """Per-basin daily random series that drive the weather generator and observation errors."""
    eps = rng.standard_normal((6, n))
    # Multiplicative noises are lognormal with mean 1 (exp(s e - s^2/2)); the temperature innovations
    # give the AR(1) anomaly the stationary sd t_sd.
    return dict(wet=rng.random(n), gamma=rng.gamma(b["shape"], 1.0 / b["shape"], n),
                temp=eps[0] * b["t_sd"] * np.sqrt(1 - b["t_phi"] ** 2), tau=eps[1], rh=eps[2], lw=eps[3],
                wind=np.exp(0.35 * eps[4] - 0.06125), q=np.exp(0.05 * eps[5] - 0.00125))


def _gap_mask(rng: np.random.Generator, n: int, heavy: bool) -> np.ndarray:
    """Missing-discharge mask: scattered single days plus a few multi-week/month outages (~1-7 %)."""
    miss = rng.random(n) < 0.004
    if heavy:
        miss[: int(0.22 * n)] = True  # the record starts late, as the real 10003's does
    target = miss.sum() + rng.uniform(0.005, 0.06) * n
    while miss.sum() < target:  # each outage is capped by what is left of the budget, so it ends near it
        length = int(min(rng.integers(14, 121), target - miss.sum() + 1))
        start = int(rng.integers(0, max(n - length, 1)))
        miss[start:start + length] = True
    return miss


def _weather(b: dict, noise: dict, doy: np.ndarray) -> dict:
    """Daily meteorology [days, basins], rounded to the 2 decimals that are written."""
    n, nb = noise["wet"].shape
    season = np.cos(_OMEGA * (doy - 15.0))[:, None]  # +1 mid-January, -1 mid-July
    # Two-state Markov chain: with P(wet|dry) = pi(1-r) and P(wet|wet) = pi(1-r) + r its stationary wet
    # probability is pi while r sets how much longer spells are than independent days would give.
    pi = np.clip(b["pw"] + b["pw_amp"] * season, 0.2, 0.95)
    p01, wet, w = pi * (1 - b["persist"]), np.empty((n, nb), bool), np.zeros(nb, bool)
    anom, e = np.empty((n, nb)), np.zeros(nb)
    for t in range(n):  # the same day loop also runs the AR(1) temperature anomaly
        w = noise["wet"][t] < p01[t] + b["persist"] * w
        wet[t] = w
        e = b["t_phi"] * e + noise["temp"][t]
        anom[t] = e
    temp = b["t_mean"] - b["t_amp"] * np.cos(_OMEGA * (doy - 20.0))[:, None] + anom
    precip = wet * (b["p_mean"] * np.maximum(1 + b["p_amp"] * season, 0.2) / pi) * noise["gamma"]
    ra = extraterrestrial_radiation(b["lat"][None, :], doy[:, None])  # [days, basins]
    tau = np.clip(b["tau"] - 0.2 * wet + 0.06 * noise["tau"], 0.08, 0.78)  # clouds on wet days
    # Oudin et al. (2005) temperature-radiation PET, damped on cloudy days and scaled to the ~1.3 mm/d
    # Penman-Monteith means of CAMELS-GB.
    pet = np.maximum(ra / 2.45 * (temp + 5) / 100, 0) * (0.3 + 1.4 * tau)
    es = 6.112 * np.exp(17.67 * temp / (temp + 243.5))  # saturation vapour pressure (hPa)
    vap = np.clip(b["rh"] + 0.08 * wet + 0.05 * noise["rh"], 0.45, 1.0) * es
    pres = 1013.25 * (1 - 2.25577e-5 * b["elev"]) ** 5.25588
    emis = np.clip(1.05 - 0.45 * tau + 0.02 * noise["lw"], 0.6, 1.0)
    met = dict(precipitation=precip, pet=pet, temperature=temp,
               peti=pet * (1 + 0.3 * (1 - np.exp(-precip / 3))),  # evaporation of intercepted rain
               humidity=622 * vap / (pres - 0.378 * vap), shortwave_rad=tau * ra * 11.574,
               longwave_rad=emis * 5.670e-8 * (temp + 273.15) ** 4,
               windspeed=np.maximum(b["wind"] * (1 + 0.15 * season) * (1 + 0.2 * (wet - pi)) * noise["wind"],
                                    0.3))
    return {k: np.round(v, 2) + 0.0 for k, v in met.items()}  # + 0.0 turns -0.00 into 0.00


def _gr4j(precip: np.ndarray, pet: np.ndarray, temp: np.ndarray, b: dict) -> np.ndarray:
    """GR4J with a degree-day snow bucket; forcing [days, basins] -> discharge (mm/d).

    The first year is run twice so stores start from a state the climate produces, not a guess.
    """
    x1, x2, x3, x4 = b["x1"], b["x2"], b["x3"], b["x4"]
    warm = min(365, len(precip))
    precip, pet, temp = (np.concatenate([a[:warm], a]) for a in (precip, pet, temp))
    n, nb = precip.shape
    snow = precip * np.clip((1.0 - temp) / 2.0, 0.0, 1.0)  # all snow below -1 degC, all rain above +1
    melt_pot, melt, swe = b["ddf"] * np.maximum(temp, 0.0), np.empty((n, nb)), np.zeros(nb)
    for t in range(n):  # degree-day snow bucket
        swe += snow[t]
        m = np.minimum(swe, melt_pot[t])
        swe -= m
        melt[t] = m
    water = precip - snow + melt
    pn, en = np.maximum(water - pet, 0.0) / x1, np.maximum(pet - water, 0.0) / x1  # net rain / net PET
    tp, te = np.tanh(pn), np.tanh(en)
    # Production store in units of x1 (sr = S/x1): the state-free parts above are computed for all days at
    # once, which leaves the day loop ~20 ufunc calls.
    sr, ps, perc = np.full(nb, 0.3), np.empty((n, nb)), np.empty((n, nb))
    for t in range(n):
        a, e = tp[t], te[t]
        p_in = (1.0 - sr * sr) * a / (1.0 + sr * a)
        sr = sr + p_in - sr * (2.0 - sr) * e / (1.0 + (1.0 - sr) * e)
        k = sr * (4.0 / 9.0)
        k *= k
        c = sr * (1.0 - (1.0 + k * k) ** -0.25)
        sr = sr - c
        ps[t], perc[t] = p_in, c
    pr = x1 * (perc + pn - ps)  # effective rainfall: percolation plus net rain the store did not take
    # Unit hydrographs from the S-curves SH1 (0..x4 days) and SH2 (0..2 x4); the routed 90 % goes through
    # the routing store, the direct 10 % through UH2 only. Padding to the longest x4 adds zero ordinates.
    lags = np.arange(1, int(np.ceil(2 * x4.max())) + 1, dtype=float)[:, None]
    sh1 = lambda t: np.clip(t / x4, 0, 1) ** 2.5  # noqa: E731
    sh2 = lambda t: np.where(t < x4, 0.5 * np.clip(t / x4, 0, 1) ** 2.5,  # noqa: E731
                             1 - 0.5 * (2 - np.clip(t / x4, 1, 2)) ** 2.5)
    uh1, uh2 = sh1(lags) - sh1(lags - 1), sh2(lags) - sh2(lags - 1)
    q9, q1 = np.zeros_like(pr), np.zeros_like(pr)
    for j in range(len(lags)):
        q9[j:] += 0.9 * uh1[j] * pr[: n - j]
        q1[j:] += 0.1 * uh2[j] * pr[: n - j]
    r, q = 0.5 * x3, np.empty((n, nb))
    for t in range(n):  # routing store with groundwater exchange F (x2 < 0: loss to deep aquifers)
        f = x2 * (r / x3) ** 3.5
        r = np.maximum(r + q9[t] + f, 0.0)
        rr = r / x3
        rr *= rr
        qr = r * (1.0 - (1.0 + rr * rr) ** -0.25)
        r = r - qr
        q[t] = qr + np.maximum(q1[t] + f, 0.0)
    return q[warm:]


def _mean_run(ev: np.ndarray) -> np.ndarray:
    """Mean length (days) of runs of True along axis 0; 0 where there are none."""
    starts = ev[0].astype(int) + (ev[1:] & ~ev[:-1]).sum(0)
    return np.where(starts > 0, ev.sum(0) / np.maximum(starts, 1), 0.0)


def _timing(ev: np.ndarray, season: np.ndarray) -> np.ndarray:
    """Season ('djf', ...) holding most events; NaN where there are none."""
    counts = np.stack([ev[season == k].sum(0) for k in range(4)])
    return np.where(counts.sum(0) > 0, np.array(_SEASONS, object)[counts.argmax(0)], np.nan)


def _signatures(dates: pd.DatetimeIndex, met: dict, q: np.ndarray, vol: np.ndarray,
                bankfull: np.ndarray) -> dict:
    """Climatic, hydrologic and hydrometry attributes computed from the written series (CAMELS-GB rules)."""
    p, pet, temp = met["precipitation"], met["pet"], met["temperature"]
    n, years, season = len(dates), len(dates) / 365.25, (dates.month.to_numpy() % 12) // 3
    valid = ~np.isnan(q)
    s = dict(p_mean=p.mean(0), pet_mean=pet.mean(0), frac_snow=(p * (temp < 0)).sum(0) / p.sum(0))
    s["aridity"] = s["pet_mean"] / s["p_mean"]
    # Woods (2009) seasonality index from sinusoids fitted to P and T: < 0 means winter-wet.
    ang = _OMEGA * dates.day_of_year.to_numpy()
    basis = np.column_stack([np.ones(n), np.sin(ang), np.cos(ang)])
    cp, ct = np.linalg.lstsq(basis, p, rcond=None)[0], np.linalg.lstsq(basis, temp, rcond=None)[0]
    s["p_seasonality"] = (cp[1] * ct[1] + cp[2] * ct[2]) / (cp[0] * np.hypot(ct[1], ct[2]))
    for name, ev in (("high_prec", p >= 5 * s["p_mean"]), ("low_prec", p < 1.0)):
        s.update({name + "_freq": ev.sum(0) / years, name + "_dur": _mean_run(ev),
                  name + "_timing": _timing(ev, season)})
    vyears = valid.sum(0) / 365.25
    qm, qmed = np.nanmean(q, 0), np.nanmedian(q, 0)
    q05, q34, q67, q95 = np.nanpercentile(q, [5, 34, 67, 95], axis=0)
    s.update(q_mean=qm, runoff_ratio=qm / s["p_mean"], Q5=q05, Q95=q95,
             zero_q_freq=(q == 0).sum(0) / valid.sum(0),
             slope_fdc=np.where(q34 > 0, (np.log(q67) - np.log(np.maximum(q34, 1e-9))) / 0.33, np.nan))
    for name, ev in (("high_q", q > 9 * qmed), ("low_q", q < 0.2 * qm)):
        s.update({name + "_freq": ev.sum(0) / vyears, name + "_dur": _mean_run(ev)})
    # Water years (Oct-Sep) with >= 90 % of flows: elasticity (Sankarasubramanian et al. 2001) and the
    # half-flow date (days after 1 Oct by which half the year's flow has passed; complete years only).
    wy = dates.year.to_numpy() + (dates.month.to_numpy() >= 10)
    py, qy, hfd = [], [], []
    for y in np.unique(wy):
        sel = wy == y
        if sel.sum() < 365:
            continue
        ok = valid[sel].mean(0)
        py.append(p[sel].mean(0))
        qy.append(np.where(ok >= 0.9, np.nanmean(q[sel], 0), np.nan))
        cs = np.cumsum(np.nan_to_num(q[sel]), 0)
        hfd.append(np.where((ok == 1) & (cs[-1] > 0), np.argmax(cs >= 0.5 * cs[-1], 0) + 1.0, np.nan))
    nb, none = q.shape[1], np.full(q.shape[1], np.nan)
    py, qy, hfd = (np.array(a).reshape(-1, nb) for a in (py, qy, hfd))
    pbar, qbar = py.mean(0), np.nanmean(qy, 0)
    s["stream_elas"] = np.nanmedian((qy - qbar) / (py - pbar) * pbar / qbar, 0) if len(py) > 1 else none
    s["hfd_mean"] = np.nanmean(hfd, 0) if len(hfd) else none
    # Baseflow index: Lyne-Hollick filter (alpha 0.925, one forward pass) and the UK Institute of
    # Hydrology 5-day-minima method that CEH uses, both on the series with gaps interpolated.
    qf = pd.DataFrame(q).interpolate(limit_direction="both").to_numpy()
    quick, base, c = np.zeros(q.shape[1]), qf.copy(), (1 + 0.925) / 2
    for t in range(1, n):
        quick = np.minimum(np.maximum(0.925 * quick + c * (qf[t] - qf[t - 1]), 0.0), qf[t])
        base[t] = qf[t] - quick
    s["baseflow_index"] = (base * valid).sum(0) / np.where(valid, qf, 0).sum(0)
    k5 = n // 5
    blocks = qf[: 5 * k5].reshape(k5, 5, nb)
    mins, pos = blocks.min(1), blocks.argmin(1) + 5 * np.arange(k5)[:, None]
    turn = np.zeros_like(mins, bool)
    turn[1:-1] = 0.9 * mins[1:-1] <= np.minimum(mins[:-2], mins[2:])
    s["baseflow_index_ceh"] = np.full(q.shape[1], np.nan)
    for j in range(q.shape[1]):
        k = np.flatnonzero(turn[:, j])
        if len(k) > 1:
            x = pos[k, j]
            seg, ok = qf[x[0]: x[-1] + 1, j], valid[x[0]: x[-1] + 1, j]
            bf = np.minimum(np.interp(np.arange(x[0], x[-1] + 1), x, mins[k, j]), seg)
            s["baseflow_index_ceh"][j] = bf[ok].sum() / seg[ok].sum()
    first, last = valid.argmax(0), n - 1 - valid[::-1].argmax(0)
    day = dates.strftime("%Y-%m-%d").to_numpy(object)
    s.update(flow_period_start=np.where(valid.any(0), day[first], np.nan),
             flow_period_end=np.where(valid.any(0), day[last], np.nan),
             flow_perc_complete=100 * valid.mean(0),
             bankfull_flow=bankfull * np.nanpercentile(vol, 99.5, axis=0))
    return s


def _format(column: str, values) -> list:
    """Strings as the real files write them: 2 decimals (3 for abstractions), integers, 'NaN'."""
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif v is None or not np.isfinite(v):
            out.append("NaN")
        elif column in _INT_COLUMNS:
            out.append(str(int(round(v))))
        else:
            d = 3 if column in _DECIMALS3 else 2
            out.append("%.*f" % (d, round(float(v), d) + 0.0))  # + 0.0: no '-0.00'
    return out


_CELL = 10  # bytes per number cell: up to "9999999.99"; padding is NUL and removed when written


@functools.lru_cache(maxsize=1)
def _number_cells() -> np.ndarray:
    """'%.2f' of every value -100.00..999.99 by hundredths as NUL-padded bytes, then 'NaN' (index 110000)."""
    return np.array(["%.2f" % (i / 100) for i in range(-10000, 100000)] + ["NaN"], dtype=f"S{_CELL}")


def _csv_rows(dates: np.ndarray, values: np.ndarray) -> bytes:
    """CSV lines ``date,v1,...`` for date bytes [days, 10] and values [days, k] already rounded to 2 decimals.

    Formatting 110 k numbers per basin one by one dominated the run time at 671 basins; a table lookup
    into fixed-width cells, then dropping the NUL padding, is vectorised. i / 100 and np.round(v, 2) are
    the same double, so the text is exactly what '%.2f' gives.
    """
    n, k = values.shape
    cents = np.rint(values * 100.0)
    inside = (cents >= -10000) & (cents < 100000)
    cells = _number_cells()[np.where(inside, cents + 10000, 110000).astype(np.int64)]
    for i, j in zip(*np.nonzero(~inside & ~np.isnan(values))):  # rare: big flows in big basins
        text = "%.2f" % values[i, j]
        if len(text) > _CELL:
            raise DataError(f"synthetic value {text} does not fit the CSV writer")
        cells[i, j] = text
    buf = np.zeros((n, dates.shape[1] + k * (1 + _CELL) + 1), np.uint8)
    buf[:, : dates.shape[1]] = dates
    body = buf[:, dates.shape[1]: -1].reshape(n, k, 1 + _CELL)
    body[:, :, 0] = ord(",")
    body[:, :, 1:] = cells.view(np.uint8).reshape(n, k, _CELL)
    buf[:, -1] = ord("\n")
    flat = buf.ravel()
    return flat[flat != 0].tobytes()


def _write_dataset(root: pathlib.Path, n_basins: int, seed: int, dates: pd.DatetimeIndex) -> list[str]:
    """Simulate the basins chunk by chunk and write the dataset into the (new, empty) folder root."""
    ids, n = synthetic_gauge_ids(n_basins), len(dates)
    (root / "attributes").mkdir()
    (root / "timeseries").mkdir()
    doy, stamp = dates.day_of_year.to_numpy(), f"{dates[0]:%Y%m%d}-{dates[-1]:%Y%m%d}"
    day_bytes = np.array(dates.strftime("%Y-%m-%d"), dtype="S10").view(np.uint8).reshape(n, 10)
    header = ("date," + ",".join(_TS_COLUMNS) + "\n").encode("ascii")
    records = []
    for c0 in range(0, n_basins, _CHUNK):
        draws = []
        for i in range(c0, min(c0 + _CHUNK, n_basins)):
            rng = np.random.default_rng([seed, i])  # own stream: basin i is the same for any n_basins
            b = _draw_basin(rng)
            desc = _describe(rng, b)
            draws.append((b, desc, _draw_noise(rng, b, n), _gap_mask(rng, n, i == _HEAVY_GAP_INDEX)))
        b = {k: np.array([d[0][k] for d in draws]) for k in draws[0][0]}
        noise = {k: np.stack([d[2][k] for d in draws], 1) for k in draws[0][2]}
        met = _weather(b, noise, doy)
        q = _gr4j(met["precipitation"], met["pet"], met["temperature"], b) * noise["q"]
        q[np.stack([d[3] for d in draws], 1)] = np.nan
        met["discharge_vol"] = np.round(q * b["area"] / 86.4, 2) + 0.0
        met["discharge_spec"] = np.round(q, 2) + 0.0
        with warnings.catch_warnings():  # all-NaN slices in tiny periods give NaN attributes, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            sig = _signatures(dates, met, met["discharge_spec"], met["discharge_vol"],
                              np.array([d[1]["bankfull_factor"] for d in draws]))
        for j, (_, desc, _, _) in enumerate(draws):
            name = f"CAMELS_GB_hydromet_timeseries_{ids[c0 + j]}_{stamp}.csv"
            rows = _csv_rows(day_bytes, np.stack([met[c][:, j] for c in _TS_COLUMNS], 1))
            (root / "timeseries" / name).write_bytes(header + rows)
            records.append({**desc, **{k: v[j] for k, v in sig.items()}})
    for group, columns in _ATTRIBUTE_COLUMNS.items():
        frame = pd.DataFrame({"gauge_id": ids, **{c: _format(c, [r[c] for r in records]) for c in columns}})
        frame.to_csv(root / "attributes" / f"CAMELS_GB_{group}_attributes.csv", index=False,
                     lineterminator="\n")
    return ids


def generate_synthetic(out_dir, n_basins: int = 12, seed: int = 42, start: str = DEFAULT_START,
                       end: str = DEFAULT_END, marked_by: str | None = None) -> list[str]:
    """Write a synthetic CAMELS-GB-layout dataset.

    Parameters
    ----------
    out_dir : str or path-like
        Target folder; created if absent. It must not exist with contents (an empty folder is fine).
    n_basins : int, default 12
        Number of basins; ids as :func:`synthetic_gauge_ids`.
    seed : int, default 42
        Non-negative seed; the same seed (and period) gives byte-identical files.
    start, end : str, default "1970-10-01", "2015-09-30"
        First and last day (inclusive), anything :class:`pandas.Timestamp` parses.
    marked_by : str, optional
        Who wrote the basins (a command), named in the synthetic marker
        (:data:`~sca2lstm.data.dataset.SYNTHETIC_MARKER`) that is then written in the folder before it is renamed
        into place: the folder never appears without it (a Ctrl-C just after the rename left it unmarked, and its
        basins, which carry real gauge ids, were taken for real data). None writes no marker (the built-in
        basins' cache folder is known by its name).

    Returns
    -------
    list of str
        The gauge ids written.

    Raises
    ------
    DataError
        If ``out_dir`` is a file or a non-empty folder, or the period is invalid or empty.
    UsageError
        If ``n_basins`` or ``seed`` is not an integer in range.
    """
    ids = synthetic_gauge_ids(n_basins)
    if not _is_int(seed) or seed < 0:
        raise UsageError(f"synthetic seed must be an integer >= 0, got {seed!r}")
    try:
        dates = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D")
    except (ValueError, TypeError) as exc:
        raise DataError(f"invalid synthetic period {start!r} to {end!r}: {exc}") from None
    if len(dates) == 0:
        raise DataError(f"empty synthetic period: start {start!r} is after end {end!r}")
    out = pathlib.Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not an empty folder; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename into place, so a reader never sees a half-written dataset.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_dataset(tmp, n_basins, int(seed), dates)
        if marked_by is not None:
            from .dataset import mark_synthetic   # here, not at the top: dataset.py imports this module too
            mark_synthetic(tmp, marked_by)
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; a shared cache must be readable by others
        if out.is_dir():
            out.rmdir()  # empty, checked above; rename over a folder is not portable
        os.rename(tmp, out)
    except OSError as exc:
        raise DataError(f"cannot write the synthetic dataset to {out}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ids


def builtin_dataset_dir(cache_dir, n_basins: int = 12, seed: int = 42) -> pathlib.Path:
    """Folder of the built-in synthetic dataset, generated there on first use.

    Parameters
    ----------
    cache_dir : str or path-like
        Cache root; the dataset lives in ``cache_dir/synthetic/gb_n<n_basins>_seed<seed>_v2``, the suffix
        being the generator's version: a change to the generated values gets a new folder.
    n_basins, seed : int
        As :func:`generate_synthetic` (full 1970-2015 period).

    Returns
    -------
    pathlib.Path
        The dataset folder. Safe under concurrent callers: each generates into its own temporary
        folder and renames it into place; a loser of the race discards its copy and uses the winner's.
    """
    target = pathlib.Path(cache_dir).expanduser() / "synthetic" / f"gb_n{n_basins}_seed{seed}_v2"
    if (target / "attributes").is_dir() and (target / "timeseries").is_dir():
        return target  # only ever appears complete, by rename
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} exists but is not a synthetic dataset; delete it to regenerate")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        generate_synthetic(work / "data", n_basins, seed)
        try:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            os.rename(work / "data", target)
        except OSError:
            if not (target / "timeseries").is_dir():  # not another process's finished copy
                raise DataError(f"cannot create the built-in dataset in {target}: it exists and is not "
                                "a synthetic dataset; delete it") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
