"""The most forgotten and the unforgettable training examples as image grids (Figure 2's
examples; plot_figures.py gallery).

Which ids are shown is ``forgetting.analysis.counts.gallery_ids`` (most forgotten first,
equal counts by ascending id; unforgettable by ascending id); the pixels come from
``forgetting.data.images.example_images`` (``listed_example_images`` for a run_images.py
run). Each image is captioned with its label and its forgetting count (summed over the
sorting file's runs), and, for your own data, its file name (``short_file_name``).
"""
import matplotlib

matplotlib.use("Agg")  # before pyplot: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from forgetting.analysis.counts import gallery_ids  # noqa: E402
from forgetting.errors import UsageError  # noqa: E402

# Classes beyond which one row per class is no longer a readable figure.
MAX_CLASS_ROWS = 20
# Characters of a file name that fit under an image (overall, per class); longer names keep
# their start and, longer, their end (numbering and extension): what tells files apart.
FILE_NAME_CHARS, PER_CLASS_FILE_NAME_CHARS = 16, 12


def short_file_name(path, width=FILE_NAME_CHARS):
    """The file name of a listing path (its last '/' part), at most ``width`` characters:
    a longer one keeps its first third and the rest of its end around a '~'."""
    name = str(path).rsplit("/", 1)[-1]
    if len(name) <= width:
        return name
    head = (width - 1) // 3
    return name[:head] + "~" + name[-(width - 1 - head):]


def _caption(*lines):
    return "\n".join(line for line in lines if line)


def _show(ax, image, caption, fontsize):
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_title(caption, fontsize=fontsize, pad=2)
    ax.set_xticks([])
    ax.set_yticks([])


def _blank(ax):
    ax.axis("off")


def gallery_figure(forgotten, unforgettable, k, name_of=str, title=""):
    """Two rows of up to ``k`` images: the most forgotten, then the unforgettable.

    ``forgotten`` / ``unforgettable``: lists of ``(image, label, count)`` or ``(image, label,
    count, path)`` (your own data: the listing path, captioned by its file name);
    ``name_of`` turns a label into its caption text."""
    named = any(len(cell) > 3 for cell in [*forgotten, *unforgettable])
    fig, axes = plt.subplots(2, k, figsize=(max(1.25 * k + 0.6, 5.5), 4.3 if named else 3.8),
                             squeeze=False, layout="constrained")
    for row, (cells, what) in enumerate(((forgotten, "most forgotten"),
                                         (unforgettable, "unforgettable"))):
        for col in range(k):
            if col < len(cells):
                image, label, count, *path = cells[col]
                _show(axes[row, col], image,
                      _caption(name_of(label), f"{count} events",
                               *(short_file_name(p) for p in path)), 8)
            else:
                _blank(axes[row, col])
        _row_label(axes[row, 0], what if cells else f"{what}: none", 9)
    fig.suptitle(title, fontsize=10)
    return fig


def _row_label(ax, text, fontsize, **where):
    """``text`` left of ``ax``, which keeps its frame only if it shows an image."""
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(text, fontsize=fontsize, **where)
    if not ax.images:
        for side in ax.spines.values():
            side.set_visible(False)


def per_class_gallery_figure(rows, k, name_of=str, title=""):
    """One row per class: up to ``k`` most forgotten images on the left, up to ``k``
    unforgettable ones on the right. ``rows``: ``(label, forgotten, unforgettable)`` with
    lists of ``(image, count)`` or ``(image, count, path)``."""
    named = any(len(cell) > 2 for row in rows for cell in [*row[1], *row[2]])
    fig = plt.figure(figsize=(max(1.5 * k + 1.2, 5.5), (1.0 if named else 0.8) * len(rows) + 1.0),
                     layout="constrained")
    left, right = fig.subfigures(1, 2, wspace=0.04, width_ratios=[k + 0.6, k])
    for part, which, header in ((left, 1, f"{k} most forgotten (events)"),
                                (right, 2, f"{k} unforgettable")):
        axes = part.subplots(len(rows), k, squeeze=False)
        for r, row in enumerate(rows):
            cells = row[which]
            for col in range(k):
                if col < len(cells):
                    image, count, *path = cells[col]
                    _show(axes[r, col], image,
                          _caption(str(count) if which == 1 else "",
                                   *(short_file_name(p, PER_CLASS_FILE_NAME_CHARS)
                                     for p in path)), 7)
                else:
                    _blank(axes[r, col])
            if which == 1:
                _row_label(axes[r, 0], name_of(row[0]), 8, rotation=0, ha="right", va="center")
        part.suptitle(header, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def gallery_title(dataset, n_examples, counts):
    """The figure's title: the dataset and the share of unforgettable examples."""
    zero = int(np.sum(np.asarray(counts) == 0))
    return f"{dataset}: {zero:,} of {n_examples:,} examples unforgettable ({100 * zero / n_examples:.1f}%)"


def example_gallery(dataset, ids, counts, k=8, per_class=False, data_dir=None, seed=1):
    """The whole gallery (plot_figures.py gallery, notebooks) of a dataset the training
    scripts load: ``ids_gallery`` with the images of ``example_images`` (``data_dir``:
    torchvision's datasets; ``seed``: a ``permuted_*`` run's permutation), captioned
    ``label L`` (CIFAR-10: the class name), titled by ``gallery_title``."""
    from forgetting.data import images  # torch: only for this figure

    name_of = ((lambda label: images.CIFAR10_CLASSES[label]) if dataset == "cifar10"
               else (lambda label: f"label {label}"))
    return ids_gallery(ids, counts, k,
                       lambda shown: images.example_images(dataset, shown, data_dir, seed),
                       name_of, gallery_title(dataset, len(ids), counts), per_class)


def listed_gallery(examples, ids, counts, k=8, per_class=False, say=print):
    """The gallery of a run_images.py run from its ``__examples.tsv`` listing (``examples``):
    ``ids_gallery`` with the images of ``listed_example_images``, captioned with the class
    name, the count and each image's file name."""
    from forgetting.data import images  # torch: only for this figure

    source = images.run_data_source(examples)
    classes = source["classes"]
    if per_class and len(classes) > MAX_CLASS_ROWS:
        raise UsageError(f"--per_class draws one row per class, and {source['name']} has "
                         f"{len(classes)} (at most {MAX_CLASS_ROWS}); leave out --per_class")

    def images_of(shown):
        found = images.listed_example_images(examples, shown, say=say)
        return found.images, found.labels, found.paths

    return ids_gallery(ids, counts, k, images_of, lambda label: classes[label],
                       gallery_title(source["name"], len(ids), counts), per_class)


def ids_gallery(ids, counts, k, images_of, name_of=str, title="", per_class=False):
    """The ``k`` most forgotten and ``k`` unforgettable of the examples ``ids`` (their
    forgetting ``counts``, e.g. a sorting file's; chosen by ``gallery_ids``) as a Figure: two
    rows (``gallery_figure``), or with ``per_class`` one row per class
    (``per_class_gallery_figure``). ``images_of(ids)`` gives ``(images, labels)`` of the ids
    it is given, or ``(images, labels, file paths)`` to caption each with its file name:
    those shown, or all of them with ``per_class`` (the choice needs every label);
    ``name_of`` a label's caption."""
    ids, counts = np.asarray(ids, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    count_of = dict(zip(ids.tolist(), counts.tolist()))

    def fetch(which):
        pixels, labels, *files = images_of(which)
        return pixels, labels, (files[0] if files else None)

    def extra(files, i):  # the cell's file name, when the images have files
        return [files[i]] if files is not None else []

    if not per_class:
        forgotten, zero = gallery_ids(ids, counts, None, k)
        shown = np.concatenate([forgotten, zero])
        pixels, labels, files = fetch(shown)
        cells = [(pixels[i], labels[i], count_of[j], *extra(files, i))
                 for i, j in enumerate(shown.tolist())]
        return gallery_figure(cells[:len(forgotten)], cells[len(forgotten):], k, name_of, title)
    pixels, labels, files = fetch(ids)
    forgotten, zero = gallery_ids(ids, counts, labels, k, per_class=True)
    position = {j: i for i, j in enumerate(ids.tolist())}

    def cell(j, count):
        return (pixels[position[j]], count, *extra(files, position[j]))

    rows = [(label, [cell(j, count_of[j]) for j in forgotten[label].tolist()],
             [cell(j, 0) for j in zero[label].tolist()])
            for label in sorted(forgotten)]
    return per_class_gallery_figure(rows, k, name_of, title)
