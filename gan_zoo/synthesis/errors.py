"""The error a synthesis raises for a request it cannot honour."""


class SynthesisError(ValueError):
    """A problem with what was asked (an argument, the model, a folder): one line.

    `gan-zoo synthesize` prints it as a usage error (exit status 2); every
    check that can raise it runs before the first image is generated.
    """
