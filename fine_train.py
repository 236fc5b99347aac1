#!/usr/bin/env python
"""Fine-tune a pretrained SCA2LSTM model to one basin (the user's guide):

    python fine_train.py --target_basin 32006 --pretrained_model ./model_output/sca2lstm.pth
"""

import sys

if __name__ == "__main__":
    from sca2lstm.cli.main import launch

    sys.exit(launch("finetune", prog="fine_train.py"))
