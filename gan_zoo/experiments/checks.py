"""Checks of a split's data, made before any model trains.

A run that would fail at scoring (a test set of one class) or train on
less than one batch is refused at its start, in one line that says which
patients lack what, so that no hour of training is lost to it.
"""

from gan_zoo.errors import UsageError


def require_both_classes(parts, where, hint, class_names=("0", "1")):
    """Refuses parts whose labels lack class 0 or 1.

    Args:
        parts: `{description: labels}`, e.g. `{"labelled training": [...]}`.
        where: the split's name for the message (e.g. "fold2"; "split" for
            the only one).
        hint: what the user can change, ending the message.
        class_names: the classes' names for the message.
    """
    for description, labels in parts.items():
        missing = sorted({0, 1} - {int(label) for label in labels})
        if missing:
            raise UsageError(
                f"The {description} patients{_of(where)} have no images of class {missing[0]} "
                f"({class_names[missing[0]]}): training and scoring need both classes in every "
                f"part ({hint})."
            )


def require_full_batches(needs, where):
    """Refuses a model whose training images do not fill one batch.

    Args:
        needs: `{who: (batch size, training images)}`.
        where: the split's name for the message.
    """
    for who, (batch, count) in needs.items():
        if count < batch:
            raise UsageError(f"{who} trains with batch size {batch} but the training patients"
                             f"{_of(where)} have {count} images: not one full batch.")


def _of(where):
    return "" if where == "split" else f" of {where}"
