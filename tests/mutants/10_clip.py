"""Realistic wrong answers to 10_clip's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "contrastive_loss": [
        ("temperature not capped", "log_inverse_temperature.exp().clamp(max=100.0)", "log_inverse_temperature.exp()"),
        ("multiplied by tau, not divided", "log_inverse_temperature.exp().clamp(max=100.0)",
         "(-log_inverse_temperature).exp().clamp(max=100.0)"),
        ("the temperature as a number", "log_inverse_temperature.exp().clamp(max=100.0)",
         "min(math.exp(log_inverse_temperature.item()), 100.0)"),
        ("text against images", "inverse_temperature * image_embeddings @ text_embeddings.T",
         "inverse_temperature * text_embeddings @ image_embeddings.T"),
        ("rows only", "return (image_to_text + text_to_image) / 2", "return image_to_text"),
        ("sum of the halves", "return (image_to_text + text_to_image) / 2", "return image_to_text + text_to_image"),
        ("columns read as rows", "text_to_image = F.cross_entropy(logits.T, targets)",
         "text_to_image = F.cross_entropy(logits, targets)"),
        ("cap at 1/0.07", "clamp(max=100.0)", "clamp(max=1 / 0.07)"),
    ],
    "zero_shot": [
        ("mean not normalized", "classes = F.normalize(prompt_embeddings.mean(1), dim=-1)", "classes = prompt_embeddings.mean(1)"),
        ("first prompt only", "classes = F.normalize(prompt_embeddings.mean(1), dim=-1)",
         "classes = prompt_embeddings[:, 0]"),
        ("mean over the classes", "prompt_embeddings.mean(1)", "prompt_embeddings.mean(0)"),
        ("the least similar class", "return (image_embeddings @ classes.T).argmax(1)",
         "return (image_embeddings @ classes.T).argmin(1)"),
        ("best prompt, not the mean", "classes = F.normalize(prompt_embeddings.mean(1), dim=-1)\n"
         "    return (image_embeddings @ classes.T).argmax(1)",
         "return torch.einsum('ne,kpe->nkp', image_embeddings, prompt_embeddings).amax(2).argmax(1)"),
        ("normalized over the wrong axis", "F.normalize(prompt_embeddings.mean(1), dim=-1)",
         "F.normalize(prompt_embeddings.mean(1), dim=0)"),
    ],
    "recall_at_k": [
        ("ties count for the query", "ahead = (similarity >= target).sum(1) - 1", "ahead = (similarity > target).sum(1)"),
        ("off by one", "return (ahead < k).float().mean().item()", "return (ahead <= k).float().mean().item()"),
        ("the match counted as ahead of itself", "ahead = (similarity >= target).sum(1) - 1",
         "ahead = (similarity >= target).sum(1)"),
        ("ranked by the columns", "target = similarity.diagonal()[:, None]\n    ahead = (similarity >= target).sum(1) - 1",
         "target = similarity.diagonal()[None, :]\n    ahead = (similarity >= target).sum(0) - 1"),
        ("top-k by index, ties to the lower index", "target = similarity.diagonal()[:, None]\n"
         "    ahead = (similarity >= target).sum(1) - 1  # items at least as similar as the match, the match itself excluded\n"
         "    return (ahead < k).float().mean().item()",
         "top = similarity.topk(k, dim=1).indices\n"
         "    return (top == torch.arange(len(similarity))[:, None]).any(1).float().mean().item()"),
        ("a tensor, not a float", "return (ahead < k).float().mean().item()", "return (ahead < k).float().mean()"),
    ],
    "text_guidance": [
        ("halves swapped", "conditional, other = both.chunk(2)", "other, conditional = both.chunk(2)"),
        ("negative ignored", "away = torch.zeros_like(text) if negative is None else negative", "away = torch.zeros_like(text)"),
        ("negative as the prompt", "torch.cat([text, away])", "torch.cat([away, text])"),
        ("scale on the conditional only", "return other + scale * (conditional - other)", "return scale * conditional"),
        ("empty prompt as ones", "away = torch.zeros_like(text) if negative is None else negative",
         "away = torch.ones_like(text) if negative is None else negative"),
        ("two calls", "both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([text, away]).to(x.device))\n"
         "        conditional, other = both.chunk(2)",
         "conditional = model(x, t, text.to(x.device))\n        other = model(x, t, away.to(x.device))"),
        ("negative subtracted", "return other + scale * (conditional - other)",
         "return conditional + scale * (conditional - other)"),
    ],
    "edit_step": [
        ("ascent on the loss", "return (w - lr * grad).detach()", "return (w + lr * grad).detach()"),
        ("mean over the batch", "loss = -similarity.sum() + anchor * ((w - w0) ** 2).sum()",
         "loss = -similarity.mean() + anchor * ((w - w0) ** 2).mean()"),
        ("anchor pushes away", "loss = -similarity.sum() + anchor * ((w - w0) ** 2).sum()",
         "loss = -similarity.sum() - anchor * ((w - w0) ** 2).sum()"),
        ("anchor not squared", "anchor * ((w - w0) ** 2).sum()", "anchor * (w - w0).abs().sum()"),
        ("dot product of the raw images", "similarity = (clip_model.encode_image(render(w)) * text).sum(-1)",
         "similarity = (render(w).flatten(1)[:, : text.shape[1]] * text).sum(-1)"),
        ("similarity lowered", "loss = -similarity.sum() +", "loss = similarity.sum() +"),
        ("no anchor", "loss = -similarity.sum() + anchor * ((w - w0) ** 2).sum()", "loss = -similarity.sum()"),
    ],
}
