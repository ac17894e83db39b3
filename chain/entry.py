"""The ``chain`` command's entry point, and the one place where failures become messages and exit codes.

It stays light: the command-line app (and torch behind it) is imported inside the handlers, so
that Ctrl-C during start-up is an interrupt like any other, not a traceback.

Exit codes: 0 done; 2 a mistake the user can fix (`ChainError`, usage); 3 missing weights;
4 the system refused (disk full, read-only, permissions); 1 an internal error (a bug);
128 + N for a stop signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

OS_ERROR_EXIT = 4


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``chain`` console script (and ``python -m chain``)."""
    from chain.signals import exit_code, stop_on_signals

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        with stop_on_signals():
            _run(args, debug=debug)
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        _stop_ray()
        what = "interrupted" if exit_code(interrupt) == 130 else f"stopped by {interrupt}"
        if "--resume" in args and args[:1] == ["run"]:
            _say(f"{what}; no output was written yet, and the finished parts are kept (hidden): run the same "
                 "command with --resume to go on")
        else:
            _say(f"{what}; no partial output was left (outputs are moved into place only when complete)")
        sys.exit(exit_code(interrupt))


def _run(args: list[str], *, debug: bool) -> None:
    import typer

    from chain.errors import ChainError, ChainWarning, error_line

    usage_error = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")
    abort = next(cls for cls in typer.Abort.__mro__ if cls.__name__ == "Abort")
    try:
        # Before torch (and libgomp, which reads OMP_* once as it loads and prints its own line
        # about a bad value) is imported by any command.
        from chain.bounds import check_environment

        check_environment()
        from chain.cli import app, with_optional_values

        args = with_optional_values(args)

        with warnings.catch_warnings():
            warnings.simplefilter("always", ChainWarning)  # each concerns this command: none is deduplicated away
            warnings.showwarning = _warning_lines(warnings.showwarning, ChainWarning)
            result = app(args=args, prog_name="chain", standalone_mode=False, obj={"argv": args})
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except usage_error as usage:
        command = getattr(getattr(usage, "ctx", None), "command_path", None) or "chain"
        _say(f"{usage.format_message()} (see: {command} --help)", error=True)
        sys.exit(usage.exit_code)
    except abort:  # click turns Ctrl-C inside a command into Abort
        raise KeyboardInterrupt from None
    except ChainError as error:
        if debug:
            raise
        _say(error_line(error), error=True)
        sys.exit(error.exit_code)
    except (OSError, MemoryError) as error:
        if debug:
            raise
        _say(_out_of_memory(error, args) if isinstance(error, MemoryError) else error_line(error), error=True)
        sys.exit(OS_ERROR_EXIT)
    except Exception as error:  # noqa: BLE001 — the one place that maps failures to exit codes
        if debug:
            raise
        if _is_out_of_memory(error):
            _say(_out_of_memory(error, args), error=True)
            sys.exit(OS_ERROR_EXIT)
        _say(f"{error_line(error)} (run again with --debug for the traceback)")
        sys.exit(1)
    # Outside standalone mode click returns exit codes instead of raising, and turns every
    # KeyboardInterrupt (ours for SIGTERM/SIGHUP too) into 130.
    if result == 130:
        from chain.signals import Terminated

        raise Terminated(Terminated.last) if Terminated.last else KeyboardInterrupt
    if isinstance(result, int) and result:
        sys.exit(result)


# What torch's allocators say when they are refused memory (torch.OutOfMemoryError is a RuntimeError).
_NO_MEMORY = re.compile(r"can't allocate memory|out of memory|not enough memory|DefaultCPUAllocator", re.I)
# The options that size what a network allocates, in the order a user should lower them.
_SIZING = re.compile(r"^(--(seg|synth)-opt(=|$)|--size(=|$)|--batch(=|$))")


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError)
                                             and _NO_MEMORY.search(str(error)) is not None)


def _out_of_memory(error: BaseException, args: list[str]) -> str:
    """One line for a refused allocation: how much was asked (when said) and which option to lower."""
    asked = re.search(r"allocate ([0-9.]+ ?[KMGT]i?B|[0-9]+ bytes)", str(error))
    amount = asked.group(1) if asked else None
    if amount and amount.endswith(" bytes"):
        amount = f"{int(amount.split()[0]) / 2**30:.1f} GiB"
    given = []
    for i, arg in enumerate(args):
        if _SIZING.match(arg):
            value = arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            option = arg.partition("=")[0]
            if option.endswith("-opt") and not value.startswith("size="):
                continue
            given.append(f"{option} {value}")
    advice = f"lower {' or '.join(given)}" if given else "try a smaller --size or --batch"
    return f"out of memory{f' (a network asked for {amount})' if amount else ''}: {advice}"


def _stop_ray() -> None:
    """Shut Ray down before the interpreter does, if this command started it: Ray's exit handler,
    run after an interrupt, crashed (SIGSEGV) once the interpreter was half torn down."""
    ray = sys.modules.get("ray")
    if ray is None or not getattr(ray, "is_initialized", lambda: False)():
        return
    from chain.signals import deferred_signals

    with deferred_signals():  # a second Ctrl-C must not cut the shutdown in half
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001 — the run is stopping anyway; Ray's processes die with it
            pass


def _warning_lines(show: Callable[..., None], category: type[Warning]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints ``category`` as one ``warning:`` line and the rest with ``show``."""

    def show_warning(message: Warning | str, kind: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(kind, category):
            _say(str(message), label=("warning: ", "yellow"))
        else:
            show(message, kind, *args, **kwargs)

    return show_warning


def _say(message: str, *, error: bool = False, label: tuple[str, str] | None = None) -> None:
    """One line on stderr (``error:`` in red on a terminal, or another ``label``: text and colour)."""
    line = " ".join(message.split())  # one line, whatever the message held
    label = ("error: ", "red") if error else label
    try:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True, soft_wrap=True).print(Text.assemble(label, line) if label else Text(line))
    except Exception:  # noqa: BLE001 — the message matters more than its colour
        print((label[0] if label else "") + line, file=sys.stderr)
