"""Realistic wrong answers to 06_vae's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "pca_fit": [
        ("not centred", "torch.linalg.svd(x - mean, full_matrices=False)", "torch.linalg.svd(x, full_matrices=False)"),
        ("ratio over the top k only", "variance[:k] / variance.sum()", "variance[:k] / variance[:k].sum()"),
        ("singular values, not their squares", "variance = singular_values**2", "variance = singular_values"),
        ("eigh's ascending order kept", "    _, singular_values, vt = torch.linalg.svd(x - mean, full_matrices=False)\n"
         "    variance = singular_values**2\n    return mean, vt[:k], variance[:k] / variance.sum()",
         "    values, vectors = torch.linalg.eigh((x - mean).T @ (x - mean) / len(x))\n"
         "    return mean, vectors[:, :k].T, values[:k] / values.sum()"),
        ("smallest components", "vt[:k]", "vt[-k:]"),
    ],
    "pca_reconstruct": [
        ("mean not added back", "return mean + codes @ components", "return codes @ components"),
        ("projection of uncentred data", "codes = (x - mean) @ components.T", "codes = x @ components.T"),
        ("codes, not the reconstruction", "return mean + codes @ components", "return codes"),
        ("mean added twice", "return mean + codes @ components", "return 2 * mean + codes @ components"),
    ],
    "denoising_loss": [
        ("target is the noisy image", "binary_cross_entropy_with_logits(logits, x, reduction=\"none\")",
         "binary_cross_entropy_with_logits(logits, noisy, reduction=\"none\")"),
        ("mean over pixels", ".flatten(1).sum(1).mean()", ".mean()"),
        ("no clamp", ").clamp(0, 1)\n    logits", ")\n    logits"),
        ("noise variance sigma", "noise_std * torch.randn", "noise_std**2 * torch.randn"),
        ("sigmoid twice", "logits = model(noisy)", "logits = torch.sigmoid(model(noisy))"),
    ],
    "reparameterize": [
        ("logvar as the standard deviation", "torch.exp(0.5 * logvar)", "logvar"),
        ("variance, not standard deviation", "torch.exp(0.5 * logvar)", "torch.exp(logvar)"),
        ("not differentiable", "return mu + torch.exp(0.5 * logvar) * eps",
         "return (mu + torch.exp(0.5 * logvar) * eps).detach()"),
        ("ignores the generator", "eps = torch.randn(mu.shape, generator=generator).to(mu.device)", "eps = torch.randn(mu.shape).to(mu.device)"),
    ],
    "kl_to_standard_normal": [
        ("sign of the log term", "- 1 - logvar).sum(1)", "- 1 + logvar).sum(1)"),
        ("no factor one half", "return 0.5 * (mu**2", "return (mu**2"),
        ("mean over latents", "- 1 - logvar).sum(1)", "- 1 - logvar).mean(1)"),
        ("summed over the batch", "- 1 - logvar).sum(1)", "- 1 - logvar).sum()"),
        ("standard deviation for the variance", "mu**2 + logvar.exp() - 1", "mu**2 + (0.5 * logvar).exp() - 1"),
    ],
    "negative_elbo": [
        ("KL subtracted", "return reconstruction + kl_to_standard_normal(mu, logvar)",
         "return reconstruction - kl_to_standard_normal(mu, logvar)"),
        ("mean over pixels", "reduction=\"none\").flatten(1).sum(1)", "reduction=\"none\").flatten(1).mean(1)"),
        ("BCE on probabilities", "F.binary_cross_entropy_with_logits(logits, x,",
         "F.binary_cross_entropy(torch.sigmoid(logits).clamp(1e-6, 1 - 1e-6), x,"),
        ("reconstruction only", "return reconstruction + kl_to_standard_normal(mu, logvar)", "return reconstruction"),
    ],
    "importance_weighted_bound": [
        ("no 1 / k", "torch.logsumexp(log_weights, dim=0) - math.log(k)", "torch.logsumexp(log_weights, dim=0)"),
        ("mean of the logs (the ELBO)", "torch.logsumexp(log_weights, dim=0) - math.log(k)", "log_weights.mean(0)"),
        ("unstable log of the mean", "torch.logsumexp(log_weights, dim=0) - math.log(k)", "log_weights.exp().mean(0).log()"),
        ("over the batch", "torch.logsumexp(log_weights, dim=0) - math.log(k)",
         "torch.logsumexp(log_weights, dim=1) - math.log(log_weights.shape[1])"),
    ],
    "quantize": [
        ("straight-through the wrong way", "z_e + (codebook[indices] - z_e).detach()", "codebook[indices] + (z_e - codebook[indices]).detach()"),
        ("no straight-through", "z_e + (codebook[indices] - z_e).detach()", "codebook[indices]"),
        ("farthest code", "indices = distances.argmin(1)", "indices = distances.argmax(1)"),
        ("dot product for distance", "distances = (z_e[:, None, :] - codebook[None, :, :]).pow(2).sum(-1)",
         "distances = -(z_e @ codebook.T)"),
    ],
}
