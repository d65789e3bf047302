"""Real:synthetic curricula for classifiers trained on real and generated data.

A curriculum maps the training step to the real share of a batch, the
`real_share` callable of `gan_zoo.data.streams.mixed_batches`.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Curriculum:
    """ciGAN's real share of a classifier batch as a function of the step.

    Wu et al. (2018, section 3.2) start the classifier's batches at 50% real
    patches and raise the real share by 20 points every 1,000 iterations up
    to 90%: `share(step) = min(final, start + increase * (step // every))`,
    so 0.5, 0.7, then 0.9 from step 2,000 on with the paper's values.

    Args:
        start: real share at step 0.
        increase: added every `every` steps (0.2 = 20 percentage points).
        every: steps between increases.
        final: the share never exceeds this.

    Example:

    >>> stream = mixed_batches(real, synthetic, Curriculum(), batch_size=32, seed=0)
    """

    start: float = 0.5
    increase: float = 0.2
    every: int = 1000
    final: float = 0.9

    def __post_init__(self):
        if not 0.0 <= self.start <= self.final <= 1.0:
            raise ValueError(f"Need 0 <= start <= final <= 1, got {self.start}, {self.final}.")
        if self.increase < 0 or int(self.every) < 1:
            raise ValueError(f"Need increase >= 0 and every >= 1, got {self.increase}, {self.every}.")

    def __call__(self, step):
        return min(self.final, self.start + self.increase * (int(step) // int(self.every)))
