"""How `gan-zoo` and the recipes report errors: one line on stderr and an exit status.

- `UsageError`: a problem with what the user asked for (a missing file, an
  unknown model or option, a malformed `--set`, an empty data folder, a
  run folder that cannot be used): status 2.
- `CommandFailed`, or an `OSError` that says a disk is full or a folder
  cannot be written: the work could not finish: status 1.
- a lost worker of a multi-worker run (TensorFlow's UnavailableError or an
  aborted collective op): status 1, with the advice to rerun;
- Ctrl-C: status 130.

Anything else is a bug and keeps its traceback.
"""

import errno
import sys

PROG = "gan-zoo"
EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# A write the user can fix by freeing space, raising a quota or choosing a
# writable folder. Other OSErrors (a missing file, say) are more often a bug
# in the code than in the environment, so they keep their traceback.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# h5py (Keras' weight files) raises OSErrors whose errno is unset and whose
# text carries the C library's message.
_WRITE_MESSAGES = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit 2."""


class CommandFailed(Exception):
    """The command could not finish its work: one line on stderr, exit 1."""


def message(error):
    """The text of an exception; KeyError's str() would add quotes.

    Args:
        error: any exception.
    """
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def data_problem_line(error, *, skip_option="--on-error skip", dir_option="--data-dir"):
    """One line for an error found while scanning a data set.

    A `gan_zoo.data.image_folder.DataProblemError` lists every bad file over
    many lines and suggests the library's `on_error='skip'`; a command says
    the first file and its problem, how many more there are, and its own
    options: `--on-error skip`, or `--data-dir <parent>` for a folder one
    level too deep.

    Args:
        error: the exception.
        skip_option: how the command leaves bad files out.
        dir_option: the command's data folder option.
    """
    parent = getattr(error, "parent_hint", None)
    problems = getattr(error, "problems", ())
    if parent:
        first = message(error).splitlines()[0]
        return first.replace(f"scan its parent {parent}", f"pass its parent, {dir_option} {parent}")
    if problems:
        path, reason = problems[0]
        more = len(problems) - 1
        where = getattr(error, "where", None)
        line = f"{path}: {reason}"
        if more:
            line += f" (and {more} more problem file{'s' if more > 1 else ''}"
            line += f" in {where})" if where else ")"
        return f"{line}; pass {skip_option} to leave {'them' if more else 'it'} out."
    lines = [line for line in message(error).splitlines() if line.strip()]
    return lines[0] if lines else message(error)


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


def write_error(error):
    """The full-disk or not-writable OSError behind `error`, or None.

    Looks at `error` and the exceptions it was raised from or while handling
    (Keras and TensorFlow wrap the OSError of a failed write).

    Args:
        error: a caught exception.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            if error.errno in _WRITE_ERRNOS:
                return error
            if error.errno is None and any(text in str(error) for text in _WRITE_MESSAGES):
                return error
        error = error.__cause__ or error.__context__
    return None


def describe_write_error(error):
    """'No space left on device: <file>' for an error `write_error` returned.

    Args:
        error: an OSError.
    """
    reason = error.strerror
    if not reason or error.errno is None:
        reason = next((text for text in _WRITE_MESSAGES if text in str(error)), str(error))
    return f"{reason}: {error.filename}" if error.filename else reason


def lost_worker(error):
    """Whether `error` is TensorFlow saying a peer of a multi-worker run went away.

    A killed worker leaves the others with an `UnavailableError` ("Socket
    closed", "failed to connect") or an aborted collective op.
    """
    if not type(error).__module__.startswith("tensorflow"):
        return False
    name, text = type(error).__name__, message(error)
    if name == "UnavailableError":
        return True
    return name in ("AbortedError", "CancelledError", "InternalError") and any(
        word in text for word in ("ollective", "Socket closed", "peer", "heartbeat"))


def exit_status(function, *args, prog=PROG, on_write_error=""):
    """Runs `function(*args)` and turns the errors a user can act on into a status.

    Args:
        function: the command; returns its exit status.
        *args: its arguments.
        prog: the program name that starts each error line.
        on_write_error: a sentence added after a full-disk or not-writable
            error, or a callable returning one (e.g. where the run resumes).

    Returns:
        The command's status, or after one line on stderr: `EXIT_USAGE` for
        a `UsageError`, `EXIT_FAILED` for `CommandFailed` and write errors,
        `EXIT_INTERRUPTED` for Ctrl-C.
    """
    try:
        return function(*args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        hint = on_write_error() if callable(on_write_error) else on_write_error
        if lost_worker(error):
            first = (message(error).strip().splitlines() or [type(error).__name__])[0][:160]
            advice = (f"On every worker: {hint[0].lower()}{hint[1:]}" if hint else
                      "Rerun the same command on every worker to resume from the last checkpoint.")
            print(f"{prog}: error: a worker of the cluster was lost ({type(error).__name__}: {first}). "
                  f"{advice}", file=sys.stderr)
            return EXIT_FAILED
        cause = write_error(error)
        if cause is None:
            raise
        line = f"{prog}: error: {describe_write_error(cause)}."
        print(f"{line} {hint}".rstrip(), file=sys.stderr)
        return EXIT_FAILED
