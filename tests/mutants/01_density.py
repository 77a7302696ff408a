"""Realistic wrong answers to 01_density's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "gaussian_mle_closed_form": [
        ("unbiased 1 / (N - 1)", "cov = centred.T @ centred / x.shape[0]", "cov = centred.T @ centred / (x.shape[0] - 1)"),
        ("not centred", "cov = centred.T @ centred / x.shape[0]", "cov = x.T @ x / x.shape[0]"),
        ("outer product the wrong way", "cov = centred.T @ centred / x.shape[0]", "cov = centred @ centred.T / x.shape[0]"),
        ("variances only", "cov = centred.T @ centred / x.shape[0]", "cov = torch.diag(centred.var(dim=0, unbiased=False))"),
        ("mean over the features", "mean = x.mean(dim=0)", "mean = x.mean(dim=1, keepdim=True)"),
    ],
    "gaussian_log_prob": [
        ("log det without the factor 2", "log_det = 2 * torch.log(torch.diagonal(factor)).sum()",
         "log_det = torch.log(torch.diagonal(factor)).sum()"),
        ("log(2 pi) once, not D times", "d * math.log(2 * math.pi)", "math.log(2 * math.pi)"),
        ("log(pi)", "d * math.log(2 * math.pi)", "d * math.log(math.pi)"),
        ("Mahalanobis with cov, not its inverse", "z = torch.linalg.solve_triangular(factor, (x - mean).T, upper=False)",
         "z = factor.T @ (x - mean).T"),
        ("sum over points", "(z**2).sum(dim=0))", "(z**2).sum())"),
    ],
    "fit_by_gradient_ascent": [
        ("descends the log-likelihood", "(-average).backward()", "average.backward()"),
        ("history after the update", """        optimizer.zero_grad()
        (-average).backward()
        optimizer.step()
        history.append(average.item())""", """        optimizer.zero_grad()
        (-average).backward()
        optimizer.step()
        lower = torch.tril(a, diagonal=-1) + torch.diag(torch.exp(s))
        history.append(gaussian_log_prob(x, mean, lower @ lower.T).mean().item())"""),
        ("total, not average, log-likelihood", "average = gaussian_log_prob(x, mean, lower @ lower.T).mean()",
         "average = gaussian_log_prob(x, mean, lower @ lower.T).sum()"),
        ("diagonal without exp", "torch.diag(torch.exp(s))\n        average", "torch.diag(s)\n        average"),
        ("gradients never cleared", "        optimizer.zero_grad()\n", ""),
    ],
    "sample_gaussian": [
        ("L on the wrong side", "eps @ torch.linalg.cholesky(cov).T", "eps @ torch.linalg.cholesky(cov)"),
        ("cov instead of its factor", "eps @ torch.linalg.cholesky(cov).T", "eps @ cov"),
        ("ignores the seed", "generator=torch.Generator().manual_seed(seed), ", ""),
        ("square-root of the variances only", "eps @ torch.linalg.cholesky(cov).T", "eps * torch.diagonal(cov).sqrt()"),
    ],
    "em_responsibilities": [
        ("no weights", "torch.log(weights[k]) + gaussian_log_prob", "gaussian_log_prob"),
        ("normalized without log-sum-exp", "return torch.softmax(log_joint, dim=1)",
         "joint = log_joint.exp()\n    return joint / joint.sum(dim=1, keepdim=True)"),
        ("softmax over points", "torch.softmax(log_joint, dim=1)", "torch.softmax(log_joint, dim=0)"),
        ("weights outside the log", "torch.log(weights[k]) + gaussian_log_prob(x, means[k], covs[k])",
         "weights[k] + gaussian_log_prob(x, means[k], covs[k])"),
    ],
    "classify_hand": [
        ("1-6 missed as a straight", "set(faces) in ({1, 2, 3, 4, 5}, {2, 3, 4, 5, 6})", "set(faces) == {1, 2, 3, 4, 5}"),
        ("any five different faces is a straight", "\"straight\" if set(faces) in ({1, 2, 3, 4, 5}, {2, 3, 4, 5, 6}) else",
         "\"straight\" if len(set(faces)) == 5 else"),
        ("full house read as three of a kind", "(3, 2): \"full house\",", "(3, 2): \"three of a kind\","),
        ("multiplicities unsorted", "sorted(Counter(faces).values(), reverse=True)", "list(Counter(faces).values())"),
    ],
    "hand_probabilities": [
        ("sorted rolls (combinations with repetition)", "itertools.product(range(1, 7), repeat=5)",
         "itertools.combinations_with_replacement(range(1, 7), 5)"),
        ("dice 0..5", "itertools.product(range(1, 7), repeat=5)", "itertools.product(range(6), repeat=5)"),
        ("floats, not fractions", "Fraction(counts[hand], 6**5)", "counts[hand] / 6**5"),
        ("keys in another order", "for hand in HANDS}", "for hand in sorted(HANDS)}"),
    ],
}
