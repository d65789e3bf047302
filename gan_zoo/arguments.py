"""Argument types and `--set KEY=VALUE` parsing shared by the commands.

The types reject a bad number while the command line is parsed, before any
data or model is loaded; the recipes (`gan_zoo.experiments.recipe_parser`) and
`benchmarks/throughput.py` use them too, so that their options read as
`gan-zoo`'s do.
"""

import argparse
import ast
import math

from gan_zoo.errors import UsageError

_KEYWORD_VALUES = {"true": True, "false": False, "none": None}
# NumPy's (and so Keras') seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except the uninformative ones (None, False, empty)."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help
        return super()._get_help_string(action)


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text):
    """argparse type of a positive integer (also used by benchmarks/throughput.py).

    Args:
        text: the command-line text.
    """
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def non_negative_int(text):
    """argparse type of an integer >= 0 (e.g. "every N epochs, 0 for never").

    Args:
        text: the command-line text.
    """
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def seed(text):
    """argparse type of a random seed: an integer in 0..2**32 - 1.

    Keras' `set_random_seed` (through NumPy) rejects anything else, but only
    after the data and the model are loaded.

    Args:
        text: the command-line text.
    """
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is not a seed in 0..{MAX_SEED}")
    return value


def positive_float(text):
    """argparse type of a finite number > 0 (a width multiplier, for example).

    Args:
        text: the command-line text.
    """
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a positive number")
    return value


def fraction(text):
    """argparse type of a share in (0, 1] (0 would leave nothing to use).

    Args:
        text: the command-line text.
    """
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not in (0, 1]")
    return value


def probability(text):
    """argparse type of a probability in [0, 1] (0 and 1 allowed).

    Args:
        text: the command-line text.
    """
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not in [0, 1]")
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
