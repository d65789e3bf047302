"""Zoo models. Importing this package registers every model by name."""

from gan_zoo.models import cruz_roa_cnn, dcgan, semi_cgan, small_cnn  # noqa: F401
