"""`gan-zoo`: list, train, sample from and export the zoo's models.

    gan-zoo list --verbose
    gan-zoo train dcgan --data-dir data/idc --layout idc --set variant=v3 --conditional
    gan-zoo sample runs/dcgan/dcgan.keras --n 16 --out samples.png
    gan-zoo export runs/dcgan/dcgan.keras exported/dcgan

One module per command (`list_models`, `train`, `sample`, `export`);
`arguments` holds the argument types and `--set` parsing, `errors` the
exit statuses and one-line error reporting, `loading` the registry and
checkpoint access the commands share, `app` the parser and `main`.

User errors (a missing file, an unknown model or option, a malformed
`--set`, an empty data folder) print one line to stderr and exit with
status 2. TensorFlow is imported only by the subcommands that need it, so
`gan-zoo --help` answers at once.
"""

from gan_zoo.arguments import parse_overrides, parse_value, positive_int
from gan_zoo.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, PROG, UsageError


# `app` imports every command (and through them the training layer):
# loaded on first use, `import gan_zoo.cli` stays light.
def main(argv=None):
    from gan_zoo.cli.app import main as run

    return run(argv)


def build_parser():
    from gan_zoo.cli.app import build_parser as build

    return build()

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "PROG",
    "UsageError",
    "build_parser",
    "main",
    "parse_overrides",
    "parse_value",
    "positive_int",
]
