"""Realistic wrong answers to 09_latent's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "patchify": [
        ("channels last in each token", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 2, 4, 3, 5, 1)"),
        ("columns before rows", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 4, 2, 1, 3, 5)"),
        ("a plain reshape", "    x = x.reshape(b, c, h // patch, patch, w // patch, patch)\n"
         "    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)",
         "    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)"),
        ("unpatchify not the inverse", "x.permute(0, 3, 1, 4, 2, 5)", "x.permute(0, 3, 2, 4, 1, 5)"),
        ("patches read column by column", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 2, 4, 1, 5, 3)"),
        ("unpatchify reads channels last", "x = tokens.reshape(b, height // patch, width // patch, channels, patch, patch)\n    return x.permute(0, 3, 1, 4, 2, 5)",
         "x = tokens.reshape(b, height // patch, width // patch, patch, patch, channels)\n    return x.permute(0, 5, 1, 3, 2, 4)"),
    ],
    "adaln_zero": [
        ("scale without the 1", "h * (1 + scale[:, None]) + shift[:, None]", "h * scale[:, None] + shift[:, None]"),
        ("weights left random", "        nn.init.zeros_(self.modulation[1].weight)\n", ""),
        ("no gates", "h = h + gate1[:, None] * self.attention", "h = h + self.attention"),
        ("no residual around the MLP", "return h + gate2[:, None] * self.mlp(", "return gate2[:, None] * self.mlp("),
        ("shift and scale swapped", "x = modulate(self.norm1(h), shift1, scale1)", "x = modulate(self.norm1(h), scale1, shift1)"),
        ("no norm before the attention", "x = modulate(self.norm1(h), shift1, scale1)", "x = modulate(h, shift1, scale1)"),
        ("gate of the attention on the MLP", "return h + gate2[:, None] * self.mlp(", "return h + gate1[:, None] * self.mlp("),
        ("modulate adds the scale", "h * (1 + scale[:, None]) + shift[:, None]", "h + scale[:, None] + shift[:, None]"),
    ],
    "flow_matching_loss": [
        ("target x0 - noise", "(model(x_t, t, labels) - (noise - x0))", "(model(x_t, t, labels) - (x0 - noise))"),
        ("path reversed", "x_t = (1 - t.view(-1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1) * noise",
         "x_t = t.view(-1, 1, 1, 1) * x0 + (1 - t.view(-1, 1, 1, 1)) * noise"),
        ("noise drawn first", "    t = torch.rand(len(x0), generator=generator).to(x0.device)\n"
         "    noise = torch.randn(x0.shape, generator=generator).to(x0.device)",
         "    noise = torch.randn(x0.shape, generator=generator).to(x0.device)\n"
         "    t = torch.rand(len(x0), generator=generator).to(x0.device)"),
        ("target is the noise", "(model(x_t, t, labels) - (noise - x0))", "(model(x_t, t, labels) - noise)"),
        ("one t for the batch", "t = torch.rand(len(x0), generator=generator).to(x0.device)",
         "t = torch.rand(1, generator=generator).expand(len(x0)).to(x0.device)"),
        ("labels dropped", "(model(x_t, t, labels) - (noise - x0))", "(model(x_t, t, torch.zeros_like(labels)) - (noise - x0))"),
        ("sum, not mean", "(noise - x0)) ** 2).mean()", "(noise - x0)) ** 2).sum()"),
    ],
    "euler_sample": [
        ("from 0 to 1", "torch.linspace(1.0, 0.0, steps + 1)", "torch.linspace(0.0, 1.0, steps + 1)"),
        ("step added, not subtracted", "x = x + (t_next - t) * velocity", "x = x + (t - t_next) * velocity"),
        ("one step short", "torch.linspace(1.0, 0.0, steps + 1)", "torch.linspace(1.0, 0.0, steps)"),
        ("velocity at the next time", "velocity(x, t.expand(len(x)).to(x.device))", "velocity(x, t_next.expand(len(x)).to(x.device))"),
        ("t passed as one number", "velocity(x, t.expand(len(x)).to(x.device))", "velocity(x, t)"),
        ("half steps", "x = x + (t_next - t) * velocity", "x = x + 0.5 * (t_next - t) * velocity"),
    ],
    "guided_velocity": [
        ("weights swapped", "return unconditional + scale * (conditional - unconditional)",
         "return conditional + scale * (unconditional - conditional)"),
        ("halves swapped", "conditional, unconditional = both.chunk(2)", "unconditional, conditional = both.chunk(2)"),
        ("null label 0", "torch.full_like(y, null_label)", "torch.zeros_like(y)"),
        ("scale times the conditional only", "return unconditional + scale * (conditional - unconditional)",
         "return scale * conditional"),
        ("scale on the unconditional", "return unconditional + scale * (conditional - unconditional)",
         "return scale * unconditional + (conditional - unconditional)"),
        ("the null half at t = 0", "torch.cat([t, t])", "torch.cat([t, torch.zeros_like(t)])"),
    ],
}
