"""Realistic wrong answers to 04_gans's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "discriminator_loss": [
        ("log(1 - sigmoid) overflows", "F.logsigmoid(-fake_logits).mean())", "torch.log(1 - torch.sigmoid(fake_logits)).mean())"),
        ("sums, not means", "real_term.mean() + F.logsigmoid(-fake_logits).mean()", "real_term.sum() + F.logsigmoid(-fake_logits).sum()"),
        ("smoothing without the (1 - label) term",
         "real_term = real_label * F.logsigmoid(real_logits) + (1 - real_label) * F.logsigmoid(-real_logits)",
         "real_term = real_label * F.logsigmoid(real_logits)"),
        ("fakes scored as real", "F.logsigmoid(-fake_logits).mean())", "F.logsigmoid(fake_logits).mean())"),
        ("one mean over both batches", "return -(real_term.mean() + F.logsigmoid(-fake_logits).mean())",
         "return -2 * torch.cat([real_term, F.logsigmoid(-fake_logits)]).mean()"),
        ("the value function, not its negative", "return -(real_term.mean()", "return (real_term.mean()"),
    ],
    "generator_losses": [
        ("minimax with the wrong sign", "return F.logsigmoid(-fake_logits).mean()", "return -F.logsigmoid(-fake_logits).mean()"),
        ("minimax written as the non-saturating loss", "return F.logsigmoid(-fake_logits).mean()", "return -F.logsigmoid(fake_logits).mean()"),
        ("non-saturating through log(sigmoid)", "return -F.logsigmoid(fake_logits).mean()",
         "return -torch.log(torch.sigmoid(fake_logits)).mean()"),
        ("non-saturating as minus the minimax loss", "return -F.logsigmoid(fake_logits).mean()", "return -F.logsigmoid(-fake_logits).mean()"),
        ("minimax summed", "return F.logsigmoid(-fake_logits).mean()", "return F.logsigmoid(-fake_logits).sum()"),
    ],
    "gan_step": [
        ("fakes not detached in D's step", "discriminator(fake.detach())", "discriminator(fake)"),
        ("G scored through the old D", """    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss_nonsaturating(discriminator(fake))""", """    fake = generator(z)
    fake_logits = discriminator(fake)
    d_loss = discriminator_loss(discriminator(real), fake_logits.detach())
    g_loss = generator_loss_nonsaturating(fake_logits)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()"""),
        ("D's gradients never cleared", "    opt_d.zero_grad()\n", ""),
        ("the minimax generator loss", "generator_loss_nonsaturating(discriminator(fake))", "generator_loss_minimax(discriminator(fake))"),
        ("d_loss measured after D's step", "\"d_loss\": d_loss.item()",
         "\"d_loss\": discriminator_loss(discriminator(real), discriminator(fake.detach())).item()"),
        ("G's gradients cleared after the backward pass", "    opt_g.zero_grad()\n    g_loss.backward()", "    g_loss.backward()\n    opt_g.zero_grad()"),
    ],
    "count_modes": [
        ("every sample counts for its mode", "torch.bincount(nearest[close], minlength=len(centers))",
         "torch.bincount(nearest, minlength=len(centers))"),
        ("threshold N / K", "len(samples) / (4 * len(centers))", "len(samples) / len(centers)"),
        ("more than, not at least", "(counts >= len(samples)", "(counts > len(samples)"),
        ("squared distances", "torch.cdist(samples, centers).min(dim=1)", "(torch.cdist(samples, centers) ** 2).min(dim=1)"),
        ("3 variances, not 3 standard deviations", "close = distance <= 3 * std", "close = distance <= 3 * std**2"),
    ],
    "slerp": [
        ("lerp", "return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)",
         "return (1 - t) * z0 + t * z1"),
        ("the angle of unnormalized codes", "u, v = z0 / z0.norm(), z1 / z1.norm()", "u, v = z0, z1"),
        ("weights swapped", "torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1",
         "torch.sin(t * omega) * z0 + torch.sin((1 - t) * omega) * z1"),
        ("no fallback for parallel codes", "    if torch.sin(omega) < 1e-6:\n        return (1 - t) * z0 + t * z1\n", ""),
        ("the angle by acos", "omega = 2 * torch.atan2((u - v).norm(), (u + v).norm())", "omega = torch.acos(u @ v)"),
        ("t without the end point", "t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]",
         "t = (torch.arange(steps, dtype=z0.dtype) / steps)[:, None]"),
    ],
    "project": [
        ("z_init optimised in place", "z = z_init.detach().clone().requires_grad_(True)", "z = z_init.requires_grad_(True)"),
        ("the generator left in training mode", "    generator.eval()\n", ""),
        ("the mode never restored", "        generator.train(was_training)", "        pass"),
        ("backward() fills the generator's gradients", "(z.grad,) = torch.autograd.grad(errors().sum(), z)",
         "optimizer.zero_grad()\n            errors().sum().backward()"),
        ("plain SGD", "torch.optim.Adam([z], lr=lr)", "torch.optim.SGD([z], lr=lr)"),
        ("summed, not mean, squared errors", ".flatten(1).pow(2).mean(1)", ".flatten(1).pow(2).sum(1)"),
        ("labels ignored", "return (generator(z, labels) - target)", "return (generator(z) - target)"),
    ],
}
