"""Command options declared once, as dataclass fields; the typer command is made from them.

A command's options are one dataclass (nanoGPT style: a type, a default and one line of
help per field). ``typer_command(Config, run)`` turns it into a typer command whose flags
are the fields (``--batch-size`` for ``batch_size``; bools get ``--x/--no-x``), and
calls ``run(Config(**flags))``. The same dataclass is what the library function takes,
what a run saves as its settings and what its model card is made from, so an option is
written in exactly one place.

A subclass gives an inherited option another default with ``default(value)``; the help
comes from the base class's declaration.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

MISSING = dataclasses.MISSING


def opt(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
        hidden: bool = False, resumable: bool = False, metavar: str | None = None,
        parse: Callable[..., Any] | None = None, config: tuple[type, ...] | None = None,
        cli_type: Any = None, show_default: str | None = None, flag: bool = True, negative: str | None = None) -> Any:
    """A dataclass field that is also a command-line option.

    ``resumable``: the option may change when a run is resumed (it does not change the
    math, e.g. ``--steps`` or ``--threads``). For ``typer_overrides``: ``parse(value,
    what=...)`` checks a value, ``config`` the TOML types a config file may give it (None:
    a flag only), ``cli_type`` what the command line takes when it is not the field's type
    (``--size`` is text), ``show_default`` the default as ``--help`` says it, and
    ``flag=False`` keeps the field off the command line, and ``negative`` names a bool's "off"
    flag (``--always-on`` for ``--on-demand``; ``--no-x`` if None).
    """
    meta = {"help": help, "hidden": hidden, "resumable": resumable, "metavar": metavar, "parse": parse,
            "config": config, "cli_type": cli_type, "show_default": show_default, "flag": flag, "negative": negative}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default(value: Any) -> Any:
    """Another default for an option declared in a base class (its help and flags stay)."""
    return dataclasses.field(default=value, metadata={"inherit": True})


def _declaration(cls: type, name: str) -> dict:
    """The metadata of the class in ``cls``'s MRO that declared ``name`` (not just re-defaulted)."""
    for klass in cls.__mro__:
        found = klass.__dict__.get("__dataclass_fields__", {}).get(name)
        if found is not None and not found.metadata.get("inherit"):
            return dict(found.metadata)
    return {}


def option_fields(cls: type) -> list[tuple[dataclasses.Field, dict]]:
    """Every field of ``cls`` with the metadata of its declaration."""
    return [(f, _declaration(cls, f.name)) for f in dataclasses.fields(cls)]


def resumable_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f, meta in option_fields(cls) if meta.get("resumable"))


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _decls(name: str, meta: dict, kind: Any) -> str:
    """The flag declaration of a field: ``--x`` or, for a bool, ``--x/--no-x`` (or its ``negative``)."""
    if kind is not bool:
        return flag(name)
    return f"{flag(name)}/{meta.get('negative') or '--no-' + flag(name)[2:]}"


def typer_command(cls: type, run: Callable[[Any], Any], *, doc: str | None = None) -> Callable[..., Any]:
    """A function typer can register: one keyword parameter per field of ``cls``."""
    import typer

    hints = typing.get_type_hints(cls)
    params = []
    for f, meta in option_fields(cls):
        if f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = inspect.Parameter.empty  # required
        decls = _decls(f.name, meta, hints[f.name])
        option = typer.Option(decls, help=meta.get("help", ""), hidden=meta.get("hidden", False),
                              metavar=meta.get("metavar"), show_default=value is not inspect.Parameter.empty)
        annotation = Annotated[hints[f.name], option]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=value, annotation=annotation))

    def command(**values: Any) -> Any:
        return run(cls(**values))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc or cls.__doc__
    command.__name__ = getattr(run, "__name__", cls.__name__)
    return command


def shown_default(value: Any) -> str | bool:
    """A default as ``--help`` shows it: ``30`` for 30.0; True (typer's own) for None and flags."""
    if value is None or isinstance(value, bool):
        return True
    return f"{value:g}" if isinstance(value, float) else str(value)


def typer_overrides(cls: type, run: Callable[..., Any], *, extra: list[inspect.Parameter] = (),
                    doc: str | None = None) -> Callable[..., Any]:
    """A typer command whose flags are the fields of ``cls`` (``flag=True``), each defaulting
    to None, so ``run(overrides, **extras)`` gets only the flags the user gave (a config
    file fills in the rest); ``extra`` are more keyword parameters (typer-annotated), handed
    to ``run`` as they are."""
    import typer

    hints = typing.get_type_hints(cls)
    params = []
    for f, meta in option_fields(cls):
        if not meta.get("flag", True):
            continue
        kind = meta.get("cli_type") or hints[f.name]
        decls = _decls(f.name, meta, kind)
        shown = meta.get("show_default") or shown_default(f.default if f.default is not MISSING else None)
        option = typer.Option(decls, help=meta.get("help", ""), hidden=meta.get("hidden", False),
                              metavar=meta.get("metavar"), show_default=shown)
        annotation = Annotated[typing.Optional[kind], option]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    params += list(extra)
    names = {p.name for p in extra}

    def command(**values: Any) -> Any:
        extras = {name: values.pop(name) for name in names}
        return run({k: v for k, v in values.items() if v is not None}, **extras)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc or cls.__doc__
    command.__name__ = getattr(run, "__name__", cls.__name__)
    return command


def help_of(cls: type, name: str) -> str:
    """The help line a field of ``cls`` was declared with."""
    return _declaration(cls, name).get("help", "")


def as_settings(config: Any) -> dict[str, Any]:
    """The config as plain JSON values (paths as strings), for settings files and cards."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if hasattr(value, "__fspath__"):
            return str(value)
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
