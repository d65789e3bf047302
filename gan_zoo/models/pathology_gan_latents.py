"""PathologyGAN's latent space (Quiros, Murray-Smith & Yuan, MIDL 2020, section 4.3).

`StyleLatents` gives a style-based generator (a mapping network z -> w
and a synthesis network of per-stage styles, the layers "mapping" and
"synthesis" of its generator) what `gan_zoo.models.latent_tools` and
`gan_zoo.models.pathology_gan_figures` work on: `map_latent(z)`,
`synthesize(w or styles)`, and the exported signatures `map_latent`,
`generate_from_w` and `generate_from_styles`.
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.layers.noise import noise_seed_scope


class StyleLatents:
    """Mix-in: z -> w and w (or per-slot styles) -> images, in Python and exported.

    The model provides `latent_dim`, `num_style_slots`,
    `noise_at_inference`, `sampling_network("generator")` (with layers
    "mapping" and "synthesis") and `to_unit_range`; put the mix-in before
    the model's base so its `serving_endpoints` adds to the base's.
    """

    def map_latent(self, z, batch_size=256):
        """w = mapping(z) of the sampling generator, float32 numpy [n, latent_dim]."""
        mapping = self.sampling_network("generator").get_layer("mapping")
        z = np.asarray(z, np.float32)
        return np.concatenate(
            [keras.ops.convert_to_numpy(mapping(z[i : i + batch_size], training=False))
             for i in range(0, len(z), batch_size)]
        )

    def synthesize(self, w, seed=0, batch_size=256):
        """Images in [0, 1] from w [n, D] (every slot) or styles [n, slots, D].

        With `noise_at_inference`, every image gets the noise of the same
        seed (`batch_size=1` per call), so a strip differs only by its w.
        """
        w = np.asarray(w, np.float32)
        if w.ndim == 2:
            w = np.repeat(w[:, None, :], self.num_style_slots, axis=1)
        if w.ndim != 3 or w.shape[1:] != (self.num_style_slots, self.latent_dim):
            raise ValueError(
                f"w must be [n, {self.latent_dim}] or [n, {self.num_style_slots}, {self.latent_dim}], "
                f"got {list(w.shape)}."
            )
        synthesis = self.sampling_network("generator").get_layer("synthesis")
        step = 1 if self.noise_at_inference else int(batch_size)
        images = []
        for start in range(0, len(w), step):
            with noise_seed_scope(tf.constant([int(seed), 1], tf.int64)):
                images.append(keras.ops.convert_to_numpy(synthesis(w[start : start + step], training=False)))
        return np.clip(np.concatenate(images), 0.0, 1.0)

    def serving_endpoints(self):
        """The base's signatures, and `map_latent`, `generate_from_w`, `generate_from_styles`."""
        endpoints = super().serving_endpoints()
        network = self.sampling_network("generator")
        mapping, synthesis = network.get_layer("mapping"), network.get_layer("synthesis")
        slots = self.num_style_slots

        def map_latent(z):
            return {"w": tf.cast(mapping(z, training=False), tf.float32)}

        def generate_from_w(w):
            styles = tf.repeat(w[:, None, :], slots, axis=1)
            return {"images": self.to_unit_range(synthesis(styles, training=False))}

        def generate_from_styles(styles):
            return {"images": self.to_unit_range(synthesis(styles, training=False))}

        z_spec = tf.TensorSpec((None, self.latent_dim), tf.float32, name="z")
        w_spec = tf.TensorSpec((None, self.latent_dim), tf.float32, name="w")
        styles_spec = tf.TensorSpec((None, slots, self.latent_dim), tf.float32, name="styles")
        endpoints["map_latent"] = (map_latent, [z_spec])
        endpoints["generate_from_w"] = (generate_from_w, [w_spec])
        endpoints["generate_from_styles"] = (generate_from_styles, [styles_spec])
        return endpoints
