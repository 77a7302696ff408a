"""dgm: small, tested reference implementations for the deep generative models course.

Modules (one idea each):

- :mod:`dgm.device`   -- which device to use, and seeding.
- :mod:`dgm.data`     -- data sets as tensors (digits, MNIST, toy 2-D sets, plants).
- :mod:`dgm.gaussian` -- Gaussian maximum likelihood and mixtures fit by EM.
- :mod:`dgm.dice`     -- the five-dice "probabilistic plants" hand probabilities.
- :mod:`dgm.lsystem`  -- procedural samplers: random-turn lines and L-systems.
- :mod:`dgm.viz`      -- image grids and plots for the notebooks.

Import the submodule you need (``from dgm import gaussian``); nothing heavy is
imported here.
"""

__version__ = "0.1.0"
