#!/usr/bin/env python
"""Forecast a basin with a checkpoint (the user's guide):

    python predict.py --model ./model_output/fine_tune/basin_32006/*/best_model_basin_32006.pth --basin 32006
"""

import sys

if __name__ == "__main__":
    from sca2lstm.cli.main import launch

    sys.exit(launch("predict", prog="predict.py"))
