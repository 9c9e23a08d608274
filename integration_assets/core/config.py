"""YAML configuration, validated at load with errors that name the file, the line and the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

Model = TypeVar("Model", bound=pydantic.BaseModel)


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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_yaml(text, model, str(path))
