"""`gan-zoo publish`: a finished run as a preset folder with a model card."""

import pathlib
import textwrap

from gan_zoo.arguments import HelpFormatter
from gan_zoo.errors import UsageError, message


def add_parser(commands):
    """Adds `publish` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "publish", help="write a finished run as a preset folder with a model card",
        description=textwrap.dedent("""\
            Writes a finished run folder (gan-zoo train, a recipe) as a self-contained
            preset folder: config.json, model.weights.h5, the last sample grid,
            README.md (a model card: model and paper, options, training data, budget,
            the metrics the run recorded with their protocol, intended use and limits,
            how to load it) and metadata.json (model id, gan_zoo version, SHA-256 of
            every file, provenance). gan_zoo.load(PRESET_DIR) checks every file's
            SHA-256 before loading. A non-empty PRESET_DIR is refused unless it holds
            a preset of the same run, which is replaced."""),
        formatter_class=HelpFormatter,
    )
    p.add_argument("run", metavar="RUN", type=pathlib.Path, help="the finished run folder")
    p.add_argument("--out", required=True, type=pathlib.Path, metavar="PRESET_DIR",
                   help="the preset folder to write (new, empty, or a preset of this run)")
    p.add_argument("--model-file", default=None, metavar="FILE.keras",
                   help="the run's model file to publish (default: <model>.keras of the model "
                   "the run names, else its only .keras file)")
    p.add_argument("--data-licence", default=None, metavar="TEXT",
                   help="the training data's licence, written into the card (runs do not record "
                   "it; gan_zoo's demo data is recognised by itself)")
    p.add_argument("--hardware", default=None, metavar="TEXT",
                   help="the training hardware, when the run did not record it (the card says "
                   "the publisher stated it)")
    p.add_argument("--scores", action="append", default=[], type=pathlib.Path, metavar="FILE.json",
                   help="a `gan-zoo score --json` file of this model's FID/KID/... to add to the "
                   "card with its protocol; repeatable")
    p.add_argument("--archive", action="store_true",
                   help="also write PRESET_DIR.tar.gz (reproducible) and print its SHA-256, for "
                   "gan_zoo.load(NAME, weights=URL, weights_sha256=...)")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Publishes the run and prints what was written and how to load it.

    Args:
        args: the parsed `publish` options.
    """
    from gan_zoo import presets

    try:
        published = presets.publish(
            args.run, args.out, model_file=args.model_file, data_licence=args.data_licence,
            hardware=args.hardware, scores=args.scores, archive=args.archive,
        )
    except presets.PresetError as error:
        raise UsageError(message(error)) from None
    metadata = published.metadata
    name = metadata["model"]["registry_name"]
    print(f"Published {metadata['model_id']} from {metadata['source_run']['folder']} "
          f"into {published.folder}:")
    for file, info in metadata["files"].items():
        print(f"  {file:<18} {info['bytes']:>10,} bytes  sha256 {info['sha256']}")
    print(f"  {presets.METADATA_FILE}")
    recorded = ", ".join(entry["name"] for entry in metadata["metrics"]) or "none"
    print(f"Metrics in the card: {recorded}.")
    print(f"Load it: gan_zoo.load({str(published.folder)!r})")
    if published.archive is not None:
        print(f"Archive: {published.archive} (sha256 {published.archive_sha256})")
        print(f"  gan_zoo.load({name!r}, weights='<URL of {published.archive.name}>', "
              f"weights_sha256={published.archive_sha256!r})")
    return 0
