#!/usr/bin/env python
"""Pretrain SCA2LSTM: ``python sca2lstm.py --epochs 60 --parallel`` (writes ./model_output/sca2lstm.pth).

This root script is a thin launcher. ``import sca2lstm`` here resolves to the package directory
``sca2lstm/`` beside it (a package directory wins over a module of the same name), which is also what
the user's guide relies on for ``from sca2lstm import SCA2LSTM, load_config``.
"""

import sys

if __name__ == "__main__":
    from sca2lstm.cli.main import launch

    sys.exit(launch("train", prog="sca2lstm.py"))
