"""Argument types and `--set KEY=VALUE` parsing shared by the commands.

`positive_int` and the `--set` parsers are also used by
`benchmarks/throughput.py`, so that its options read as `gan-zoo`'s do.
"""

import argparse
import ast

from gan_zoo.cli.errors import UsageError

_KEYWORD_VALUES = {"true": True, "false": False, "none": None}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except the uninformative ones (None, False, empty)."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help
        return super()._get_help_string(action)


def positive_int(text):
    """argparse type of a positive integer (also used by benchmarks/throughput.py).

    Args:
        text: the command-line text.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def parse_value(text):
    """A `--set` value: a Python literal when it parses as one, else the string.

    `true`, `false` and `none` (any case) are accepted for True, False, None,
    so that `--set synchronized_batch_norm=false` does not become the
    (truthy) string "false".

    Args:
        text: the text after `KEY=`.
    """
    text = text.strip()
    if text.lower() in _KEYWORD_VALUES:
        return _KEYWORD_VALUES[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_overrides(pairs):
    """{key: value} from `--set KEY=VALUE` strings; the last of a key wins.

    Args:
        pairs: the `--set` strings (or None).

    Raises:
        UsageError: a string is not `KEY=VALUE` with an identifier as KEY.
    """
    overrides = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(
                f"--set {pair!r} is not KEY=VALUE (for example --set image_size=50)."
            )
        overrides[key] = parse_value(text)
    return overrides
