"""Issue 17, groups 5 and 6: every bad input a user can give ends in one line naming the file, the problem
and the fix, with exit code 2 and no traceback; outputs belong to their run and are written atomically."""

import errno
import os
import shutil
from pathlib import Path

import pytest

from bad_inputs import CASES
from polydiff.app.cli import main

TINY = ["train.steps=4", "train.batch_size=32", "train.checkpoint_every=4", "data.n=256", "model.width=16",
        "model.depth=1", "sample.n=50", "sample.steps=4", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert main(["train", "points", "--out", str(out), *TINY]) == 0
    return out


def _fault(monkeypatch, kind):
    if kind == "ENOSPC":  # the disk fills up halfway through a samples file
        def save_file(tensors, filename, metadata=None):
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        monkeypatch.setattr("safetensors.torch.save_file", save_file)
    elif kind == "EACCES":
        def replace(src, dst):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        monkeypatch.setattr("polydiff.files.os.replace", replace)


@pytest.mark.parametrize("name,setup,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_with_exit_code_2(name, setup, argv, expected, trained, tmp_path, capsys,
                                                      monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    setup(tmp_path, run)
    capsys.readouterr()
    _fault(monkeypatch, getattr(setup, "fault", None))
    try:
        code = main([a.replace("{s}", str(tmp_path)).replace("{run}", str(run)) for a in argv])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.strip(), err
    message = err.strip().splitlines()[-1]
    assert expected in message, message
    if getattr(setup, "fault", None):  # an interrupted write leaves neither the final file nor its temporary
        leftovers = [p.name for p in (run / "samples").iterdir()] if (run / "samples").is_dir() else []
        assert not [n for n in leftovers if n.endswith(".safetensors") or n.startswith(".tmp-")], leftovers


def test_debug_mode_keeps_the_traceback(trained, monkeypatch):
    monkeypatch.setenv("POLYDIFF_DEBUG", "1")
    with pytest.raises(Exception, match="does not exist"):
        main(["evaluate", str(trained), "--samples", "/nonexistent/x.safetensors"])


def test_a_non_utf8_message_is_shown_whole(tmp_path, capsys):
    (tmp_path / "c.toml").write_bytes(b"\xff\xfe")
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 2
    err = capsys.readouterr().err
    assert "can't decode byte 0xff" in err and "c.toml" in err


def test_samples_record_their_run_and_modality(trained, capsys):
    from polydiff.app.runs import Run
    from polydiff.files import read_safetensors

    assert main(["sample", str(trained), "--n", "10", "--steps", "2", "--quiet"]) == 0
    path = Path(capsys.readouterr().out.split("samples: ")[1].split()[0])
    _, meta = read_safetensors(path, "samples")
    assert meta["run_id"] == Run.open(trained).run_id and meta["modality"] == "points"
    assert main(["evaluate", str(trained), "--samples", str(path), "--likelihood-n", "0", "--quiet"]) == 0


def test_raw_weights_differ_from_ema(trained, capsys):
    assert main(["sample", str(trained), "--n", "10", "--steps", "2", "--weights", "raw", "--quiet"]) == 0
    raw = Path(capsys.readouterr().out.split("samples: ")[1].split()[0])
    assert raw.name.endswith("-raw.safetensors")
    from polydiff.files import read_safetensors

    assert read_safetensors(raw, "samples")[1]["weights"] == "raw"
