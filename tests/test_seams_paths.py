"""TimeMachine takes every path a user gives, on both engines: relative folders and files, '~', pathlib.Path,
and a working directory that changes between drop and to (the folders are resolved when the TimeMachine is built).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp


def _suffix(engine: str) -> str:
    return ".pth" if engine == "pytorch" else ""


def _weights(net, value: float) -> None:
    """Set every weight of `net` to `value` (distinct anchors are told apart by their weights)."""
    net.import_weights({k: np.full_like(v, value) for k, v in net.export_weights().items()})


def _value(tm, dock, **kwargs) -> float:
    """The weight value a fresh MLP holds after `tm.to(..., **kwargs)` (no warning allowed)."""
    twin = mlp(dock)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tm.to(twin, **kwargs)
    values = {float(v.flat[0]) for v in twin.export_weights().values()}
    assert len(values) == 1, values
    return values.pop()


def _entries(folder) -> list[str]:
    return sorted(e for e in os.listdir(folder) if not e.startswith("."))


def test_relative_folders_and_named_files(dock, engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tm = TimeMachine(ckpt_path="./ckpt", save_path="./ckpt")  # the README's own value
    net = mlp(dock)
    _weights(net, 1.0)
    path = tm.drop(net)
    assert path == str(tmp_path / "ckpt" / f"MLP-1{_suffix(engine)}")
    assert _value(tm, dock) == 1.0  # the newest anchor, found by listing a relative folder
    for value in (2.0, 3.0):  # 'best' saved twice: the second replaces the first
        _weights(net, value)
        tm.drop(net, file="best")
    assert _value(tm, dock, file="best") == 3.0
    assert _entries(tmp_path / "ckpt") == sorted([f"MLP-1{_suffix(engine)}", f"best{_suffix(engine)}"])
    _weights(net, 4.0)
    tm.drop(net, file="sub/last")  # a relative file with a folder: inside save_path
    assert _value(tm, dock, file="sub/last") == 4.0
    assert _entries(tmp_path / "ckpt" / "sub") == [f"last{_suffix(engine)}"]


def test_pathlib_paths(dock, engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tm = TimeMachine(Path("ckpt"), Path("ckpt"))
    net = mlp(dock)
    _weights(net, 5.0)
    tm.drop(net, file=Path("best"))
    tm.drop(net, file=Path("w.h5"))
    assert _value(tm, dock, file=Path("best")) == 5.0
    assert _value(tm, dock, file=Path("w.h5")) == 5.0
    assert _value(TimeMachine(Path("ckpt") / "w.h5", Path("ckpt")), dock) == 5.0  # ckpt_path is the .h5 itself
    with pytest.raises(TypeError, match="ckpt_path must be a str or os.PathLike"):
        TimeMachine(3, "ckpt")


def test_neutral_h5_under_relative_paths(dock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tm = TimeMachine("ckpt", "ckpt")
    net = mlp(dock)
    _weights(net, 6.0)
    path = tm.drop(net, file="weights/net.h5")
    assert path == str(tmp_path / "ckpt" / "weights" / "net.h5") and os.path.isfile(path)
    assert _value(tm, dock, file="weights/net.h5") == 6.0
    assert _value(TimeMachine("./ckpt/weights/net.h5", "ckpt"), dock) == 6.0


def test_rotation_under_a_relative_path(dock, engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tm = TimeMachine("./ckpt", "./ckpt", max_anchors=2)
    net = mlp(dock)
    for value in (1.0, 2.0, 3.0):  # no optimizer: numbered after the folder's anchors
        _weights(net, value)
        tm.drop(net)
    tm.wait()
    s = _suffix(engine)
    assert _entries(tmp_path / "ckpt") == [f"MLP-2{s}", f"MLP-3{s}"]
    assert _value(tm, dock) == 3.0


def test_a_chdir_between_drop_and_to_changes_nothing(dock, engine, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    monkeypatch.chdir(first)
    tm = TimeMachine("./ckpt", "./ckpt", max_anchors=1)
    net = mlp(dock)
    _weights(net, 7.0)
    tm.drop(net)
    tm.drop(net, file="w.h5")
    monkeypatch.chdir(second)  # while the anchor may still be in flight
    assert _value(tm, dock) == 7.0
    assert _value(tm, dock, file="w.h5") == 7.0
    _weights(net, 8.0)
    tm.drop(net)  # still into a/ckpt, rotating there
    assert _value(tm, dock) == 8.0
    assert _entries(first / "ckpt") == sorted([f"MLP-2{_suffix(engine)}", "w.h5"])
    assert not (second / "ckpt").exists()


def test_a_path_with_a_tilde(dock, engine, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    tm = TimeMachine("~/ckpt", "~/ckpt")
    net = mlp(dock)
    _weights(net, 9.0)
    tm.drop(net)
    with pytest.raises(ValueError, match=r"file='.*elsewhere/best' would write outside save_path"):
        tm.drop(net, file="~/elsewhere/best")  # '~' in file: an absolute path, outside save_path
    tm.wait()
    assert _entries(home / "ckpt") == [f"MLP-1{_suffix(engine)}"]
    assert not (home / "elsewhere").exists()
    assert os.listdir(work) == []  # no folder literally named '~'
    assert _value(tm, dock) == 9.0
    assert _value(tm, dock, file="~/ckpt/MLP-1") == 9.0  # reading takes any path
