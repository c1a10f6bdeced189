"""Profiles and typed configs: one YAML file per profile, overriding only what differs from the defaults.

Every component owns a config dataclass whose defaults are the paper-scale values (SPEC.md). A profile file
(``configs/{smoke,mini,paper}.yaml``) is a mapping ``section -> {field: value}``; :func:`load_profile` reads it,
applies ``key.sub=value`` overrides, then resolves ``${section.key}`` references (so a local path is named once),
and :func:`build` turns one section into its dataclass, rejecting unknown keys.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from setok import PROFILES

T = TypeVar("T")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of smoke/mini/paper, else raise a ValueError naming the choices."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def _parse_value(text: str) -> Any:
    """Parse an override value with YAML rules (``3`` -> int, ``1e-3`` -> float, ``[1, 2]`` -> list)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(cfg: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (dots descend into nested mappings) to a copy of ``cfg``."""
    out = yaml.safe_load(yaml.safe_dump(cfg)) or {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override must look like section.key=value (got {item!r})")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {key!r} is not a section")
        node[keys[-1]] = _parse_value(text)
    return out


REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def resolve_references(cfg: dict[str, Any]) -> dict[str, Any]:
    """Replace every string value ``"${a.b.c}"`` by the value at that dotted path of ``cfg`` (after overrides, so
    overriding ``paths.checkpoints.siglip`` also moves ``tokenizer.encoder_path``). A reference to a missing key, to
    a section, or to another reference is a ValueError naming both keys."""

    def lookup(dotted: str, where: str) -> Any:
        node: Any = cfg
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"config key {where} refers to ${{{dotted}}}, which does not exist")
            node = node[key]
        if isinstance(node, dict) or (isinstance(node, str) and REFERENCE.match(node)):
            raise ValueError(f"config key {where} refers to ${{{dotted}}}, which is a section or another reference")
        return node

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        match = REFERENCE.match(node) if isinstance(node, str) else None
        return lookup(match.group(1), where) if match else node

    return walk(cfg, "")


def load_profile(profile: str, overrides: list[str] | None = None, path: str | Path | None = None) -> dict:
    """Read ``configs/<profile>.yaml`` (or ``path``) and apply overrides; returns the resolved mapping."""
    check_profile(profile)
    if path is None:
        text = resources.files("setok.configs").joinpath(f"{profile}.yaml").read_text()
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
    cfg = yaml.safe_load(text) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"profile {profile!r}: the config must be a mapping of sections")
    cfg = resolve_references(apply_overrides(cfg, overrides))
    cfg["profile"] = profile
    return cfg


def build(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields; unknown keys are an error."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for {cls.__name__}{' in ' + where if where else ''}; "
            f"valid keys: {sorted(fields)}"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = build(hint, value, where=f"{where}.{name}" if where else name)
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """A dataclass (possibly nested) as plain JSON-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
