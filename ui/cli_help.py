"""How `lorag --help` looks: the commands in the order a user needs them, no `<bool>` for flags, long words folded
rather than cut. Typer's rich help is patched once, when help first renders."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

# `lorag --help` lists the commands in the order a user needs them; the setup ones under their own heading
WORKFLOW = ("ingest", "ask", "docs", "synth", "train", "adapters", "eval", "ui")
SETUP = "Setup"


class WorkflowOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: WORKFLOW.index(n) if n in WORKFLOW else len(WORKFLOW))


def no_flag_types() -> None:
    """Help shows a value's type for options that take one, nothing for a flag (typer prints `<bool>`)."""
    from typer.core import TyperOption

    if getattr(TyperOption, "_lorag_flags", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperOption._lorag_flags = True  # type: ignore[attr-defined]


def _fold_long_words() -> None:
    """Help wraps whole: a word longer than its column (a path such as <data_dir>/recipes/<domain>.yaml) goes on
    over the next line instead of being cut with "…" (rich's default for a table cell, where typer puts the help
    of options, arguments and commands). Text that fits wraps at spaces as before."""
    from rich.columns import Columns
    from rich.text import Text
    from typer import rich_utils

    if getattr(rich_utils, "_lorag_fold", False):
        return

    def folded(make: Any) -> Any:
        def make_folded(*args: Any, **kwargs: Any) -> Any:
            out = make(*args, **kwargs)
            for part in out.renderables if isinstance(out, Columns) else [out]:
                if isinstance(part, Text):
                    part.overflow = "fold"
            return out

        return make_folded

    for name in ("_get_parameter_help", "_make_command_help"):  # an option's or argument's help; a command's
        if hasattr(rich_utils, name):
            setattr(rich_utils, name, folded(getattr(rich_utils, name)))
    rich_utils._lorag_fold = True  # type: ignore[attr-defined]


def fold_when_help_shows() -> None:
    """Apply `_fold_long_words` the first time any typer command or group renders its help (`--help`, a bare group,
    a usage error's help): patching typer.rich_utils up front would import rich's markdown stack on every start,
    which typer itself loads only to render help or an error."""
    from typer.core import TyperCommand

    for cls in (TyperCommand, TyperGroup):
        if getattr(cls, "_lorag_fold_on_help", False):
            continue
        shown = cls.format_help

        def format_help(self: Any, ctx: Any, formatter: Any, _shown: Any = shown) -> None:
            _fold_long_words()
            return _shown(self, ctx, formatter)

        cls.format_help = format_help  # type: ignore[method-assign]
        cls._lorag_fold_on_help = True  # type: ignore[attr-defined]
