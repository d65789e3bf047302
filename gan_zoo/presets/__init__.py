"""Published presets: a trained run as a self-contained folder whose loader checks every file.

`publish(run, out)` turns a finished run folder (`gan-zoo train`, a recipe)
into a folder anyone can load without the run:

    PRESET_DIR/
      config.json         {"registry_name", "class_name", "config"}: what
                          `gan_zoo.load` builds
      model.weights.h5    the trained weights (with the model's config
                          embedded, see `gan_zoo.weights`)
      samples.png         the run's last sample grid, when it saved one
      README.md           the model card: model and paper, options,
                          training data, budget, measured metrics with their
                          protocol, intended use and limits, how to load it
      metadata.json       model id, gan_zoo version, SHA-256 and size of
                          every other file, data provenance, budget and
                          metrics as the run recorded them

Everything in `metadata.json` and the card comes from the run's
`config.json`, `metrics.json`, `metrics.jsonl` and model file, from the
registry, and from what the publisher states (`data_licence`, `hardware`,
`scores` files of `gan-zoo score --json` for this model); a value the run
did not record is written as not recorded, never estimated.

`load_preset(PRESET_DIR)` (and `gan_zoo.load(PRESET_DIR)`) checks the
SHA-256 of every file `metadata.json` lists before reading any of them:
a changed or missing file is refused with one line naming it (files it
does not list are never read).
`metadata.json` itself can only be protected from outside: publish the
archive (`write_archive`, `gan-zoo publish --archive`) and give its SHA-256
to the loader (`gan_zoo.load(name, weights=URL, weights_sha256=...)`),
which downloads and checks it before extracting it (with the checked,
link-refusing `gan_zoo.data.download.safe_extract`) into
`$KERAS_HOME/gan_zoo/presets/`.

    >>> gan_zoo.presets.publish("runs/dcgan", "presets/dcgan-demo", archive=True)
    >>> gan = gan_zoo.load("presets/dcgan-demo")

Modules: `layout` (file names, errors, ids), `provenance` (what a run
recorded), `card` (the model card), `publishing` (`publish`), `loading`
(checks, `load_preset`, archives).
"""

from gan_zoo.presets.card import format_number, format_seconds, model_card
from gan_zoo.presets.layout import (
    ARCHIVE_SUFFIXES,
    CARD_FILE,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    SAMPLES_FILE,
    WEIGHTS_FILE,
    PresetError,
    PresetIntegrityError,
    is_archive_name,
    model_id,
    sha256_of,
)
from gan_zoo.presets.loading import (
    extract_archive,
    load_preset,
    presets_cache_dir,
    read_preset,
    verify_files,
    write_archive,
)
from gan_zoo.presets.provenance import (
    FINAL_LOSSES_PROTOCOL,
    RunRecord,
    budget,
    measured_metrics,
    read_run,
    read_scores,
    training_data,
)
from gan_zoo.presets.publishing import Published, check_out, publish

__all__ = [
    "ARCHIVE_SUFFIXES", "CARD_FILE", "CONFIG_FILE", "FINAL_LOSSES_PROTOCOL", "FORMAT", "FORMAT_VERSION",
    "METADATA_FILE", "SAMPLES_FILE", "WEIGHTS_FILE", "PresetError", "PresetIntegrityError", "Published",
    "RunRecord", "budget", "check_out", "extract_archive", "format_number", "format_seconds",
    "is_archive_name", "load_preset", "measured_metrics", "model_card", "model_id", "presets_cache_dir",
    "publish", "read_preset", "read_run", "read_scores", "sha256_of", "training_data", "verify_files",
    "write_archive",
]
