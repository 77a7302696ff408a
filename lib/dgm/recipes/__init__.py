"""Zoo recipes: how each checkpoint in ``data/checkpoints/`` is built, trained and evaluated.

The teaching modules hold the math and the models; the recipes hold the choices that turn them
into a shipped model (architecture sizes, data, budgets, optimiser settings, the numbers on its
card). One module per zoo model, each with ``build() -> nn.Module`` and
``train(seconds) -> (model, card dict)``; :data:`dgm.zoo.MODELS` names them.

- :mod:`dgm.recipes.classifier` -- the evaluation classifier behind accuracy and FID;
- :mod:`dgm.recipes.pixelcnn`   -- the gated PixelCNN of binarized MNIST;
- :mod:`dgm.recipes.vae`        -- the MLP VAE of binarized MNIST;
- :mod:`dgm.recipes.cgan`       -- the class-conditional DCGAN;
- :mod:`dgm.recipes.ddpm`       -- the class-conditional DDPM, and guided samples of its digits;
- :mod:`dgm.recipes.ldm`        -- latent diffusion: the autoencoder and the flow-matching DiT;
- :mod:`dgm.recipes.clip`       -- a small CLIP of captioned MNIST digits;
- :mod:`dgm.recipes.text2image` -- text-to-image: a DiT on the latents conditioned on CLIP's text embeddings;
- :mod:`dgm.recipes.binarized`  -- the training loop shared by the two likelihood models.
"""
