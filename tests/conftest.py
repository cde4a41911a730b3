import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))
torch.set_num_threads(1)   # tests are tiny; leave the other core to the user


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
