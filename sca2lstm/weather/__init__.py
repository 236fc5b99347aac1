"""Weather forecasts for the lead days: fetched (Open-Meteo), archived, emulated, and put into model windows.

Modules: :mod:`.openmeteo` (the web API client and response parsing), :mod:`.days` (hourly values to a
station's days), :mod:`.files` (forecast files: CSV, saved Open-Meteo JSON, long tables with members),
:mod:`.archive` (archives of past forecasts by issue date and lead), :mod:`.emulator` (an NWP-like error
model), :mod:`.windows` (a forecast put into scaled model windows), :mod:`.mixture` (the flow forecast of
an ensemble as the mixture over members). This package sits beside :mod:`sca2lstm.data`: it imports
nothing from training, evaluation or the command line.
"""
