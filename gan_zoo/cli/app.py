"""The `gan-zoo` parser and `main`: one sub-command per module of this package."""

import argparse
import textwrap

import gan_zoo
from gan_zoo.cli import export, list_models, publish, rethreshold, sample, score, synthesize, train
from gan_zoo.arguments import HelpFormatter
from gan_zoo.errors import EXIT_USAGE, PROG, exit_status

# The sub-commands in the order `gan-zoo --help` lists them.
COMMANDS = (list_models, train, sample, score, export, synthesize, publish, rethreshold)


def build_parser():
    """The `gan-zoo` argument parser (every option has a help text)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, train, sample from and export the GANs of gan_zoo "
        "(breast-cancer imaging, Keras 3 / TensorFlow).",
        epilog=textwrap.dedent("""\
            examples:
              gan-zoo list --verbose
              gan-zoo train dcgan --epochs 5                  # on the demo data
              gan-zoo train dcgan --data-dir data/idc --layout idc --set variant=v3 --conditional
              gan-zoo sample runs/dcgan/dcgan.keras --n 16 --out samples.png
              gan-zoo score runs/dcgan --reference data/val --extractor keras \
                  --extractor-model runs/cnn/small_cnn.keras --extractor-layer gap --n 2000
              gan-zoo export runs/dcgan/dcgan.keras exported/dcgan
              gan-zoo publish runs/dcgan --out presets/dcgan-demo --archive
              gan-zoo synthesize runs/dcgan --n 1000 --labels 0:500,1:500 --out synthetic/idc
              gan-zoo rethreshold runs/semi_cgan_idc --operating-point youden
            user errors exit with status 2 and one line on stderr."""),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {gan_zoo.__version__}",
        help="print the gan_zoo version and exit",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True,
        title="commands", help="run `gan-zoo COMMAND --help` for its options",
    )
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _parse_args(parser, argv):
    args, extras = parser.parse_known_args(argv)
    if extras and args.command == "export":
        extras = export.fix_positionals(args, extras)
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv=None) -> int:
    """Runs `gan-zoo` with `argv` (default: sys.argv[1:]); returns the exit status.

    Args:
        argv: the arguments after the program name.
    """
    parser = build_parser()
    try:
        args = _parse_args(parser, argv)
    except SystemExit as exit_:  # --help, --version, or an argparse usage error
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return exit_status(args.handler, args)

