"""Models a run trains once and keeps: feature extractors, domain classifiers.

KID/FID and ciGAN's feature loss measure images in a network's features.
When that network is trained by the run (a domain classifier standing in for
ImageNet features), a resumed run must use the very same network, or its
scores and its GAN's loss change meaning halfway. `train_once` trains it on
the run's first invocation, saves it in the run folder with its SHA-256,
and on every later invocation returns the saved file, refusing one whose
weights changed. Its identity is the SHA-256 of its weights (not of the
.keras file, which holds the time it was saved), so two runs that trained
the same network record the same identity.
"""

import hashlib
import json

from gan_zoo.errors import UsageError


def weights_sha256(model):
    """Hex SHA-256 of a Keras model's weights (values, shapes and dtypes, in order)."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def train_once(run, name, train):
    """The run's model `name`: trained and saved on first use, read back after.

    Args:
        run: the `Run`.
        name: file stem in the run folder (`<name>.keras`, `<name>.json`;
            "final/diagram" writes into the folder final/).
        train: `() -> (keras model, info dict)`, called only when the run
            has no finished `<name>`.

    Returns:
        `(model, info)`: the model this call trained, or the one read back
        from `<name>.keras`; info holds `weights_sha256`, the network's
        identity, to be recorded with the scores made with it, and `file`
        (its name in the run folder).
        (In a multi-worker run each worker uses the model it trained: the
        chief may still be writing the file.)

    Raises:
        UsageError: the saved file is not the one this run trained.
    """
    path, record = run.path(f"{name}.keras"), run.path(f"{name}.json")
    if path.exists() and record.exists():
        info = json.loads(record.read_text())
        import keras

        model = keras.models.load_model(path)
        if weights_sha256(model) != info.get("weights_sha256"):
            raise UsageError(f"{path} is not the {name} this run trained (its weights changed): "
                             "start a new run folder.")
        print(f"{name}: {path} (trained earlier in this run)")
        return model, info
    model, info = train()
    run.save_model(model, path.relative_to(run.directory))
    info = {**info, "weights_sha256": weights_sha256(model), "file": path.name}
    run.write_json(record.relative_to(run.directory), info)  # written last: its presence means the model is complete
    return model, info
