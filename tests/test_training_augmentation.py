"""GAN augmentation: synthetic labelled sets, translations with flipped labels, mixed batches."""

import numpy as np
import pytest

import gan_zoo
from gan_zoo.models.cyclegan import CycleGAN
from gan_zoo.models.dcgan import DCGAN
from gan_zoo.training import augmentation


def coded(n, label, size=8):
    """Images whose pixels encode (label, index): 0.25 + 0.5 * label + index / 1000."""
    values = 0.25 + 0.5 * label + np.arange(n) / 1000.0
    images = np.broadcast_to(values[:, None, None, None], (n, size, size, 3)).astype(np.float32)
    return images, np.full(n, label, np.int32)


@pytest.mark.parametrize("fraction, batch, synthetic_per_batch", [(0.25, 8, 2), (0.5, 10, 5), (0.3, 10, 3)])
def test_mixed_batches_hold_the_requested_ratio(fraction, batch, synthetic_per_batch):
    real, synthetic = coded(60, 0), coded(20, 1)
    stream = augmentation.mixed_stream(real, synthetic, batch_size=batch, synthetic_fraction=fraction,
                                       seed=3, epochs=2)
    assert stream.steps_per_epoch == 80 // batch
    assert stream.real_per_batch == batch - synthetic_per_batch
    seen = {0: [], 1: []}
    batches = 0
    for images, labels in stream.dataset:
        images, labels = images.numpy(), labels.numpy()
        batches += 1
        assert int(labels.sum()) == synthetic_per_batch
        # Images travel with their labels (codes 0.25..0.31, + 0.5 for label 1).
        codes = images[:, 0, 0, 0] - 0.5 * labels
        assert codes.min() > 0.24 and codes.max() < 0.32
        for label in (0, 1):
            seen[label] += list(np.round(images[labels == label, 0, 0, 0] * 255).astype(int))
    assert batches == 2 * stream.steps_per_epoch
    # Every synthetic image is used (they cycle when the ratio asks for more).
    assert len(set(seen[1])) == len(set(np.round(synthetic[0][:, 0, 0, 0] * 255).astype(int)))


def test_natural_share_and_single_sources():
    real, synthetic = coded(30, 0), coded(10, 1)
    natural = augmentation.mixed_stream(real, synthetic, batch_size=8, epochs=1)
    assert natural.real_per_batch == 6 and natural.synthetic_fraction == pytest.approx(0.25)
    only_real = augmentation.mixed_stream(real, None, batch_size=8, epochs=1)
    assert only_real.synthetic_fraction == 0 and sum(int(y.numpy().sum()) for _, y in only_real.dataset) == 0
    only_synthetic = augmentation.mixed_stream(None, synthetic, batch_size=5, epochs=1)
    assert [int(y.numpy().sum()) for _, y in only_synthetic.dataset] == [5, 5]
    with pytest.raises(ValueError, match="asks for synthetic"):
        augmentation.mixed_stream(real, None, batch_size=8, synthetic_fraction=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augmentation.mixed_stream(real, synthetic, batch_size=8, synthetic_fraction=1.5)
    with pytest.raises(ValueError, match="no batch"):
        augmentation.mixed_stream(real, synthetic, batch_size=64)


def test_generate_labelled_per_class_and_conditional():
    per_class = {c: DCGAN(image_size=16, base_filters=2, latent_dim=4, seed=c) for c in (0, 1)}
    made = augmentation.generate_labelled(per_class, {0: 3, 1: 5}, seed=7)
    assert len(made) == 8 and made.class_counts() == [3, 5]
    assert made.images.shape == (8, 16, 16, 3) and 0 <= made.images.min() and made.images.max() <= 1
    np.testing.assert_array_equal(made.images[3:], per_class[1].generate(5, seed=8))
    assert made.sources is None and made.description["kind"] == "one generator per class"
    conditional = DCGAN(image_size=16, base_filters=2, latent_dim=4, num_classes=2)
    both = augmentation.generate_labelled(conditional, 4, seed=1)
    assert both.class_counts() == [4, 4]
    np.testing.assert_array_equal(both.images[4:], conditional.generate(4, labels=1, seed=1))
    with pytest.raises(ValueError, match="No generator"):
        augmentation.generate_labelled(per_class, {2: 1})
    with pytest.raises(ValueError, match="class-conditional"):
        augmentation.generate_labelled(per_class[0], 3)


class ShiftTranslator:
    """a_to_b darkens by 0.1; b_to_a brightens, but image 0 of its input only slightly."""

    def translate(self, images, direction, batch_size=64):
        if direction == "a_to_b":
            return np.clip(images - 0.1, 0, 1)
        out = np.clip(images + 0.1, 0, 1)
        out[0] = images[0] + 0.001
        return out


def test_translations_get_flipped_labels_and_near_copies_can_be_dropped():
    images = np.concatenate([coded(4, 0)[0], coded(3, 1)[0]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    made = augmentation.translate_labelled(ShiftTranslator(), images, labels)
    assert made.labels.tolist() == [1, 1, 1, 1, 0, 0, 0]  # each source label flipped
    assert made.sources.tolist() == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(made.images[0], images[0] - 0.1, atol=1e-6)
    kept = augmentation.translate_labelled(ShiftTranslator(), images, labels, min_ssd=1.0)
    # Image 4 (the first IDC patch) changed by 0.001 per pixel: SSD 8*8*3*1e-6.
    assert kept.sources.tolist() == [0, 1, 2, 3, 5, 6]
    assert kept.description["dropped_too_close"] == 1 and kept.description["translated"] == 7
    same = augmentation.translate_labelled(ShiftTranslator(), images, labels, flip_labels=False)
    assert same.labels.tolist() == labels.tolist()
    ssd = augmentation.sum_squared_differences(made.images, images[made.sources])
    assert ssd[4] == pytest.approx(8 * 8 * 3 * 1e-6, rel=1e-3)


def test_cyclegan_translations_and_a_classifier_on_the_mix():
    images = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 0, 1])
    gan = CycleGAN(image_size=16, generator_filters=2, discriminator_filters=2, residual_blocks=1)
    made = augmentation.translate_labelled(gan, images, labels)
    np.testing.assert_allclose(made.images[:3], gan.translate(images[labels == 0]), atol=1e-6)
    assert made.labels.tolist() == [1, 1, 1, 0, 0, 0]
    classifier = gan_zoo.load("small_cnn", image_size=16, width=0.125)
    history, stream = augmentation.fit_on_mix(
        classifier, (images, labels), made, epochs=2, batch_size=4, synthetic_fraction=0.5, verbose=0)
    assert stream.real_per_batch == 2 and stream.steps_per_epoch == 3
    assert len(history.history["loss"]) == 2
