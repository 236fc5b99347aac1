"""Former name of :mod:`sca2lstm.data.reader`, kept so that existing imports keep working.

CAMELS-GB is one instance of the generic layout that :mod:`sca2lstm.data.reader` documents and reads.
"""

from .reader import (ATTRIBUTE_GROUPS, QC_RANGES, TIMESERIES_COLUMNS, attribute_file, attribute_files,  # noqa: F401
                     attribute_table, basin_attribute, list_basins, read_attributes, read_timeseries,
                     timeseries_dir, timeseries_file)
