"""YAML configuration, validated at load with errors that name the file, the line and the entry.

Where a file comes from (one rule): the defaults ship inside the package (`integration_assets/defaults/`); the
folder the environment variable `INTEGRATION_CONFIG_DIR` names overrides them file by file (a file of the same
name there wins, a file missing there falls back to the packaged one). In a checkout the quickstart points it at
`data/` (through `.env`); unset, the packaged defaults are used.

How a file is cached (one rule): `load_config` parses a file again when it changed (its resolved path, mtime
and size), so an edit applies from the next call, and nobody clears a cache.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

__all__ = [
    "CONFIG_DIR_ENV",
    "ConfigError",
    "config_dir",
    "config_files",
    "config_path",
    "default_path",
    "describe",
    "load_config",
    "load_yaml",
    "parse_yaml",
]

Model = TypeVar("Model", bound=pydantic.BaseModel)
T = TypeVar("T")

CONFIG_DIR_ENV = "INTEGRATION_CONFIG_DIR"
DEFAULTS_PACKAGE = "integration_assets.defaults"


class ConfigError(ValueError):
    """A configuration file is unreadable or does not follow its contract."""


def line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Follows an error location through the YAML node tree to the line it points at.

    A location step that already knows its line (a `line` attribute: a duplicate key, which cannot be found
    by name) ends the walk there.
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        known = getattr(part, "line", None)
        if isinstance(known, int):
            return known
        match = None
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:  # a pydantic "[key]" step points at the key itself
                name = str(part).removesuffix("[key]")
                match = next((k for k, _ in node.value if str(k.value) == name), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        if match is None:
            break
        node, line = match, match.start_mark.line + 1
    return line


def describe(root: yaml.Node | None, location: tuple[Any, ...], message: str, source: str) -> str:
    """`file:line: entry: message`, the one shape of every configuration error."""
    entry = ".".join(str(part) for part in location) or "(top level)"
    line = line_of(root, location)
    where = f"{source}:{line}" if line else source
    return f"{where}: {entry}: {message}"


def parse_yaml(text: str, model: type[Model], source: str) -> Model:
    """Parses YAML text into `model`; `source` names the text in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        raise ConfigError(
            "\n".join(describe(root, tuple(error["loc"]), error["msg"], source) for error in exc.errors())
        ) from None


def load_yaml(path: str | Path, model: type[Model]) -> Model:
    return parse_yaml(_read(Path(path), Path(path)), model, str(path))


def _read(path: Path, source: Path) -> str:
    """The file's text; `source` is how errors name it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None


# ------------------------------------------------------------------------------------- where a file comes from


# Settings that named one file each before INTEGRATION_CONFIG_DIR: still set, they would be silently ignored.
RETIRED_SETTINGS = {"MONITORING_CONFIG": "monitoring.yaml", "WRITEBACK_CONFIG": "writeback.yaml"}


def config_dir() -> Path | None:
    """The operator's override folder (`INTEGRATION_CONFIG_DIR`), or None when it is not set."""
    for setting, name in RETIRED_SETTINGS.items():
        if os.environ.get(setting):
            raise ConfigError(
                f"{setting} is no longer read: put your {name} in a folder and set {CONFIG_DIR_ENV} to that folder"
            )
    folder = os.environ.get(CONFIG_DIR_ENV, "").strip()
    if not folder:
        return None
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{CONFIG_DIR_ENV}={folder}: not a folder (it names the folder of your configuration files)")
    return path


_EXTRACTED = contextlib.ExitStack()  # packaged files extracted from a zipped install, kept for the process


@cache
def config_files() -> tuple[str, ...]:
    """The names of the packaged configuration files, each of which the override folder may replace."""
    packaged = importlib.resources.files(DEFAULTS_PACKAGE).iterdir()
    return tuple(sorted(r.name for r in packaged if r.name.endswith(".yaml") and r.is_file()))


@cache
def default_path(name: str) -> Path:
    """The packaged default file `name` (in `integration_assets/defaults/`)."""
    resource = importlib.resources.files(DEFAULTS_PACKAGE).joinpath(name)
    if not resource.is_file():
        raise ConfigError(f"{name}: no such configuration file (none is packaged in {DEFAULTS_PACKAGE})")
    if isinstance(resource, Path):
        return resource
    return _EXTRACTED.enter_context(importlib.resources.as_file(resource))


def config_path(name: str) -> Path:
    """The file `name` in force: the one in `INTEGRATION_CONFIG_DIR` if that folder holds it, else the default."""
    folder = config_dir()
    if folder is not None and (folder / name).is_file():
        return folder / name
    return default_path(name)


# ------------------------------------------------------------------------------------------ loading, cached

_LOADED: dict[tuple[Path, Any], tuple[tuple[int, int], Any]] = {}
_LOCK = threading.Lock()
# A file changed less than this before it was read is not kept: a second edit within the same timestamp tick
# and of the same size would otherwise look unchanged (git's "racy" entries).
_SETTLED_NS = 1_000_000_000


def load_config(name: str, parse: type[Model] | Callable[[str, str], T], path: str | Path | None = None) -> Model | T:
    """The configuration file `name` (see `config_path`), or the file at `path` when given, parsed.

    `parse` is a pydantic model (validated with `parse_yaml`) or a function of (text, source name). The result
    is kept until the file changes: same resolved path, mtime and size give the same object.
    """
    started = time.time_ns()
    source = Path(path) if path is not None else config_path(name)
    try:
        resolved = source.resolve()
        stat = resolved.stat()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None
    key, stamp = (resolved, parse), (stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        known = _LOADED.get(key)
    if known is not None and known[0] == stamp:
        return known[1]
    text = _read(resolved, source)
    if isinstance(parse, type) and issubclass(parse, pydantic.BaseModel):
        value = parse_yaml(text, parse, str(source))
    else:
        value = parse(text, str(source))
    if started - stat.st_mtime_ns > _SETTLED_NS:
        with _LOCK:
            _LOADED[key] = (stamp, value)
    return value
