import os

import pytest

os.environ.setdefault("NNTUI_HEADLESS", "1")


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "runs"
