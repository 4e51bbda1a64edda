"""The `assay` command line (typer). Each command group lives in assay/commands/<name>.py;
modules there import heavy things (litellm, docker, torch) inside the command functions so
that `assay --help` stays fast."""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

from assay.errors import UserError

app = typer.Typer(
    name="assay",
    help="Code generation with execution-grounded test-time search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DEBUG = False


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    global _DEBUG
    _DEBUG = debug or bool(os.environ.get("ASSAY_DEBUG"))


def _register() -> None:
    from assay.commands import bench, demo, kernel, runs, sandbox, select, solve

    for module in (sandbox, select, solve, bench, kernel, runs, demo):
        module.register(app)


_register()


def _usage_errors() -> tuple[type, ...]:
    """The ClickException class behind a bad flag or value: click's own, or since typer 0.2x the
    copy of click that typer vendors. typer names neither, but its BadParameter derives from it."""
    return tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _note_sigint() -> list[int]:
    """Ctrl-C as it arrives. typer 0.2x turns the KeyboardInterrupt into a plain exit code 130,
    which a command may also return (`sandbox run` passes on its child's)."""
    seen: list[int] = []

    def on_sigint(signum, frame):
        seen.append(signum)
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
    return seen


def _interrupted() -> None:
    print("assay: interrupted; finished stages are kept in the run directory.", file=sys.stderr)
    sys.exit(130)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one sentence on stderr and exit code 2."""
    sigint = _note_sigint()
    try:
        rc = app(args=argv, standalone_mode=False)
        # click returns (not raises) typer.Exit's code when standalone_mode is False
        if rc == 130 and sigint:
            _interrupted()
        if isinstance(rc, int) and rc != 0:
            sys.exit(rc)
    except UserError as e:
        if _DEBUG:
            raise
        print(f"assay: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # click before typer 0.2x turns Ctrl-C into Abort
        _interrupted()
    except Exception as e:  # click usage errors come through here too
        if isinstance(e, _usage_errors()):
            e.show()
            sys.exit(2)
        if _DEBUG:
            raise
        print(f"assay: internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
