"""Realistic wrong answers to 03_autoregressive's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "next_char_probabilities": [
        ("context not padded", "padded_context = START * width + context", "padded_context = context"),
        ("smoothing once, not per character", "total = sum(counts.values()) + alpha * len(vocabulary)",
         "total = sum(counts.values()) + alpha"),
        ("context counted after the character", "if padded_text[t : t + width] == key:",
         "if padded_text[t + 1 : t + 1 + width] == key:"),
        ("the first order characters of the context", "key = padded_context[len(padded_context) - width :]",
         "key = padded_context[:width]"),
        ("vocabulary in order of appearance", "vocabulary = sorted(set(text))", "vocabulary = list(dict.fromkeys(text))"),
    ],
    "chain_rule_log_likelihood": [
        ("prefix includes the character", "conditional(sequence[:t])[char]", "conditional(sequence[: t + 1])[char]"),
        ("bits in total, not per character", "-log_likelihood / (len(sequence) * math.log(2))", "-log_likelihood / math.log(2)"),
        ("nats per character", "-log_likelihood / (len(sequence) * math.log(2))", "-log_likelihood / len(sequence)"),
        ("log base 2 for the likelihood", "math.log(conditional(sequence[:t])[char])", "math.log2(conditional(sequence[:t])[char])"),
    ],
    "causal_mask": [
        ("A and B swapped", "centre + (mask_type == \"B\")", "centre + (mask_type == \"A\")"),
        ("centre row right of the centre", "mask[centre, : centre + (mask_type == \"B\")] = 1",
         "mask[centre, centre + (mask_type == \"A\") :] = 1"),
        ("rows below, not above", "mask[:centre] = 1", "mask[centre + 1 :] = 1"),
        ("no check of kernel_size", "    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:\n"
         "        raise ValueError(f\"kernel_size: expected an odd positive int, got {kernel_size!r}\")\n", ""),
        ("a bool mask", "mask = torch.zeros(kernel_size, kernel_size)", "mask = torch.zeros(kernel_size, kernel_size, dtype=torch.bool)"),
    ],
    "causal_conv2d": [
        ("mask of type B always", "causal_mask(kernel_size, mask_type)", "causal_mask(kernel_size, \"B\")"),
        ("mask not applied", "self.weight * self.mask", "self.weight"),
        ("mask transposed", "self.weight * self.mask", "self.weight * self.mask.T"),
        ("no padding", "self.bias, padding=self.padding)", "self.bias)"),
    ],
    "pixel_dependencies": [
        ("first channel only", "x.grad[0].abs().sum(0) > 0", "x.grad[0, 0] != 0"),
        ("signed sum of gradients", "x.grad[0].abs().sum(0) > 0", "x.grad[0].sum(0) != 0"),
        ("one output channel", "model(x)[0, :, row, col].sum().backward()", "model(x)[0, 0, row, col].backward()"),
        ("row and column swapped", "model(x)[0, :, row, col].sum().backward()", "model(x)[0, :, col, row].sum().backward()"),
    ],
    "bits_per_dim": [
        ("log base 10", "nats / (dims * math.log(2))", "nats / (dims * math.log(10))"),
        ("not per dimension", "nats / (dims * math.log(2))", "nats / math.log(2)"),
        ("multiplied by log 2", "nats / (dims * math.log(2))", "nats * math.log(2) / dims"),
        ("always a float", "nats / (dims * math.log(2))", "float(nats) / (dims * math.log(2))"),
    ],
    "ancestral_sample": [
        ("argmax instead of a draw", "torch.bernoulli(torch.sigmoid(logits), generator=generator)", "(logits > 0).float()"),
        ("logits used as probabilities", "torch.bernoulli(torch.sigmoid(logits), generator=generator)",
         "torch.bernoulli(logits.clamp(0, 1), generator=generator)"),
        ("known pixels overwritten", "x[:, 0, row, col] = torch.where(keep[:, 0, row, col], x[:, 0, row, col], draw)",
         "x[:, 0, row, col] = draw"),
        ("column-major order", "for row in range(height):\n            for col in range(width):",
         "for col in range(width):\n            for row in range(height):"),
        ("ignores the seed", "torch.bernoulli(torch.sigmoid(logits), generator=generator)", "torch.bernoulli(torch.sigmoid(logits))"),
    ],
}
