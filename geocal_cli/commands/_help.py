"""What `--help` shows: reflowed paragraphs, flags without a value placeholder, arguments
named as usage lines and man pages name them."""

from __future__ import annotations

import inspect

from typer.core import TyperCommand, TyperGroup


def reflow(text: str | None) -> str | None:
    """Help text for the terminal: each paragraph joined into one line, so rich wraps it to
    the window (a docstring's hard breaks would show as ragged lines); indented paragraphs
    (examples) stay as they are.

    Parameters
    ----------
    text : str or None
        A docstring or an epilog: paragraphs separated by blank lines.

    Returns
    -------
    str or None
    """
    if text is None:
        return None
    paras = [p for p in inspect.cleandoc(text).split("\n\n") if p.strip()]
    return "\n\n".join(p if p.startswith("  ") else " ".join(p.split()) for p in paras)


def tidy_help(typer_app) -> None:
    """Set every registered command's help once: docstring and epilog reflowed (`reflow`),
    and option help escaped, since the rich renderer reads "[default: 200]" as a markup tag
    and drops it (once per option object: some are shared between commands).

    Parameters
    ----------
    typer_app : typer.Typer
    """
    from rich.markup import escape

    seen = set()
    for info in typer_app.registered_commands:
        info.help = reflow(info.help or info.callback.__doc__)
        info.epilog = reflow(info.epilog)
        for param in inspect.signature(info.callback).parameters.values():
            opt = param.default
            if getattr(opt, "help", None) and id(opt) not in seen:
                seen.add(id(opt))
                opt.help = escape(opt.help)


class _Tidy:
    """Mixin for click commands built by typer."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False):
                # A flag takes no value: show none ("<bool>" suggests `--json true`, an error).
                p.metavar = ""
            elif getattr(p, "param_type_name", "") == "argument":
                p.metavar = p.metavar or p.name.upper()
        return params

    def collect_usage_pieces(self, ctx):
        # "IMAGE" and "[IMAGE]", as man pages and click write them (not "{IMAGE}").
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if getattr(p, "param_type_name", "") == "argument":
                name = p.metavar + ("..." if p.nargs != 1 else "")
                pieces.append(name if p.required else f"[{name}]")
        return pieces


class GeocalCommand(_Tidy, TyperCommand):
    """A geocal subcommand (see `_Tidy`)."""


class GeocalGroup(_Tidy, TyperGroup):
    """The `geocal` command (see `_Tidy`)."""
