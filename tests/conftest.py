"""Suite-wide settings for every test, core and plugins alike.

* One torch thread: the tests use tiny models, where a second thread buys little on a quiet machine
  and costs 4-10x when the two cores are shared (measured by the plugin authors).
* ``$POLYDIFF_CACHE`` in the session's temporary directory: reference classifiers, conformers and
  synthesised audio are cached there, never in the user's home.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _suite_environment(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYDIFF_CACHE", str(tmp_path_factory.getbasetemp() / "polydiff-cache"))
        yield
    torch.set_num_threads(before)
