"""How `gan-zoo` reports errors: one line on stderr and an exit status.

User errors (a missing file, an unknown model or option, a malformed
`--set`, an empty data folder) are `UsageError`s: one line, status 2. A
Ctrl-C ends with status 130. Anything else is a bug and keeps its traceback.
"""

import sys

PROG = "gan-zoo"
EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


def message(error):
    """The text of an exception; KeyError's str() would add quotes.

    Args:
        error: any exception.
    """
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def raised_by(error, modules):
    """Whether `error` was raised by code of `modules` (names or packages).

    Looks at the innermost frame of its traceback: the code that raised it.

    Args:
        error: a caught exception.
        modules: module or package names, e.g. `("gan_zoo",)`.
    """
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    raiser = tb.tb_frame.f_globals.get("__name__", "")
    return any(raiser == m or raiser.startswith(m + ".") for m in modules)


def exit_status(function, *args, prog=PROG):
    """Runs `function(*args)` and turns the errors a user can act on into a status.

    Args:
        function: the command; returns its exit status.
        *args: its arguments.
        prog: the program name that starts each error line.

    Returns:
        The command's status, `EXIT_USAGE` after a `UsageError` or
        `EXIT_INTERRUPTED` after Ctrl-C (each with one line on stderr).
    """
    try:
        return function(*args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
