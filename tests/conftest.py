"""Suite-wide settings for every test, core and plugins alike.

* One torch thread: the tests use tiny models, where a second thread buys little on a quiet machine
  and costs 4-10x when the two cores are shared (measured by the plugin authors).
* ``$POLYDIFF_CACHE`` in the session's temporary directory: reference classifiers, conformers and
  synthesised audio are cached there, never in the user's home.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from polydiff import plugins

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True, scope="session")
def _suite_environment(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYDIFF_CACHE", str(tmp_path_factory.getbasetemp() / "polydiff-cache"))
        yield
    torch.set_num_threads(before)


@pytest.fixture
def trajectories_installed(tmp_path, monkeypatch):
    """The tutorial plugin made visible through a real `polydiff` entry point (a dist-info on sys.path)."""
    info = tmp_path / "polydiff_trajectories-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: polydiff-trajectories\nVersion: 0.1.0\n")
    import tomllib

    # the entry points the example's pyproject declares, as pip would write them on install
    declared = tomllib.loads((EXAMPLES / "plugin_trajectories" / "pyproject.toml").read_text())
    eps = declared["project"]["entry-points"]["polydiff"]
    assert eps == {"trajectories": "polydiff_trajectories"}
    (info / "entry_points.txt").write_text("[polydiff]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLES / "plugin_trajectories"))
    plugins.reset()
    yield
    plugins.reset()
    sys.modules.pop("polydiff_trajectories", None)


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A folder on sys.path for ``pdr_*`` plugin distributions, no plugin environment variables, and a
    fresh plugin host before and after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in ("POLYDIFF_PLUGINS", "POLYDIFF_DISABLE_PLUGINS", "POLYDIFF_PLUGIN_MODULES"):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield tmp_path
    plugins.reset()
    for m in [m for m in sys.modules if m.startswith("pdr_")]:
        del sys.modules[m]


@pytest.fixture(scope="session")
def load_script():
    """Import a script outside any package (``benchmarks/*.py``) as a module: ``load_script(path, name)``."""
    def load(path: Path, name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses in the script look their module up here
        spec.loader.exec_module(module)
        return module
    return load
