"""The ``flownet2`` command.

Subcommands are found through the ``flownet2.commands`` entry-point group, so
each package registers its own (``flownet2_core``: flow, viz, methods, demo;
``flowapps`` and ``evaluations`` add theirs) and the core never imports the
layers above it. An entry point names a :class:`Command`; every command is a
thin shell around a plain Python function.

Start-up stays fast (``flownet2 --help`` imports no torch): the modules that
define commands import their heavy dependencies inside the functions that need
them, and a subcommand's arguments are added only when that subcommand is
parsed, so ``flownet2 flow …`` never runs the other commands' ``add_arguments``.

Bad input (a missing file, a malformed flow file, an unknown method, an output
that would overwrite an input, an option a method does not take) ends the
program with status 2 and one line on stderr; set ``FLOWNET2_DEBUG=1`` to see
the traceback instead. So does a bad argument of a subcommand: its parser prints
one ``flownet2 CMD: error: argument --opt: …`` line, not its usage. Numbers are
range-checked where they are parsed, with the argparse types defined here
(:func:`positive_int`, :func:`non_negative_int`, :func:`positive_float`,
:func:`non_negative_float`, :func:`probability`, :func:`int_range`), which every
package's commands share.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Sequence

__all__ = ["Command", "USER_ERRORS", "UserError", "build_parser", "main", "load_commands", "int_range", "run_script",
           "non_negative_float", "non_negative_int", "positive_float", "positive_int", "probability"]

ENTRY_POINT_GROUP = "flownet2.commands"


class UserError(Exception):
    """A problem with what the user asked for; shown as one line, no traceback."""


#: Errors that come from bad input rather than from a bug in this program: shown as one
#: line (status 2) by :func:`main`.
USER_ERRORS = (UserError, ValueError, FileNotFoundError, IsADirectoryError,
               NotADirectoryError, PermissionError, FileExistsError)


# ---------------------------------------------------------------- argument types
# argparse names the option in its message ("argument --batch-size: …"), so these say
# only what is wrong with the value.
def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _bounded(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str, name: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then refuse it unless ``ok`` (one line: *must be
    {what}, got …*)."""
    def parse(text: str):
        value = convert(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    parse.__name__ = name  # argparse names the type in some messages
    return parse


#: argparse types, range-checked where parsed (finite numbers only).
positive_int = _bounded(_int, lambda v: v >= 1, "a positive integer", "positive_int")
non_negative_int = _bounded(_int, lambda v: v >= 0, "an integer >= 0", "non_negative_int")
positive_float = _bounded(_float, lambda v: v > 0, "a number > 0", "positive_float")
non_negative_float = _bounded(_float, lambda v: v >= 0, "a number >= 0", "non_negative_float")
probability = _bounded(_float, lambda v: 0 <= v <= 1, "a number in [0, 1]", "probability")


def int_range(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in ``low..high`` (both included)."""
    return _bounded(_int, lambda v: low <= v <= high, f"an integer in {low}..{high}", f"int_{low}_{high}")


def image_size(text: str) -> tuple[int, int]:
    """``"512x384"`` (or ``512×384``) → ``(384, 512)``. Sizes are written W×H everywhere in
    this toolkit, typed and printed, as image sizes are (1024×448, 320×240); the tuple is in
    array-shape order (H, W), as the code uses it."""
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected W×H such as 512x384, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return h, w


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (0-based task K of N, as array jobs number them) → (K, N); None stays None.
    ``UserError`` (one line) otherwise."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard wants K/N (e.g. 3/16, 0-based K), got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise UserError(f"--shard {text}: need 0 <= K < N")
    return k, n


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` then ``run(args) -> exit status``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str | None = None


def load_commands() -> dict[str, Command]:
    """All registered subcommands, by name."""
    commands: dict[str, Command] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cmd = ep.load()
        if not isinstance(cmd, Command):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a flownet2_core.cli.Command")
        commands[ep.name] = cmd
    return dict(sorted(commands.items()))


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser that adds its arguments the first time it parses or
    formats help (the command chosen on the command line), not when built."""

    _deferred: Callable[[argparse.ArgumentParser], None] | None = None

    def _add_deferred(self) -> None:
        add, self._deferred = self._deferred, None
        if add is not None:
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_deferred()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_deferred()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_deferred()
        return super().format_help()

    def error(self, message: str):
        """One line, ``flownet2 CMD: error: argument --opt: …``, status 2 (no usage block:
        a subcommand's usage runs over many lines and hides the error)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    """The ``flownet2`` parser with one subcommand per entry of ``commands``; each
    subcommand's ``add_arguments`` runs only when that subcommand is used."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="flownet2",
        description="FlowNet 2.0 optical flow and what it feeds.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for name, cmd in commands.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.description or cmd.help)
        p._deferred = cmd.add_arguments
        p.set_defaults(_run=cmd.run)
    return parser


def _close_progress_bars() -> None:
    """Close every open tqdm bar, so that the error line comes after them, on its own line.

    A bar left open by an exception (a ``for … in tqdm(…)`` loop that raised) is only
    closed when it is garbage-collected, which redraws it over whatever was printed."""
    tqdm = sys.modules.get("tqdm")  # no bar can be open if tqdm was never imported
    if tqdm is None:
        return
    for bar in list(getattr(tqdm.tqdm, "_instances", ())):
        bar.close()


def _run_interruptibly(args: argparse.Namespace, exit_on_interrupt: bool) -> int | None:
    """``args._run(args)`` in a worker thread while the main thread waits for it.

    Python runs a signal handler only in the main thread, between bytecodes: while one long
    OpenCV or PyTorch call (a TV-L1 field of a large image, a network forward) runs in the
    main thread, Ctrl-C waits for it to return. Those calls release the GIL, so with the work
    in a worker the waiting main thread gets KeyboardInterrupt within a tenth of a second.
    The worker cannot be stopped mid-call: its unfinished temporary files are removed and,
    run as a program (``exit_on_interrupt``), the process ends at once with status 130;
    finished files stay (atomic writes), so a re-run resumes.
    """
    outcome: dict = {}

    def work():
        try:
            outcome["status"] = args._run(args)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"flownet2 {args.command}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        from .io import remove_temporaries

        remove_temporaries()
        if exit_on_interrupt:
            _close_progress_bars()
            print(f"flownet2 {args.command}: interrupted", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # the worker may sit in a C call: do not wait for interpreter shutdown
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("status")


def main(argv: Sequence[str] | None = None, commands: dict[str, Command] | None = None) -> int:
    """Run ``flownet2 …`` (``argv``: the arguments after the program name; ``None``: the
    command line) and return the exit status. ``commands``: the subcommands to offer,
    by default every registered one; a package can run just its own
    (``main(["action", *argv], {"action": ACTION})``) without the entry points."""
    if commands is None:
        commands = load_commands()
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    def run() -> int:
        try:
            return int(_run_interruptibly(args, exit_on_interrupt=argv is None) or 0)
        except KeyboardInterrupt:
            _close_progress_bars()
            print(f"flownet2 {args.command}: interrupted", file=sys.stderr)
            return 130

    return run_script(f"flownet2 {args.command}", run)


def run_script(prog: str, fn: Callable[[], Any]) -> int:
    """Run a script's ``fn`` as :func:`main` runs a command: bad input (``USER_ERRORS``)
    is one line on stderr and status 2 (``FLOWNET2_DEBUG=1`` shows the traceback);
    otherwise ``fn``'s integer result (``None`` → 0)."""
    try:
        status = fn()
    except (*USER_ERRORS, OSError) as exc:
        # An OSError without a file name (a failing device, a lost pipe) is not bad input.
        if os.environ.get("FLOWNET2_DEBUG") or not (isinstance(exc, USER_ERRORS) or _filename(exc)):
            raise
        _close_progress_bars()
        print(f"{prog}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


def _filename(exc: BaseException) -> str | None:
    name = getattr(exc, "filename", None)
    return os.fspath(name) if isinstance(name, (str, bytes, os.PathLike)) else None


def _describe(exc: BaseException) -> str:
    """One line for a user: ``PATH: reason`` for file errors (no ``[Errno N]``), else ``str(exc)``."""
    name = _filename(exc)
    if isinstance(exc, OSError) and name is not None and exc.strerror:
        return f"{name}: {exc.strerror}"
    return str(exc)


if __name__ == "__main__":  # pragma: no cover
    # `python -m flownet2_core.cli` runs this file as __main__: call the
    # imported module's main so Command is the same class entry points load.
    from flownet2_core.cli import main as _main

    sys.exit(_main())
