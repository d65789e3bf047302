"""Zoo models. Importing this package registers every model by name.

One import per line: each model module registers itself when imported.
"""

from gan_zoo.models import cruz_roa_cnn  # noqa: F401
from gan_zoo.models import dcgan  # noqa: F401
from gan_zoo.models import semi_cgan  # noqa: F401
from gan_zoo.models import small_cnn  # noqa: F401
from gan_zoo.models import cigan  # noqa: F401
from gan_zoo.models import resnet50_classifier  # noqa: F401
from gan_zoo.models import pathology_gan  # noqa: F401
from gan_zoo.models import cyclegan  # noqa: F401
from gan_zoo.models import diagram  # noqa: F401
from gan_zoo.models import resnet18_classifier  # noqa: F401
