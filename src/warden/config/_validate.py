"""Turning the parsed mapping into the snapshot: a pydantic model, a dataclass or a callable.

The snapshot is what the validator returns; it should be immutable, since every reader shares
it: a frozen dataclass (with tuples, not lists), a pydantic model with ``frozen=True``, or,
without a schema, the mapping itself made read-only (``MappingProxyType``, lists as tuples).

pydantic is never imported here: a model is recognised by its ``model_validate`` method, and
its ``ValidationError`` by its ``errors()`` method.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._errors import ConfigError

Validator = Callable[[dict[str, Any]], Any]

_MAX_LISTED_KEYS = 8


def make_validator(schema: object, path: Path) -> Validator:
    """A function from the parsed mapping to the snapshot value, raising :class:`ConfigError`."""
    if schema is None:
        return freeze
    if isinstance(schema, type) and callable(getattr(schema, "model_validate", None)):
        return lambda data: _pydantic(schema, data, path)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        return lambda data: _dataclass(schema, data, path, "")
    if callable(schema):
        return lambda data: _callable(schema, data, path)
    raise ConfigError(path, f"schema={schema!r} is not a pydantic model, a dataclass or a callable")


def freeze(value: Any) -> Any:
    """A read-only deep copy: tables as ``MappingProxyType``, arrays as tuples."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def _pydantic(model: Any, data: dict[str, Any], path: Path) -> Any:
    try:
        return model.model_validate(data)
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            raise ConfigError(path, f"{type(exc).__name__}: {exc}") from exc
        found = errors()
        first = found[0] if found else {"loc": (), "msg": str(exc)}
        field = ".".join(str(part) for part in first.get("loc", ())) or None
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(path, f"{first.get('msg', exc)}{more}", field=field) from exc


def _callable(fn: Callable[[dict[str, Any]], Any], data: dict[str, Any], path: Path) -> Any:
    try:
        return fn(data)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(path, f"{type(exc).__name__}: {exc}") from exc


def _dataclass(cls: type[Any], data: Any, path: Path, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a table, got {_kind(data)}", field=where or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)[:_MAX_LISTED_KEYS])
        raise ConfigError(
            path, f"unknown key (expected one of: {known})", field=_join(where, unknown[0])
        )
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], path, _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(path, "missing (it has no default)", field=_join(where, name))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ checks that tie fields together
        raise ConfigError(path, str(exc) or type(exc).__name__, field=where or None) from exc


def _convert(tp: Any, value: Any, path: Path, where: str) -> Any:  # noqa: PLR0911 - one per kind
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return freeze(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, path, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _convert(arm, value, path, where)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(path, "; ".join(errors), field=where)
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(
            path, f"{value!r} is not one of {', '.join(map(repr, args))}", field=where
        )
    if origin in (list, tuple) or tp in (list, tuple):
        return _sequence(tp, origin or tp, args, value, path, where)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a table, got {_kind(value)}", field=where)
        item = args[1] if len(args) == 2 else Any
        table = {str(k): _convert(item, v, path, _join(where, str(k))) for k, v in value.items()}
        return table if origin is dict or tp is dict else types.MappingProxyType(table)
    return _scalar(tp, value, path, where)


def _sequence(  # noqa: PLR0917 - private
    tp: Any, origin: Any, args: tuple[Any, ...], value: Any, path: Path, where: str
) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"expected an array, got {_kind(value)}", field=where)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ConfigError(path, f"expected {len(args)} items, got {len(value)}", field=where)
        return tuple(
            _convert(a, v, path, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    item = args[0] if args else Any
    items = [_convert(item, v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _scalar(tp: Any, value: Any, path: Path, where: str) -> Any:  # noqa: PLR0911 - one per kind
    if not isinstance(tp, type):
        return value  # a typing construct not handled above (NewType, TypeVar): no check
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE  # from the environment
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(value, tp):
        return value
    raise ConfigError(
        path, f"expected {tp.__name__}, got {_kind(value)} {value!r:.40}", field=where
    )


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "a table", list: "an array", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
