"""parse_cfg / record_cfg: run configurations as YAML (`.yml`, `.yaml`, read with safe_load) or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["parse_cfg", "record_cfg"]

_YAML = (".yml", ".yaml")


def _kind(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in _YAML:
        return "yaml"
    if ext == ".json":
        return "json"
    raise ValueError(f"config file {str(path)!r}: unknown extension {ext!r}; use .yml, .yaml or .json")


def parse_cfg(path: str | os.PathLike) -> Any:
    """Read a configuration file: YAML through `yaml.safe_load` (no code runs) or JSON."""
    path = Path(path)
    kind = _kind(path)
    text = path.read_text(encoding="utf-8")
    if kind == "json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def record_cfg(path: str | os.PathLike, config: Any, overwrite: bool = True) -> Path:
    """Write `config` as YAML (keys in insertion order, unicode kept) or JSON (indent 4); returns the path.

    With `overwrite=False` an existing file is kept and the config goes to `name_.ext` (then `name__.ext`, ...).
    """
    path = Path(path)
    kind = _kind(path)
    if not overwrite:
        while path.exists():
            path = path.with_name(f"{path.stem}_{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "json":
        text = json.dumps(config, indent=4, ensure_ascii=False) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path
