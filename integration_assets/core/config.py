"""YAML configuration, validated at load with errors that name the file, the line and the entry.

Where a file comes from (one rule): the defaults ship inside the package (`integration_assets/defaults/`); the
folder the environment variable `INTEGRATION_CONFIG_DIR` names overrides them file by file (a file of the same
name there wins, a file missing there falls back to the packaged one). In a checkout the quickstart points it at
`data/` (through `.env`); unset, the packaged defaults are used.

How a file is read (one rule): every file, the sandbox's fault profiles included, goes through `compose_yaml`,
which refuses a duplicate key (YAML keeps the last one without a word: `deals: [read]` then `deals: [read,
update, delete]` would grant delete) and a syntax error, each with its line; then the file's pydantic model,
then its own cross-checks (`parse_yaml`'s `check`), all reported in the one shape `file:line: entry: message`.

How a file is cached (one rule): `load_config` parses a file again when it changed (its resolved path, mtime
and size), so an edit applies from the next call, and nobody clears a cache.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

__all__ = [
    "CONFIG_DIR_ENV",
    "ConfigError",
    "KeyLine",
    "Problem",
    "compose_yaml",
    "config_dir",
    "config_files",
    "config_path",
    "default_path",
    "describe",
    "duplicate_keys",
    "load_config",
    "load_yaml",
    "parse_yaml",
    "syntax_error",
]

Model = TypeVar("Model", bound=pydantic.BaseModel)
T = TypeVar("T")

Problem = tuple[tuple[Any, ...], str]  # (location in the file's data, message)

CONFIG_DIR_ENV = "INTEGRATION_CONFIG_DIR"
DEFAULTS_PACKAGE = "integration_assets.defaults"


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: same result, faster


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


def parse_yaml(
    text: str,
    model: type[Model],
    source: str,
    check: Callable[[Model], Iterable[Problem]] | None = None,
) -> Model:
    """Parses YAML text into `model`; `source` names the text in error messages.

    `check` cross-checks the validated model (what a field validator cannot see: one entry against another)
    and yields (location, message) problems, reported like the schema's own: every file has one error shape.
    """
    root, data = compose_yaml(text, source)
    try:
        value = model.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        raise ConfigError(
            "\n".join(describe(root, tuple(error["loc"]), error["msg"], source) for error in exc.errors())
        ) from None
    problems = list(check(value)) if check is not None else []
    if problems:
        raise ConfigError("\n".join(describe(root, location, message, source) for location, message in problems))
    return value


def compose_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for lines) and the data of YAML text, in one parse, refusing duplicate keys.

    Every configuration file is read through here, so none can let a second `deals:` silently replace the
    first (YAML keeps the last one): in a grant that would widen it unseen, in a dictionary drop a field.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        # before constructing: that folds `<<` merges into the mapping nodes, which would look like duplicates
        duplicates = list(duplicate_keys(root))
        if duplicates:
            raise ConfigError("\n".join(describe(root, location, message, source) for location, message in duplicates))
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(syntax_error(exc, text, source)) from None
    finally:
        loader.dispose()
    return root, data


@dataclass(frozen=True)
class KeyLine:
    """A location step that already knows its line (a duplicate key cannot be found by name)."""

    line: int
    name: str

    def __str__(self) -> str:
        return self.name


def duplicate_keys(node: yaml.Node | None, location: tuple[Any, ...] = ()) -> Iterator[Problem]:
    """Every key that repeats an earlier key of the same mapping, located at its own line.

    Keys are compared as the loaded data would hold them (`1` and `1.0`, `yes` and `true` collide there too).
    A node reached again through an alias is walked once: its problems are already reported.
    """
    constructor = yaml.constructor.SafeConstructor()
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node | None, location: tuple[Any, ...]) -> Iterator[Problem]:
        if node is None or id(node) in seen_nodes:
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                name = str(key_node.value)
                if key_node.tag != "tag:yaml.org,2002:merge":  # `<<: *base` then an override is the point
                    key = _key_of(constructor, key_node)
                    if key in first:
                        yield (
                            (*location, KeyLine(key_node.start_mark.line + 1, name)),
                            f"duplicate key {name!r} (first at line {first[key]}): YAML would silently keep "
                            "the last one; remove or merge one of them",
                        )
                    else:
                        first[key] = key_node.start_mark.line + 1
                yield from walk(value_node, (*location, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield from walk(item, (*location, index))

    yield from walk(node, location)


def _key_of(constructor: yaml.constructor.SafeConstructor, node: yaml.Node) -> Any:
    """A key as the loaded mapping holds it; its tag and text when it cannot be built on its own."""
    try:
        key = constructor.construct_object(node, deep=True)
        hash(key)
    except (yaml.YAMLError, TypeError):
        return (node.tag, str(node.value))
    return key


def syntax_error(exc: yaml.YAMLError, text: str, source: str) -> str:
    """`file:line: entry: not valid YAML: …`, the shape of every other configuration error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return f"{source}: (document): not valid YAML: {exc}"
    line = mark.line + 1
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line + 1 != line:
        context = f"{context} (started at line {context_mark.line + 1})"
    message = " ".join(str(part) for part in (context, problem) if part) or str(exc)
    return f"{source}:{line}: {_entry_at(text, line)}: not valid YAML: {message}"


def _entry_at(text: str, line: int) -> str:
    """The dotted key path of the last mapping key at or before `line` (best effort, by indentation)."""
    stack: list[tuple[int, str]] = []
    key = re.compile(r"^(\s*)(?:-\s+)?([^\s#:'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s|$)")
    for content in text.splitlines()[:line]:
        found = key.match(content)
        if not found:
            continue
        indent = len(found.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, found.group(2).strip("'\"")))
    return ".".join(name for _, name in stack) or "(top level)"


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
