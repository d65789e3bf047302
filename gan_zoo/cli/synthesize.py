"""`gan-zoo synthesize`: a synthetic dataset from a trained model, in a loader's layout."""

import pathlib
import sys
import textwrap
import time

from gan_zoo.arguments import HelpFormatter, positive_int, seed
from gan_zoo.errors import EXIT_INTERRUPTED, PROG, UsageError

LAYOUT_CHOICES = ("idc", "cbis_ddsm", "tiles", "hdf5")  # gan_zoo.synthesis.LAYOUTS, without importing it


def add_parser(commands):
    """Adds `synthesize` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "synthesize", help="write a synthetic dataset that the project's loaders read",
        description=textwrap.dedent("""\
            Writes a synthetic dataset from a trained model into OUT, in batches
            (memory holds one), with manifest.json (model id and weights sha256,
            the seed, label and sources of every image, gan_zoo version):

              IDC generators (dcgan, semi_cgan): the Kaggle IDC layout under
                OUT/IDC_regular_ps50_idx5/<patient>/<0|1>/, one synthetic patient;
              ciGAN: lesions painted into lesion-free patches of --masks (a
                CBIS-DDSM folder), written in the CBIS-DDSM PNG layout with masks;
              PathologyGAN: PNG tiles, or OUT/synthetic.h5 (--layout hdf5);
              CycleGAN: --translate FROM_DIR (IDC layout) --direction a_to_b|b_to_a.

            Rerunning the same command continues an interrupted run and gives the
            same files; other arguments for the same OUT are refused, and so is a
            folder that holds anything but an earlier synthesis (a data folder).
            Image i's seed is SeedSequence([--seed, i]): any image can be made
            again alone (gan_zoo.synthesis.regenerate)."""),
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="RUN_OR_MODEL",
                   help="a run folder (holding one .keras model) or a .keras file")
    p.add_argument("--out", required=True, type=pathlib.Path, metavar="DIR",
                   help="output folder: new, empty, or an earlier synthesis to continue")
    p.add_argument("--n", type=positive_int, default=None,
                   help="number of images (default: the sum of --labels; with --translate, "
                   "every patch of the source class)")
    p.add_argument("--labels", default=None, metavar="L:COUNT,...",
                   help="images per class, written in this order, e.g. 0:500,1:500 (conditional "
                   "generators: default equal shares; an unconditional IDC generator: its one "
                   "class, e.g. 1:1000; ciGAN: class of the painted lesion, 1 malignant)")
    p.add_argument("--masks", default=None, type=pathlib.Path, metavar="FROM_DIR",
                   help="ciGAN: a CBIS-DDSM folder whose lesion masks and lesion-free tissue it uses")
    p.add_argument("--translate", default=None, type=pathlib.Path, metavar="FROM_DIR",
                   help="CycleGAN: an IDC-layout folder whose patches of one class are translated")
    p.add_argument("--direction", choices=("a_to_b", "b_to_a"), default=None,
                   help="CycleGAN: a_to_b translates class 0 (no IDC) into 1, b_to_a the reverse")
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default=None,
                   help="output layout (default: cbis_ddsm for ciGAN, idc for 50x50 RGB "
                   "generators and CycleGAN, else tiles)")
    p.add_argument("--seed", type=seed, default=0,
                   help="synthesis seed: image i's seed is derived from it and i")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="images generated and written per batch")
    p.add_argument("--patient-id", default="synthetic",
                   help="IDC layout: the patient id of generated patches (letters and digits)")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Checks everything, then writes the dataset; prints where it went.

    Args:
        args: the parsed `synthesize` options.
    """
    from gan_zoo.synthesis import SynthesisError, prepare

    try:
        job = prepare(
            str(args.model), out=args.out, n=args.n, labels=args.labels, seed=args.seed,
            batch_size=args.batch_size, masks=args.masks, translate=args.translate,
            direction=args.direction, layout=args.layout, patient_id=args.patient_id,
        )
    except SynthesisError as error:
        raise UsageError(str(error)) from None
    if job.existing is not None and job.existing.get("status") == "complete":
        print(f"{args.out} already holds this synthesis ({job.count} images): nothing to do.")
        return 0
    action = "Continuing" if job.existing is not None else "Writing"
    print(f"{action} {job.count} images of {job.source.name} ({job.source.weights_sha256[:12]}) into "
          f"{args.out} ({job.layout.name} layout), batches of {job.batch_size}.")
    started = time.perf_counter()
    try:
        result = job.run(progress=True)
    except SynthesisError as error:  # another process writing into the same folder
        raise UsageError(str(error)) from None
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; rerun the same command to continue where it stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    resumed = f" ({result.resumed_from} were already there)" if result.resumed_from else ""
    print(f"Wrote {result.generated} images in {seconds:.1f} s{resumed}; {result.count} in {result.out}.")
    print(f"  manifest: {result.manifest}")
    return 0
