"""Checks of model config values, each failing with one line naming the option.

Every zoo model checks its constructor arguments with these helpers before
it builds a layer, so that `gan_zoo.load("semi_cgan", width=0)`,
`--set image_size=big` or `num_classes=-1` fail at once with the option's
name, its valid range and the value given, instead of training a 1-filter
network or dying deep inside Keras. Each helper returns the value converted
to the type the model stores (`int`, `float`, `bool`, a tuple), so the
model keeps what it checked:

    self.latent_dim = positive_int("latent_dim", latent_dim)
    self.dropout = number_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
    self.variant = one_of("variant", variant, VARIANTS)

Integers must be integers (bool and floats such as 50.0 are refused, so a
typo never passes silently); numbers must be finite real numbers.
`ConfigError` is both a `ValueError` and a `TypeError`, so callers catching
either (the CLI turns a `ValueError` raised inside gan_zoo into one line)
see it.

Kept free of TensorFlow and Keras imports.
"""

import math
import numbers

__all__ = [
    "ConfigError",
    "boolean",
    "integer_in_range",
    "non_negative_int",
    "non_negative_number",
    "number_in_range",
    "one_of",
    "optional",
    "positive_int",
    "positive_number",
    "seed",
    "sequence_of",
]

MAX_SEED = 2**32 - 1  # NumPy's (and so Keras') seeds are unsigned 32-bit


class ConfigError(ValueError, TypeError):
    """An invalid config value; the message names the option and its range."""


def _fail(name, requirement, value):
    raise ConfigError(f"{name} must be {requirement}; got {value!r}.")


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer_in_range(name, value, low=None, high=None):
    """`value` as an int, checked to lie in [low, high] (None: unbounded).

    Args:
        name: the option's name, as the user writes it.
        value: the value given.
        low: smallest valid value, or None.
        high: largest valid value, or None.
    """
    if low is not None and high is not None:
        requirement = f"an integer from {low} to {high}"
    elif low is not None:
        requirement = f"an integer >= {low}"
    elif high is not None:
        requirement = f"an integer <= {high}"
    else:
        requirement = "an integer"
    if not _is_integer(value):
        _fail(name, requirement, value)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(name, requirement, value)
    return value


def positive_int(name, value):
    """`value` as an int >= 1."""
    return integer_in_range(name, value, low=1)


def non_negative_int(name, value):
    """`value` as an int >= 0."""
    return integer_in_range(name, value, low=0)


def seed(name, value):
    """`value` as a seed: an int from 0 to 2**32 - 1."""
    return integer_in_range(name, value, low=0, high=MAX_SEED)


def number_in_range(name, value, low=None, high=None, *, low_inclusive=True, high_inclusive=True):
    """`value` as a finite float in the given interval (None: unbounded).

    Args:
        name: the option's name.
        value: the value given.
        low: lower bound, or None.
        high: upper bound, or None.
        low_inclusive: whether `low` itself is valid.
        high_inclusive: whether `high` itself is valid.
    """
    if low is not None and high is not None:
        requirement = (
            f"a number in {'[' if low_inclusive else '('}{low:g}, {high:g}"
            f"{']' if high_inclusive else ')'}"
        )
    elif low is not None:
        requirement = f"a number {'>=' if low_inclusive else '>'} {low:g}"
    elif high is not None:
        requirement = f"a number {'<=' if high_inclusive else '<'} {high:g}"
    else:
        requirement = "a finite number"
    if not _is_number(value) or not math.isfinite(float(value)):
        _fail(name, requirement, value)
    number = float(value)
    if low is not None and (number < low or (number == low and not low_inclusive)):
        _fail(name, requirement, value)
    if high is not None and (number > high or (number == high and not high_inclusive)):
        _fail(name, requirement, value)
    return number


def positive_number(name, value):
    """`value` as a finite float > 0."""
    return number_in_range(name, value, low=0.0, low_inclusive=False)


def non_negative_number(name, value):
    """`value` as a finite float >= 0."""
    return number_in_range(name, value, low=0.0)


def one_of(name, value, choices):
    """`value`, which must be one of `choices` (compared with ==, types kept)."""
    choices = tuple(choices)
    if not any(value == c and type(value) is type(c) for c in choices):
        _fail(name, f"one of {', '.join(repr(c) for c in choices)}", value)
    return value


def boolean(name, value):
    """`value` as a bool; only True / False (numpy bools too) are accepted.

    A string such as "false" is refused: it would be truthy.
    """
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if isinstance(value, bool) or numpy_bool:
        return bool(value)
    _fail(name, "True or False", value)


def optional(check, name, value, *args, **kwargs):
    """None, or `check(name, value, *args, **kwargs)`.

    Example: `optional(number_in_range, "real_label", real_label, 0, 1)`.
    """
    if value is None:
        return None
    try:
        return check(name, value, *args, **kwargs)
    except ConfigError as error:
        text = str(error)
        raise ConfigError(text.replace(" must be ", " must be None or ", 1)) from None


def sequence_of(check, name, value, *args, length=None, **kwargs):
    """A tuple whose items each pass `check(f"{name}[i]", item, ...)`.

    Args:
        check: the item check, e.g. `positive_int`.
        name: the option's name.
        value: a list or tuple (a string is refused).
        *args: more arguments of `check`.
        length: the required number of items, or None.
        **kwargs: keyword arguments of `check`.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        what = "a sequence" if length is None else f"a sequence of {length} values"
        _fail(name, what, value)
    if length is not None and len(value) != length:
        _fail(name, f"a sequence of {length} values", value)
    return tuple(check(f"{name}[{i}]", item, *args, **kwargs) for i, item in enumerate(value))
