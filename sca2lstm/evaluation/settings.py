"""What a forecast was allowed to see: the ``setting`` column of forecast and reforecast tables.

A module of its own (no torch) so that ``sca2lstm verify`` can name a table's setting without loading a model.
"""

SETTING_ISSUE = "issue-time"                               # only what was known on the issue date
SETTING_WEATHER = "issue-time+weather-forecast"            # and a weather forecast of the lead days
SETTING_PERFECT = "issue-time+perfect-weather"             # reforecasts: the observed weather as the forecast
SETTING_ARCHIVE = "issue-time+archived-weather-forecast"   # reforecasts from an archive of past forecasts

#: What forecasts of each setting were allowed to see, in words.
SETTING_WORDS = {SETTING_ISSUE: "only what was known at issue time, no weather forecast",
                 SETTING_WEATHER: "the weather forecast at hand at issue time",
                 SETTING_PERFECT: "the observed weather of the lead days as a perfect forecast",
                 SETTING_ARCHIVE: "the weather forecasts of the archive, as issued"}
