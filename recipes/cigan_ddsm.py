"""Reproduce ciGAN's Table 1 (Wu et al. 2018) on CBIS-DDSM mammogram patches.

1. Patches, split by patient: lesion patches (the lesion inside) and
   lesion-free patches with more than 75% breast tissue, masks with them
   (`gan_zoo.data.mammography.lesion_patches`); label 1 = malignant lesion.
2. The feature network of ciGAN's feature loss: VGG-19 with ImageNet weights
   when they can be loaded (download or --feature-network FILE), else (with
   --feature-network auto, said loudly) the documented domain substitute: a
   VGG-style lesion-vs-normal classifier trained on the TRAINING patients.
3. ciGAN on the training patients only: pre-training of G on the feature
   loss, then the loss-triggered alternation (`gan_zoo.models.cigan`).
4. ResNet-50 three ways: no augmentation; traditional augmentation (rotation
   30 degrees, horizontal flip, scale 0.75-1.25); ciGAN + traditional (each
   non-malignant training patch gets a malignant lesion painted with the
   mask of another malignant lesion, each malignant patch has its lesion
   removed; batches start 50% real, +20 points every --curriculum-every
   steps, up to 90%). The checkpoint with the best validation-patient AUROC
   is kept (checked every --eval-every steps).
5. Test patients, scored once: the paper's Table 1 (AUROC with DeLong 95%
   CI; accuracy and the other rates at `--operating-point`, default Youden's
   J on the validation patients) with paired DeLong p-values between the rows, and grids in the
   layout of the paper's Fig. 1 (original, input, synthetic of the
   opposite class) of test patches.

Splits (always by patient): random 80/10/10 (the paper's; --fractions),
`--split official` (CBIS-DDSM's own train/test by image name; validation
patients carved from the training side), or `--test-dir` (another folder of
the same layout as the test set).

Without --data-dir it runs on the procedural demo mammograms in a few
minutes (smaller defaults for every step count, printed). Step counts
default to the paper's on real data (10,000 pre-training + 100,000 GAN
iterations, 10,000 classifier iterations): size them to your machine.

    python recipes/cigan_ddsm.py
    python recipes/cigan_ddsm.py --data-dir ../shared/data/cbis_ddsm_mass --patch-size 64 \\
        --pretrain-steps 300 --gan-steps 1500 --classifier-steps 600
"""

import hashlib
import json
import math
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import gan_zoo
from gan_zoo import metrics as clinical
from gan_zoo.arguments import non_negative_int, positive_float, positive_int, seed
from gan_zoo.errors import UsageError, data_problem_line
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.mammography import official_split, scan_cbis_ddsm
from gan_zoo.data.mammography.lesion_patches import augmentation_masks, borrowed_masks, sample_patches
from gan_zoo.data.streams import StreamSource, mixed_batches, training_streams
from gan_zoo.models import feature_networks
from gan_zoo.models.cigan import CLASS_NAMES
from gan_zoo.images import save_image_grid
from gan_zoo.training.checkpoint import TrainingCheckpoint
from gan_zoo.training.curriculum import Curriculum
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.domain_classifier import train_domain_classifier
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import PatientSplitter, recipe_main, recipe_parser, start_run
from gan_zoo.experiments.evaluation import add_operating_point_option, score_split

NAME = "cigan_ddsm"
REGIMES = {  # row of Table 1 -> (traditional augmentation, ciGAN data)
    "Baseline (no augmentation)": (False, False),
    "Traditional augmentation": (True, False),
    "ciGAN + Traditional aug": (True, True),
}
# Paper values on real data; small ones for the demo (a few minutes on a CPU).
STEP_DEFAULTS = {
    "pretrain_steps": (10000, 20), "gan_steps": (100000, 80), "classifier_steps": (10000, 40),
    "eval_every": (1000, 20), "curriculum_every": (1000, 10), "domain_steps": (1500, 60),
}
TABLE_KEYS = ("auroc", "auroc_ci_low", "auroc_ci_high", "n", "n_positive")
DEMO_FRACTIONS = "0.5,0.25,0.25"  # 16 demo patients: enough test patients of both classes


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=8)
    add_operating_point_option(parser, "youden")
    parser.add_argument("--split", choices=("random", "official"), default="random",
                        help="patient split (see the description)")
    parser.add_argument("--fractions", default=None,
                        help="train,validation,test patient fractions of the random split "
                             "(default 0.8,0.1,0.1; demo 0.5,0.25,0.25)")
    parser.add_argument("--split-seed", type=seed, default=0, help="seed of the patient split")
    parser.add_argument("--test-dir", type=pathlib.Path, default=None,
                        help="a folder of the same layout holding the test patients")
    parser.add_argument("--patch-size", type=positive_int, default=64,
                        help="patch side (256 at full resolution as in the paper; 64 or 128 "
                             "for 256x256 whole images)")
    parser.add_argument("--target-height", type=positive_int, default=None,
                        help="resize mammograms to this height first (the paper: 1375)")
    parser.add_argument("--normal-per-image", type=non_negative_int, default=None,
                        help="lesion-free patches per image (default 1; demo 2)")
    parser.add_argument("--feature-network", default="auto",
                        help="ciGAN's feature loss: auto (ImageNet VGG-19, else the domain "
                             "substitute, said loudly), imagenet, domain, random (not for "
                             "results), or a .h5 VGG-19 / .keras domain network file")
    parser.add_argument("--backbone-weights", default="auto",
                        help="ResNet-50 init: auto (ImageNet, else random, said loudly), "
                             "imagenet, none, or a no-top weights file")
    for option, (paper, demo) in STEP_DEFAULTS.items():
        parser.add_argument(f"--{option.replace('_', '-')}", type=non_negative_int, default=None,
                            help=f"default {paper} (demo {demo})")
    parser.add_argument("--switch-threshold", type=positive_float, default=0.3,
                        help="ciGAN's alternation threshold")
    parser.add_argument("--max-phase-steps", type=positive_int, default=None,
                        help="cap on the steps of one ciGAN d or g phase (not in the paper)")
    parser.add_argument("--classifier-batch-size", type=positive_int, default=32)
    parser.add_argument("--classifier-lr", type=positive_float, default=1e-5,
                        help="ResNet-50 Adam learning rate (the paper's 1e-5 fine-tunes "
                             "ImageNet weights)")
    parser.add_argument("--gan-only", action="store_true",
                        help="train ciGAN and save its grids; no classifiers (e.g. for the notebook)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    demo = args.data_dir is None
    for option, (paper, small) in STEP_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, small if demo else paper)
    if args.normal_per_image is None:
        args.normal_per_image = 2 if demo else 1
    args.fractions = args.fractions or (DEMO_FRACTIONS if demo else "0.8,0.1,0.1")
    try:
        values = [float(v) for v in args.fractions.split(",")]
        if len(values) != 3 or min(values) <= 0 or abs(sum(values) - 1) > 1e-6:
            raise ValueError
    except ValueError:
        parser.error(f"--fractions must be three positive numbers summing to 1, got {args.fractions!r}")
    if args.classifier_steps < 1 or args.eval_every < 1:
        parser.error("--classifier-steps and --eval-every must be at least 1")
    if args.split == "official" and args.test_dir is not None:
        parser.error("--split official and --test-dir both choose the test set; give one")
    for folder in (args.data_dir, args.test_dir):
        if folder is not None and not folder.is_dir():
            parser.error(f"folder not found: {folder}")
    return args


# ------------------------------------------------------------------- data
def patient_split(args):
    """{"train", "validation", "test"} -> MammogramRecords, and how."""
    records = scan_cbis_ddsm(args.data_dir or demo_dir("mammography"))
    train, validation, test = (float(v) for v in args.fractions.split(","))
    splitter = PatientSplitter(patient=lambda r: r.patient_id, seed=args.split_seed,
                               label=lambda r: -1 if r.label is None else r.label,
                               validation_share=validation / (train + validation))
    if args.test_dir is not None:
        split = splitter.held_out(records, scan_cbis_ddsm(args.test_dir), note=f"--test-dir {args.test_dir}")
    elif args.split == "official":
        sides = official_split(records, drop_overlap=True)
        split = splitter.fixed(sides["train"] + sides["test"],
                               {"train": {r.patient_id for r in sides["train"]},
                                "test": {r.patient_id for r in sides["test"]}},
                               "CBIS-DDSM official split")
    else:
        split = splitter.random(records, {"train": train, "validation": validation, "test": test})
    return split.parts, split.note


def _uint8_source(images, labels, what):
    pixels = np.asarray(images, np.uint8)[..., None]
    dataset = tf.data.Dataset.from_tensor_slices({"image": pixels, "label": np.asarray(labels, np.int32)})
    return StreamSource(dataset, image_size=pixels.shape[1], channels=1, value_range=(0.0, 1.0),
                        cache="memory", labels=True, what=what)


def gan_source(patches, masks, batch_size, seed):
    """(start_epoch, epochs) -> aligned stream of {"images", "masks"} with labels."""
    images = _uint8_source(patches.images, patches.labels, "ciGAN patches")
    mask_pixels = _uint8_source(masks * 255, patches.labels, "ciGAN masks")  # {0, 255} -> {0, 1}

    def make(start_epoch, epochs):
        return training_streams({"images": images, "masks": mask_pixels}, batch_size=batch_size,
                                seed=seed, start_epoch=start_epoch, epochs=epochs, pairing="aligned")

    return make


# ------------------------------------------------------- feature network
def feature_network(args, run, patches):
    """The `feature_weights` value for ciGAN and what it is.

    The domain substitute is trained once per run folder: a resumed run
    reuses `feature_network.keras` (its sha256 recorded), so the GAN goes on
    with the feature loss it started with.
    """
    choice = args.feature_network
    if choice in ("auto", "imagenet"):
        try:
            return "imagenet", feature_networks.load_feature_network("imagenet")[1]
        except RuntimeError as error:
            if choice == "imagenet":
                raise
            print(f"\n*** {error}\n*** --feature-network auto: using the DOMAIN SUBSTITUTE (a VGG-style "
                  "lesion-vs-normal classifier trained on the training patients), not ImageNet VGG-19.\n")
    if choice in ("auto", "domain"):
        path, record = run.path("feature_network.keras"), run.path("feature_network.json")
        if path.exists() and record.exists():  # trained before an interruption
            info = json.loads(record.read_text())
            if hashlib.sha256(path.read_bytes()).hexdigest() != info.get("sha256"):
                raise UsageError(f"{path} is not the feature network this run trained (its sha256 "
                                 "changed): start a new run folder.")
            print(f"Feature network: {path} (trained earlier in this run)")
            return str(path), info
        train, validation = patches["train"], patches["validation"]
        classifier, report = train_domain_classifier(
            train.images, train.has_lesion.astype(np.int32), seed=args.seed,
            validation=(validation.images, validation.has_lesion.astype(np.int32)),
            steps=args.domain_steps,
        )
        classifier.save(path)
        info = {**feature_networks.load_feature_network(str(path))[1], **report}
        run.write_json("feature_network.json", info)
        return str(path), info
    if choice == "random":
        print("\n*** --feature-network random: the feature loss uses RANDOM VGG-19 weights; "
              "this is not a result.\n")
    return choice, feature_networks.load_feature_network(choice)[1]


# --------------------------------------------------------------- ciGAN
def train_cigan(args, run, patches, feature_weights):
    train = patches["train"]
    masks = borrowed_masks(train, seed=args.seed)  # lesion-free patches borrow a lesion's mask
    strategy = get_strategy(args.strategy)
    with strategy.scope():
        gan = gan_zoo.load("cigan", patch_size=args.patch_size, feature_weights=feature_weights,
                           pretrain_steps=args.pretrain_steps, train_steps=max(1, args.gan_steps),
                           switch_threshold=args.switch_threshold, max_phase_steps=args.max_phase_steps,
                           seed=args.seed)
        gan.compile(jit_compile=args.jit)
    source = gan_source(train, masks, args.batch_size, args.seed)
    steps_per_epoch = source(0, 1).steps_per_epoch
    epochs = args.epochs or gan.paper_epochs(steps_per_epoch)
    validation = patches["validation"]
    fixed = np.arange(min(8, len(validation)))
    sample = (validation.unit_images()[fixed], borrowed_masks(validation, args.seed)[fixed],
              validation.labels[fixed])
    logs = train_gan(gan, source, run, epochs=epochs, batch_size=args.batch_size, seed=args.seed,
                     sample_inputs=sample, sample_upscale=2)
    gan.save(run.path("cigan.keras"))
    gan.save_weights(run.path("cigan.weights.h5"))
    config = {k: v for k, v in gan.get_config().items() if k != "name"}
    run.write_json("cigan_config.json", config)
    return gan, {"epochs": epochs, "steps": epochs * steps_per_epoch, "steps_per_epoch": steps_per_epoch,
                 "final_phase": gan.current_phase().name, "last_epoch": logs[-1] if logs else {}}


def synthesize(gan, patches, seed):
    """ciGAN's augmentation set of `patches`: (uint8 images, labels)."""
    masks, targets = augmentation_masks(patches, seed=seed)
    images = gan.infill(patches.unit_images(), masks.astype(np.float32), targets, seed=seed)
    return np.round(images[..., 0] * 255).astype(np.uint8), targets


def save_figure1(gan, patches, path, seed, per_class=4):
    """Fig. 1 rows of test patches: malignant -> non-malignant, then the reverse."""
    masks, targets = augmentation_masks(patches, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for label in (1, 0):
        index = np.flatnonzero(patches.labels == label)
        rows.extend(rng.choice(index, size=min(per_class, index.size), replace=False).tolist())
    rows = np.asarray(rows, int)
    grid, count = gan.figure_rows(patches.unit_images()[rows], masks[rows], 1 - targets[rows], seed=seed)
    save_image_grid(path, np.repeat(np.repeat(grid, 2, axis=1), 2, axis=2), count)
    return path


# ---------------------------------------------------------- classifiers
class BestOnValidation(keras.callbacks.Callback):
    """After every chunk of steps: validation AUROC; keeps the best weights (in a file)."""

    def __init__(self, images, labels, path):
        super().__init__()
        self.images, self.labels, self.path = images, labels, pathlib.Path(path)
        state = self.path.with_suffix(".json")
        self.best = json.loads(state.read_text()) if state.exists() else {"auroc": -1.0, "step": 0}

    def on_epoch_end(self, epoch, logs=None):
        scores = self.model.predict(self.images, batch_size=64, verbose=0)[:, 1]
        auroc = clinical.binary_metrics(self.labels, scores)["auroc"]
        logs = logs if logs is not None else {}
        logs["validation_auroc"] = auroc
        if np.isfinite(auroc) and auroc > self.best["auroc"]:
            step = int(self.model.optimizer.iterations.numpy())
            self.model.save_weights(self.path)
            self.best = {"auroc": float(auroc), "step": step}
            self.path.with_suffix(".json").write_text(json.dumps(self.best))


def backbone_weights(args):
    """The ResNet-50 init to use and a note for the results."""
    choice = args.backbone_weights
    if choice in ("auto", "imagenet"):
        try:
            keras.applications.ResNet50(include_top=False, weights="imagenet",
                                        input_shape=(args.patch_size, args.patch_size, 3))
            return "imagenet", "ImageNet (as in the paper)"
        except Exception as error:  # noqa: BLE001 - keras raises a bare Exception offline
            if choice == "imagenet":
                raise RuntimeError(f"--backbone-weights imagenet: {str(error).splitlines()[0]}") from None
            print("\n*** ResNet-50 ImageNet weights unavailable: the classifiers are trained FROM "
                  "SCRATCH (random init), unlike the paper.\n")
    if choice in ("auto", "none"):
        return None, "random init (ImageNet weights unavailable): NOT the paper's setting"
    return choice, f"file {choice}"


def train_classifier(args, run, regime, patches, synthetic, weights):
    augment, use_gan = REGIMES[regime]
    slug = {False: "none", True: "traditional"}[augment] + ("_cigan" if use_gan else "")
    keras.utils.set_random_seed(args.seed)
    model = gan_zoo.load("resnet50_classifier", image_size=args.patch_size, backbone_weights=weights,
                         augment=augment, learning_rate=args.classifier_lr, seed=args.seed)
    model.compile()
    train = patches["train"]
    real = _uint8_source(train.images, train.labels, "real patches")
    if use_gan:
        curriculum = Curriculum(every=args.curriculum_every)
        fake = _uint8_source(*synthetic, "ciGAN patches")
    else:  # every batch real: the second source is never read
        curriculum, fake = (lambda step: 1.0), real
    checkpoint = TrainingCheckpoint(run.path(f"backup-{slug}"))
    start = checkpoint.resume(model)
    chunks = math.ceil(args.classifier_steps / args.eval_every)
    stream = mixed_batches(real, fake, curriculum, batch_size=args.classifier_batch_size, seed=args.seed,
                           start_step=start * args.eval_every, steps=chunks * args.eval_every)
    validation = patches["validation"]
    best = BestOnValidation(validation.unit_images(), validation.labels,
                            run.path(f"best-{slug}.weights.h5"))
    tic = time.perf_counter()
    model.fit(stream.dataset.map(lambda b: (b["images"], b["labels"])), steps_per_epoch=args.eval_every,
              epochs=chunks, initial_epoch=start, callbacks=[best, checkpoint], verbose=2, shuffle=False)
    model.load_weights(best.path)
    return model, {"best_validation_auroc": best.best["auroc"], "best_step": best.best["step"],
                   "steps": chunks * args.eval_every, "seconds": time.perf_counter() - tic,
                   "augmentation": augment, "cigan": use_gan}


# ----------------------------------------------------------------- report
def table_one(results, comparisons):
    """The paper's Table 1 with DeLong CIs and paired p-values between rows."""
    rows = list(results)
    header = ["Data augmentation scheme", "AUROC (95% CI)",
              *[f"p vs {r.split(' (')[0]}" for r in rows[:-1]]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        result = results[row]
        interval = f"{result['auroc_ci_low']:.3f}-{result['auroc_ci_high']:.3f}"
        cells = [row, f"{result['auroc']:.3f} ({interval})"]
        for other in rows[:-1]:
            pair = comparisons.get((row, other))
            cells.append("" if pair is None else f"{pair['p_value']:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired(labels, a, b):
    try:
        return clinical.delong_paired_test(labels, a, b)
    except ValueError as error:  # fewer than 2 test patches of a class
        return {"p_value": float("nan"), "error": str(error)}


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    run = start_run(NAME, args)
    started, seconds = time.perf_counter(), {}

    # Patches of each split's patients; data problems stop here, in one line.
    try:
        split, note = patient_split(args)
        patches = {
            name: sample_patches(records, patch_size=args.patch_size,
                                 normal_per_image=args.normal_per_image,
                                 target_height=args.target_height, seed=args.seed)
            for name, records in split.items()
        }
    except ValueError as error:
        raise UsageError(data_problem_line(error)) from error
    for name, part in patches.items():
        print(f"{name}: {part.summary()}")
        if len(set(part.labels.tolist())) < 2:
            raise UsageError(f"The {name} patients' patches hold one class only; use more data or "
                             "other --fractions.")
    seconds["patches"] = time.perf_counter() - started

    # ciGAN, trained on the training patients only.
    tic = time.perf_counter()
    feature_weights, feature_info = feature_network(args, run, patches)
    description = feature_networks.describe_feature_network(feature_info)
    print(f"ciGAN feature loss: {description}")
    seconds["feature_network"] = time.perf_counter() - tic
    tic = time.perf_counter()
    gan, gan_info = train_cigan(args, run, patches, feature_weights)
    seconds["cigan"] = time.perf_counter() - tic
    synthetic = synthesize(gan, patches["train"], args.seed)
    figure = save_figure1(gan, patches["test"], run.path("figure1_test_patients.png"), args.seed)
    summary = {
        "feature_network": {**feature_info, "description": description},
        "cigan": gan_info,
        "figure1": str(figure),
        "split": note,
        "patches": {name: {"count": len(p), "malignant": int(p.labels.sum()),
                           "lesion": int(p.has_lesion.sum()), **p.stats} for name, p in patches.items()},
        "patients": {name: len(set(p.patients.tolist())) for name, p in patches.items()},
        "synthetic": {"count": len(synthetic[1]), "malignant": int(synthetic[1].sum()),
                      "classes": list(CLASS_NAMES)},
    }
    if args.gan_only:
        seconds["total"] = time.perf_counter() - started
        run.write_metrics({**summary, "seconds": seconds})
        print(f"ciGAN trained ({gan_info['steps']} steps); run folder: {run.directory}")
        return summary

    # ResNet-50 three ways; test patients scored once, at the end.
    weights, weights_note = backbone_weights(args)
    test = patches["test"]
    results, scores, training = {}, {}, {}
    for regime in REGIMES:
        print(f"\n== {regime}")
        model, training[regime] = train_classifier(args, run, regime, patches, synthetic, weights)
        validation = patches["validation"]
        val_scores = model.predict(validation.unit_images(), batch_size=64, verbose=0)[:, 1]
        scores[regime] = model.predict(test.unit_images(), batch_size=64, verbose=0)[:, 1]
        results[regime] = score_split(args.operating_point, {"validation": validation.labels, "test": test.labels},
                                      {"validation": val_scores, "test": scores[regime]})
        seconds[regime] = training[regime]["seconds"]
    rows = list(REGIMES)
    comparisons = {(a, b): _paired(test.labels, scores[a], scores[b])
                   for i, a in enumerate(rows) for b in rows[:i]}
    table = table_one(results, comparisons)
    seconds["total"] = time.perf_counter() - started
    print(f"\nTest patients ({note}); {test.summary()}; {args.operating_point.describe()}\n"
          f"ResNet-50 init: {weights_note}\n"
          f"ciGAN feature loss: {description}\n\n{table}\n")
    (run.directory / "table1.md").write_text(table + "\n")
    run.write_metrics({
        "table1": {r: {k: results[r][k] for k in TABLE_KEYS if k in results[r]} for r in rows},
        "test_metrics": results,
        "delong": {f"{a} vs {b}": c for (a, b), c in comparisons.items()},
        "classifiers": training,
        "classifier_init": weights_note,
        **summary,
        "seconds": seconds,
    })
    print(f"Run folder: {run.directory}")
    return {"table": table, "results": results, "comparisons": comparisons}


if __name__ == "__main__":
    sys.exit(main.command_line())
