import os

import pytest
import torch

os.environ.setdefault("NNTUI_HEADLESS", "1")


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "runs"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy 2-core machine does not slow them down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
