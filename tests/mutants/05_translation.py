"""Realistic wrong answers to 05_translation's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "best_constants": [
        ("L2 and L1 swapped", "return targets.mean(0), targets.median(0).values", "return targets.median(0).values, targets.mean(0)"),
        ("a batch axis kept", "return targets.mean(0), targets.median(0).values",
         "return targets.mean(0, keepdim=True), targets.median(0, keepdim=True).values"),
        ("one median over all pixels", "targets.median(0).values", "targets.median().expand(targets.shape[1:])"),
        ("mean absolute value for L1", "targets.median(0).values", "targets.abs().mean(0)"),
        ("the mode for L1", "targets.median(0).values", "targets.mode(0).values"),
    ],
    "receptive_field": [
        ("first layer first", "reversed(list(specs))", "list(specs)"),
        ("starts from r = 0", "    field = 1\n", "    field = 0\n"),
        ("strides ignored", "field = stride * (field - 1) + kernel", "field = field + kernel - 1"),
        ("stride times the whole span", "field = stride * (field - 1) + kernel", "field = stride * field + kernel - 1"),
        ("a float", "    field = 1\n", "    field = 1.0\n"),
    ],
    "output_size": [
        ("rounds up", "size = (size + 2 * padding - kernel) // stride + 1",
         "size = math.ceil((size + 2 * padding - kernel) / stride) + 1"),
        ("true division", "size = (size + 2 * padding - kernel) // stride + 1", "size = (size + 2 * padding - kernel) / stride + 1"),
        ("padding on one side", "size + 2 * padding - kernel", "size + padding - kernel"),
        ("no + 1", "// stride + 1", "// stride"),
        ("last layer first", "for kernel, stride in specs:", "for kernel, stride in reversed(specs):"),
    ],
    "pix2pix_generator_loss": [
        ("the minimax GAN term", "gan = -F.logsigmoid(fake_logits).mean()", "gan = F.logsigmoid(-fake_logits).mean()"),
        ("L2, not L1", "l1 = (target - fake).abs().mean()", "l1 = (target - fake).square().mean()"),
        ("weight on the GAN term", "return gan + l1_weight * l1, gan, l1", "return l1_weight * gan + l1, gan, l1"),
        ("log(sigmoid) underflows", "gan = -F.logsigmoid(fake_logits).mean()", "gan = -torch.log(torch.sigmoid(fake_logits)).mean()"),
        ("L1 summed per image", "l1 = (target - fake).abs().mean()", "l1 = (target - fake).abs().flatten(1).sum(1).mean()"),
        ("the default weight always", "return gan + l1_weight * l1, gan, l1", "return gan + 100.0 * l1, gan, l1"),
    ],
    "cycle_and_identity": [
        ("a goes through F first", "g_ba(g_ab(real_a))", "g_ab(g_ba(real_a))"),
        ("identity on the wrong domain",
         "identity = (g_ab(real_b) - real_b).abs().mean() + (g_ba(real_a) - real_a).abs().mean()",
         "identity = (g_ab(real_a) - real_a).abs().mean() + (g_ba(real_b) - real_b).abs().mean()"),
        ("one direction only",
         "cycle = (g_ba(g_ab(real_a)) - real_a).abs().mean() + (g_ab(g_ba(real_b)) - real_b).abs().mean()",
         "cycle = (g_ba(g_ab(real_a)) - real_a).abs().mean()"),
        ("squared errors", "(g_ba(g_ab(real_a)) - real_a).abs().mean()", "(g_ba(g_ab(real_a)) - real_a).square().mean()"),
        ("detached", "return cycle, identity", "return cycle.detach(), identity.detach()"),
    ],
    "lsgan_losses": [
        ("no 1/2", "d_loss = 0.5 * ((real_out - 1).square()", "d_loss = ((real_out - 1).square()"),
        ("fake target -1", "fake_out.square().mean())", "(fake_out + 1).square().mean())"),
        ("the generator minimises -d_loss", "g_loss = (fake_out - 1).square().mean()", "g_loss = -d_loss"),
        ("one mean over both batches", "0.5 * ((real_out - 1).square().mean() + fake_out.square().mean())",
         "torch.cat([(real_out - 1).flatten().square(), fake_out.flatten().square()]).mean()"),
        ("generator target 0", "g_loss = (fake_out - 1).square().mean()", "g_loss = fake_out.square().mean()"),
    ],
    "history_pool": [
        ("never returns an old image", "returned.append(self.images[index])", "returned.append(image)"),
        ("the new image not stored after a swap", "                self.images[index] = image.clone()\n", ""),
        ("stores without cloning", "self.images.append(image.clone())", "self.images.append(image)"),
        ("the global random generator", "torch.rand((), generator=self.generator) < 0.5", "torch.rand(()) < 0.5"),
        ("draws while the pool fills", """            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:""", """            swap = bool(torch.rand((), generator=self.generator) < 0.5)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif swap:"""),
        ("not detached", "        images = images.detach()\n", ""),
    ],
}
