"""Realistic wrong answers to 02_procedural's exercises (see dgm.course.mutants): each must fail a test."""

MUTANTS = {
    "random_turn_path": [
        ("z = 1 turns left", "np.cumsum(1.0 - 2.0 * z)", "np.cumsum(2.0 * z - 1.0)"),
        ("step before the turn", "headings = np.deg2rad(90.0 + turn_degrees * np.cumsum(1.0 - 2.0 * z))",
         "headings = np.deg2rad(90.0 + turn_degrees * np.concatenate([[0.0], np.cumsum(1.0 - 2.0 * z)[:-1]]))"),
        ("turn in radians", "np.deg2rad(90.0 + turn_degrees * np.cumsum(1.0 - 2.0 * z))",
         "np.pi / 2 + turn_degrees * np.cumsum(1.0 - 2.0 * z)"),
        ("starts heading right", "np.deg2rad(90.0 + turn_degrees", "np.deg2rad(0.0 + turn_degrees"),
        ("step length ignored", "steps = step * np.stack(", "steps = np.stack("),
    ],
    "expand": [
        ("rules applied one after another (str.replace)",
         "        string = \"\".join(rules.get(symbol, symbol) for symbol in string)",
         "        for symbol, rhs in rules.items():\n            string = string.replace(symbol, rhs)"),
        ("symbols without a rule dropped", "rules.get(symbol, symbol)", "rules.get(symbol, \"\")"),
        ("one step short", "for _ in range(n):", "for _ in range(n - 1):"),
        ("one step too many", "for _ in range(n):", "for _ in range(n + 1):"),
    ],
    "turtle_segments": [
        ("+ turns right", "\"+\":\n            heading += angle\n        elif symbol == \"-\":\n            heading -= angle",
         "\"+\":\n            heading -= angle\n        elif symbol == \"-\":\n            heading += angle"),
        ("f draws too", "            if symbol == \"F\":\n                segments.append([[x, y], [nx, ny]])",
         "            segments.append([[x, y], [nx, ny]])"),
        ("] restores the position but not the heading", "x, y, heading = stack.pop()", "x, y, _ = stack.pop()"),
        ("an unclosed [ is accepted", "    if stack:\n        raise ValueError(\"unbalanced brackets: '[' never closed\")\n", ""),
        ("the stack used as a queue", "stack.pop()", "stack.pop(0)"),
        ("heading used as radians", "nx = x + step * math.cos(math.radians(heading))\n            ny = y + step * math.sin(math.radians(heading))",
         "nx = x + step * math.cos(heading)\n            ny = y + step * math.sin(heading)"),
    ],
    "choose_rule": [
        ("u <= P_k", "if u < total:", "if u <= total:"),
        ("compares with p_k, not the running sum", "if u < total:", "if u < p:"),
        ("options read from the end", "for rhs, p in options:", "for rhs, p in reversed(options):"),
        ("no fallback for rounding", "    return options[-1][0]", "    return None"),
    ],
    "expand_stochastic": [
        ("one uniform per step", "                parts.append(choose_rule(rule, z[used]))\n                used += 1\n        string",
         "                parts.append(choose_rule(rule, z[used]))\n        used += 1\n        string"),
        ("z restarts every step", "    string, used = axiom, 0\n    for _ in range(n):\n        parts = []",
         "    string = axiom\n    for _ in range(n):\n        used = 0\n        parts = []"),
        ("every symbol uses a uniform", "                parts.append(choose_rule(rule, z[used]))\n                used += 1",
         "                parts.append(choose_rule(rule, z[used % len(z)]))\n            used += 1"),
        ("z read from the end", "choose_rule(rule, z[used])", "choose_rule(rule, z[-1 - used])"),
        ("the first option always", "choose_rule(rule, z[used])", "rule[0][0]"),
    ],
}
