"""The paper's numbers beside ours: one markdown table per experiment.

``comparison_table(experiment, scale, measured)`` has a row per claim of the experiment
(forgetting/paper/experiments.py): the quantity, the paper's value or words, ours (the value of
the claim's key among ``measured``, the {key: value} that parse_measured read from the
figure's output), and the setting of each: the paper's (the full scale) and the one run.
"""
from forgetting.paper.scales import FULL

NOT_MEASURED = "not measured"       # the subcommand printed no line for the key
NOT_AT_SCALE = "not at this scale"  # the scale has no dataset for the claim's role
IN_FIGURE = "see the figure"        # a claim without a number


def _seeds(first, last):
    return f"seed {first}" if first == last else f"seeds {first}-{last}"


def setting_text(kind, scale, ds):
    """What was trained for a claim measured on ``kind`` of runs of ``ds`` at ``scale``."""
    if ds is None:
        return NOT_AT_SCALE
    epochs = f"{scale.epochs} epochs"
    seeds = _seeds(1, scale.seeds)
    removal = f"--remove_n {ds.remove_n}"

    def runs(flags, model=ds.model):
        return f"{model} on {ds.name}" + (f" ({' '.join(flags)})" if flags else "")

    texts = {
        "uniform": f"{runs(ds.uniform)}, {seeds}, {epochs}",
        "seed_1": f"{runs(ds.uniform)}, seed 1, {epochs}",
        "seeds": f"{runs(ds.uniform)}, {_seeds(1, scale.seeds_more)}, {epochs}",
        "removal": (f"{runs(ds.removal)}, {seeds}, {removal}, least forgotten and random, "
                    f"{epochs}"),
        "window": (f"{runs(ds.removal)}, {seeds}, windows of {scale.window[0]} starting at "
                   f"{scale.window[1]} and random, {epochs}"),
        "noise": f"{runs(ds.uniform)}, {scale.label_noise}% of labels flipped, seed 1, {epochs}",
        "pixels": (f"{runs(ds.uniform)}, noise N(120, std) on 100% of pixels, std "
                   f"{', '.join(scale.pixel_stds)}, seed 1, {epochs}"),
        "continual": (f"run_continual.py {' '.join(scale.continual)}, "
                      f"{_seeds(1, scale.continual_seeds)}, splits random "
                      f"and forgetting, orders AB and BA ({scale.continual_epochs} epochs)"),
        "small": (f"{runs(ds.uniform, scale.small_model[1])} vs {ds.model}, {seeds}, "
                  f"{epochs}"),
        "other": (f"{runs(ds.removal, scale.other_model[1])} without {ds.model}'s least "
                  f"forgotten, {_seeds(1, scale.other_model_seeds)}, {removal}, {epochs}"),
    }
    return texts[kind]


def claim_rows(experiment, scale):
    """(quantity, paper, key or None, claim) per row: a claim whose key names the epoch
    budgets or the pixel-noise stds is a row for each."""
    names = {role: (ds.name if ds else None) for role, ds in scale.datasets.items()}
    rows = []
    for claim in experiment.claims:
        if claim.key is None:
            rows.append((claim.quantity, claim.paper, None, claim))
        elif "{budgets}" in claim.key:
            for i, budget in enumerate(scale.budgets):
                statistic = claim.key.split("@")[0].capitalize()   # spearman@{budgets}: Spearman
                rows.append((f"{claim.quantity}: {statistic} after {budget} epochs",
                             claim.paper if i == 0 else "",
                             claim.key.replace("{budgets}", str(budget)), claim))
        elif "{std}" in claim.key:
            for i, std in enumerate(scale.pixel_stds):
                rows.append((f"{claim.quantity}: std {std}", claim.paper if i == 0 else "",
                             claim.key.format(std=std, **names), claim))
        else:
            rows.append((claim.quantity, claim.paper,
                         claim.key.format(**names) if names.get(claim.role) else None, claim))
    return rows


def _ours(key, claim, scale, measured):
    if scale.datasets[claim.role] is None:
        return NOT_AT_SCALE
    if key is None:
        return IN_FIGURE
    return f"{measured[key]:.4g}" if key in measured else NOT_MEASURED


def comparison_table(experiment, scale, measured):
    """The markdown of ``experiment``'s comparison at ``scale`` (a heading, then the table)."""
    lines = [f"## {experiment.id}: {experiment.figure}, {experiment.shows}", "",
             f"Scale: {scale.name}. Ours: the measured lines of the figure's subcommand.", "",
             "| quantity | paper | ours | paper's setting | our setting |",
             "|---|---|---|---|---|"]
    for quantity, paper, key, claim in claim_rows(experiment, scale):
        cells = [quantity, paper, _ours(key, claim, scale, measured),
                 setting_text(claim.setting, FULL, FULL.datasets[claim.role]),
                 setting_text(claim.setting, scale, scale.datasets[claim.role])]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
