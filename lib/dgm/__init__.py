"""dgm: small, tested reference implementations for the deep generative models course.

Modules, one idea each. The core, which imports no model module:

- :mod:`dgm.device`         -- where a model runs: the device, its eval mode, seeding.
- :mod:`dgm.checks`         -- argument checks whose errors name the argument.
- :mod:`dgm.data`           -- data sets as tensors (digits, MNIST, toy 2-D sets, translation tasks).
- :mod:`dgm.blocks`         -- small network pieces several models share (MLPs, Gaussian kernels).
- :mod:`dgm.train`          -- the training loop: budgets, EMA, clipping, checkpoints.
- :mod:`dgm.metrics`        -- likelihood units, the evaluation classifier, FID, a realism check.
- :mod:`dgm.viz`            -- image grids and plots for the notebooks.
- :mod:`dgm.zoo`            -- the shipped checkpoints, verified on load.

The teaching modules, in lecture order:

- :mod:`dgm.gaussian`       -- Gaussian maximum likelihood and mixtures fit by EM.
- :mod:`dgm.dice`           -- the five-dice "probabilistic plants" hand probabilities.
- :mod:`dgm.lsystem`        -- procedural samplers: random-turn lines and L-systems.
- :mod:`dgm.autoregressive` -- the chain rule as networks: n-grams, PixelCNN.
- :mod:`dgm.gan`            -- the GAN game, its losses, DCGAN, the latent space.
- :mod:`dgm.translation`    -- pix2pix and CycleGAN.
- :mod:`dgm.vae`            -- PCA, autoencoders, the VAE, the VQ bottleneck.
- :mod:`dgm.unet`           -- the time- and class-conditional U-Net of diffusion.
- :mod:`dgm.diffusion`      -- the forward process, the losses, DDPM and DDIM samplers, guidance.
- :mod:`dgm.solvers`        -- few-step sampling: DPM-Solver++(2M) on the probability-flow ODE.
- :mod:`dgm.latent`         -- latent diffusion's autoencoder and the scale of its latents.
- :mod:`dgm.dit`            -- the diffusion transformer: patches as tokens, adaLN-Zero blocks.
- :mod:`dgm.flow`           -- flow matching: straight paths, the velocity loss, Euler and Heun ODE samplers.
- :mod:`dgm.views`          -- orthogonal views of images (and some that are not).
- :mod:`dgm.illusions`      -- multi-view and factorized noise estimates, SDEdit, RePaint, the judge.
- :mod:`dgm.captions`       -- captions for MNIST digits from measured attributes, a word tokenizer.
- :mod:`dgm.clip`           -- a small CLIP: contrastive image-text embeddings, zero-shot, retrieval.
- :mod:`dgm.clip_edit`      -- CLIP-guided editing: gradient steps on CLIP's score through a generator or the pixels.

And apart from both: :mod:`dgm.recipes` (how each zoo checkpoint is built, trained and
evaluated) and :mod:`dgm.course` (the course pipeline behind the Makefile).

Import the submodule you need (``from dgm import gaussian``); nothing heavy is
imported here.
"""

__version__ = "0.1.0"
