"""Feature extractors for KID / FID of H&E tiles (PathologyGAN's scores).

KID and FID measure images in a network's features. Inception-V3's ImageNet
weights cannot be downloaded everywhere, and ImageNet features know little
of tissue, so a domain extractor stands in: the zoo's `small_cnn` trained
as a tumour classifier on H&E patches of training patients, whose pooled
features ("gap") are then the embedding. Its scores are comparable between
runs with the same extractor id, not with the paper's Inception FID. A run
trains it once and reuses it when resumed (`gan_zoo.experiments.train_once`),
so that all its scores are made in the same features.

- `domain_records`: labelled records with patient groups from class
  folders (e.g. BreaKHis benign / malignant) or the IDC layout.
- `default_extractor_data`: where the domain extractor's data comes from.
- `train_domain_extractor`: trains it and describes it; its features are
  those of layer `EXTRACTOR_LAYER`.
- `domain_extractor`: the extractor of its features.
- `named_extractor`: a saved classifier, or an untrained Inception (tests).
"""

import math
import pathlib

import numpy as np

from gan_zoo.data.demo import demo_dir

EXTRACTOR_LAYER = "gap"


def domain_records(folder):
    """Labelled records with patient groups, and the class names.

    Args:
        folder: the IDC layout (`<patient>/<0|1>/*.png`) or class folders;
            in class folders a BreaKHis file's group is its slide, any
            other file is its own group.

    Returns:
        `(ImageRecords, class names)`.
    """
    from gan_zoo.data.he.tiles import _breakhis_group
    from gan_zoo.data.image_folder import ImageRecord, scan_image_folder

    folder = pathlib.Path(folder)
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if subfolders and all({c.name for c in p.iterdir() if c.is_dir()} <= {"0", "1"} and
                          any(c.is_dir() for c in p.iterdir()) for p in subfolders):
        from gan_zoo.data import idc

        dataset = idc.scan_idc(folder)
        return list(dataset.records(dataset.patients)), ("no IDC", "IDC")
    scanned = scan_image_folder(folder)
    records = []
    for record in scanned.records:
        stem = pathlib.Path(record.path).stem
        records.append(ImageRecord(record.path, record.label, group=_breakhis_group(stem) or stem))
    return records, scanned.class_names


def default_extractor_data(shared_data, *, demo=False):
    """IDC (230 patients) when `shared_data` has it, else BreaKHis 224 crops, else the demo.

    Args:
        shared_data: the shared data folder (`idc/`, `he_tiles/breakhis_224/`).
        demo: the demo's patches, whatever `shared_data` holds (a demo run
            scores its demo tiles in features of the demo's classes).
    """
    if not demo:
        for folder in (pathlib.Path(shared_data) / "idc", pathlib.Path(shared_data) / "he_tiles" / "breakhis_224"):
            if folder.is_dir():
                return folder
    return demo_dir("histology")


def train_domain_extractor(folder, split, *, image_size, steps, seed):
    """Trains small_cnn (width 0.5) as the domain extractor's classifier.

    Args:
        folder: its data (`domain_records`).
        split: `records -> (train, validation)` by patient (e.g.
            `PatientSplitter(validation_share=0.3).carve`): it trains on
            the first and reports its AUROC on the second.
        image_size: the generator's image side (the extractor's input).
        steps: training steps (batches of 32), rounded up to whole epochs.
        seed: seed of the initialisation and the data order.

    Returns:
        `(classifier, summary)`: the summary says what it is (kind, data,
        classes, epochs, batch size, patients and images per part) and its
        validation AUROC (NaN with one class among the validation images).
    """
    import gan_zoo
    from gan_zoo.metrics import delong
    from gan_zoo.training.classify import predict_scores, train_classifier

    records, class_names = domain_records(folder)
    train, validation = split(records)
    classifier = gan_zoo.load("small_cnn", image_size=image_size, width=0.5, seed=seed)
    batch = min(32, len(train))
    epochs = math.ceil(steps / (len(train) // batch))
    train_classifier(classifier, train, epochs=epochs, batch_size=batch, size_policy="resize", seed=seed, verbose=0)
    scores = predict_scores(classifier, validation, size_policy="resize")
    labels = np.array([r.label for r in validation])
    auc = float(delong.auroc(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")
    patients = {"train": len({r.group for r in train}), "validation": len({r.group for r in validation})}
    print(f"Domain extractor: validation AUROC {auc:.3f} on {len(validation)} images "
          f"of {patients['validation']} held-out patients")
    return classifier, {
        "kind": f"small_cnn (width 0.5, {image_size} px) trained {class_names[0]} vs {class_names[1]}",
        "data": str(folder), "classes": list(class_names), "epochs": epochs, "batch_size": batch,
        "patients": patients, "images": {"train": len(train), "validation": len(validation)},
        "validation_auroc": auc,
    }


def domain_extractor(classifier, summary, weights_source):
    """The domain classifier's features: `(extractor, summary with the extractor's id)`.

    Args:
        classifier: the classifier `train_domain_extractor` trained.
        summary: its summary.
        weights_source: where its weights are (recorded in provenance).
    """
    from gan_zoo.metrics.extractors import KerasLayerExtractor

    extractor = KerasLayerExtractor(classifier, EXTRACTOR_LAYER, weights_source=weights_source)
    return extractor, {**summary, "id": extractor.id}


def named_extractor(choice, layer):
    """An extractor the run does not train: `(extractor, classifier or None, summary)`.

    Args:
        choice: "random-inception" (UNTRAINED Inception-V3: tests only) or
            the path of a saved Keras classifier.
        layer: the classifier's layer that gives the features.
    """
    import gan_zoo
    from gan_zoo.metrics.extractors import InceptionV3Extractor, KerasLayerExtractor

    if choice == "random-inception":
        extractor = InceptionV3Extractor(weights=None, allow_random=True, input_size=75)
        return extractor, None, {"kind": "RANDOM-WEIGHTS Inception-V3 (tests only)", "id": extractor.id}
    classifier = gan_zoo.load_model(choice)
    extractor = KerasLayerExtractor(classifier, layer, weights_source=choice)
    return extractor, classifier, {"kind": "saved classifier", "path": choice, "id": extractor.id}
