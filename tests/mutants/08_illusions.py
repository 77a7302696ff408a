"""Realistic wrong answers to 08_illusions's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "flip_and_rotate": [
        ("flips columns, not rows", "        return x.flip(-2)\n        ### END SOLUTION\n\n    def inverse",
         "        return x.flip(-1)\n        ### END SOLUTION\n\n    def inverse"),
        ("inverse turns the same way", "return torch.rot90(x, -self.quarter_turns, dims=(-2, -1))",
         "return torch.rot90(x, self.quarter_turns, dims=(-2, -1))"),
        ("clockwise", "return torch.rot90(x, self.quarter_turns, dims=(-2, -1))",
         "return torch.rot90(x, self.quarter_turns, dims=(-1, -2))"),
        ("a transpose for a quarter turn", "return torch.rot90(x, self.quarter_turns, dims=(-2, -1))",
         "return x.transpose(-2, -1) if self.quarter_turns % 2 else torch.rot90(x, self.quarter_turns, dims=(-2, -1))"),
    ],
    "permutations": [
        ("scatter, not gather", "return x.flatten(-2)[..., perm].view_as(x)",
         "return x.flatten(-2)[..., torch.argsort(perm)].view_as(x)"),
        ("the permutation is its own inverse", "return torch.argsort(perm)", "return perm"),
        ("pieces not shuffled", "shuffled = grid[order].view(n, n, piece, piece)", "shuffled = grid.view(n, n, piece, piece)"),
        ("pieces numbered column by column", "grid = torch.arange(size * size).view(n, piece, n, piece).permute(0, 2, 1, 3)",
         "grid = torch.arange(size * size).view(n, piece, n, piece).permute(2, 0, 1, 3)"),
        ("order inverted", "shuffled = grid[order].view(n, n, piece, piece)",
         "shuffled = grid[torch.argsort(order)].view(n, n, piece, piece)"),
    ],
    "view_matrix": [
        ("not transposed", "return view(basis).reshape(size, size).T", "return view(basis).reshape(size, size)"),
        ("float32", "torch.eye(size, dtype=torch.float64)", "torch.eye(size)"),
        ("determinant of size 1", "return bool(torch.allclose(matrix @ matrix.T, torch.eye(len(matrix), dtype=matrix.dtype), atol=atol))",
         "return bool(abs(abs(torch.linalg.det(matrix)) - 1) <= atol)"),
        ("orthogonal when A A^T is diagonal", "torch.allclose(matrix @ matrix.T, torch.eye(len(matrix), dtype=matrix.dtype), atol=atol)",
         "torch.allclose(matrix @ matrix.T, torch.diag(torch.diagonal(matrix @ matrix.T)), atol=atol)"),
        ("no tolerance", ", atol=atol))", ", atol=0.0))"),
    ],
    "anagram_eps": [
        ("view not undone", "estimates.append(view.inverse(eps_null + scale * (eps_y - eps_null)))",
         "estimates.append(eps_null + scale * (eps_y - eps_null))"),
        ("undone with view, not inverse", "estimates.append(view.inverse(", "estimates.append(view.view("),
        ("sum, not mean", "return torch.stack(estimates).mean(0)", "return torch.stack(estimates).sum(0)"),
        ("first view's label for every view", "eps_y, eps_null = model(seen, t, labels[:, v]), model(seen, t, null)",
         "eps_y, eps_null = model(seen, t, labels[:, 0]), model(seen, t, null)"),
        ("model asked about x_t, not the view", "eps_y, eps_null = model(seen, t, labels[:, v]), model(seen, t, null)",
         "eps_y, eps_null = model(x_t, t, labels[:, v]), model(x_t, t, null)"),
    ],
    "hybrid_eps": [
        ("bands swapped", "return blur(eps_low) + eps_high - blur(eps_high)", "return blur(eps_high) + eps_low - blur(eps_low)"),
        ("high band is the whole estimate", "return blur(eps_low) + eps_high - blur(eps_high)", "return blur(eps_low) + eps_high"),
        ("average of the two", "return blur(eps_low) + eps_high - blur(eps_high)", "return (blur(eps_low) + eps_high) / 2"),
        ("high band blurred", "return blur(eps_low) + eps_high - blur(eps_high)", "return blur(eps_low) + blur(eps_high)"),
    ],
    "merge_known": [
        ("mask the wrong way", "return known * known_part + (1 - known) * x_model", "return (1 - known) * known_part + known * x_model"),
        ("known pixels not noised", "known_part = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise",
         "known_part = x0"),
        ("no square roots", "known_part = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise",
         "known_part = alpha_bar * x0 + (1 - alpha_bar) * noise"),
        ("t_prev = -1 wraps around", "    if t_prev < 0:\n        known_part = x0\n    else:\n"
         "        alpha_bar = alpha_bars[t_prev].item()\n        known_part",
         "    if False:\n        known_part = x0\n    else:\n        alpha_bar = alpha_bars[t_prev].item()\n        known_part"),
    ],
}
