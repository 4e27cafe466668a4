"""Suite-wide settings: one torch thread. The tests use tiny models, where a second thread buys little
on a quiet machine and costs 4-10x when the two cores are shared (measured by the plugin helpers)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
