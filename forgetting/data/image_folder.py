"""A folder of image files as uint8 tensors, decoded once and cached (run_images.py).

Layouts (docs/training.md#your-own-data): ``DIR/train/<class>/...`` and ``DIR/test/<class>/...``,
or a single ``DIR/<class>/...`` that ``split_listing`` splits. Files are every non-hidden file
below a class folder (any depth) whose extension is an image type Pillow reads
(``IMAGE_EXTENSIONS``); hidden files and folders (``.forgetting_cache``) are skipped.

The listing is the files sorted by their path relative to DIR ('/'-separated): an example's
id is its position among the training files of that order. Class names (the folder names)
sorted give the label indices.

Decoding: grayscale files (modes ``GRAYSCALE_MODES``) stay one channel when every file is
grayscale; otherwise all are converted to RGB (alpha dropped). Files of different sizes need
``image_size`` (every image resized to image_size x image_size, bilinear).

Cache: ``<cache_dir>/images_<key>.npy``, the uint8 array (N, C, H, W) of every listed file in
listing order (train then test), where ``key`` hashes the format, ``image_size`` and every
file's relative path, size and mtime: a file added, removed, touched or rewritten changes the
key and the folder is decoded again. Written atomically; other ``images_*.npy`` files in the
cache folder (older versions of the data) are removed after a new one is written.
"""
import dataclasses
import hashlib
import os

import numpy as np

from forgetting.errors import UsageError
from forgetting.files import atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")
CACHE_DIR_NAME = ".forgetting_cache"
CACHE_FORMAT = 1


@dataclasses.dataclass
class Listing:
    """The listed files: ``paths`` relative to ``root`` ('/'-separated), their class names
    and whether each is a test file, in listing order (training files first, then test)."""

    root: str
    paths: list
    classes: list          # class name per file
    is_test: np.ndarray    # bool per file

    def stat_key(self, image_size):
        """The cache key: sha256 over the format, ``image_size`` and each file's relative
        path, test flag, size and mtime (ns)."""
        digest = hashlib.sha256(f"format {CACHE_FORMAT} image_size {image_size}\n".encode())
        for path, test in zip(self.paths, self.is_test.tolist()):
            try:
                stat = os.stat(os.path.join(self.root, path))
            except OSError as err:
                raise UsageError(f"cannot read {os.path.join(self.root, path)} "
                                 f"({err.strerror or err}); fix the file or remove it") from None
            digest.update(f"{path}\t{int(test)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def _class_files(folder):
    """Image files below ``folder`` relative to it, sorted; hidden entries skipped."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        relative = os.path.relpath(parent, folder)
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                if "\t" in name or "\n" in name or "\r" in name:  # the listing is tab-separated lines
                    raise UsageError(f"{os.path.join(parent, name)!r} has a tab or line break in "
                                     "its name; rename it")
                found.append(name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}")
    return sorted(found)


def _class_folders(folder):
    """Sorted names of the non-hidden sub-folders of ``folder``; a one-line error if none."""
    names = sorted(entry.name for entry in os.scandir(folder)
                   if entry.is_dir() and not entry.name.startswith("."))
    if not names:
        raise UsageError(f"{folder} has no class folders; put each class's images in "
                         f"{folder}/<class>/")
    return names


def _split_files(root, split):
    """{class: [path relative to root]} of ``root/split`` ('' for root itself)."""
    folder = os.path.join(root, split) if split else root
    per_class = {}
    for name in _class_folders(folder):
        prefix = f"{split}/{name}/" if split else f"{name}/"
        per_class[name] = [prefix + path for path in _class_files(os.path.join(folder, name))]
    return per_class


def list_folder(root, test_fraction, split_seed):
    """The ``Listing`` of ``root`` and its sorted class names. With ``root/train`` and
    ``root/test`` both present, those are the splits (a test class must be a training class);
    otherwise ``root/<class>/`` is split by ``split_listing``. An empty class folder is refused."""
    if not os.path.isdir(root):
        raise UsageError(f"--data_dir {root} is not a folder; give the folder of your images "
                         "(DIR/train/<class>/, DIR/test/<class>/ or DIR/<class>/)")
    has_splits = all(os.path.isdir(os.path.join(root, s)) for s in ("train", "test"))
    splits = {s: _split_files(root, s) for s in ("train", "test")} if has_splits \
        else {"": _split_files(root, "")}
    for split, per_class in splits.items():
        for name, paths in per_class.items():
            if not paths:
                where = os.path.join(root, split, name)
                raise UsageError(f"class folder {where} has no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)}); "
                                 "add images or remove the folder")
    if has_splits:
        class_names = sorted(splits["train"])
        unknown = sorted(set(splits["test"]) - set(class_names))
        if unknown:
            raise UsageError(f"{root}/test/{unknown[0]} is a class with no training images; add "
                             f"{root}/train/{unknown[0]}/ or remove it")
        train = sorted((p, c) for c, paths in splits["train"].items() for p in paths)
        test = sorted((p, c) for c, paths in splits["test"].items() for p in paths)
    else:
        class_names = sorted(splits[""])
        train, test = split_listing(splits[""], test_fraction, split_seed)
    return Listing(root, [p for p, _ in train + test], [c for _, c in train + test],
                   np.arange(len(train) + len(test)) >= len(train)), class_names


def split_listing(per_class, test_fraction, split_seed):
    """Split ``{class: sorted paths}`` into sorted (path, class) lists ``(train, test)``: per
    class in sorted class order, ``numpy.random.RandomState(split_seed).permutation`` of its
    files, the first ``round(test_fraction * n)`` of which test (at least one when
    ``test_fraction`` > 0 and the class has two files or more; always one to train)."""
    rng = np.random.RandomState(split_seed)
    train, test = [], []
    for name in sorted(per_class):
        paths = per_class[name]
        n_test = int(round(test_fraction * len(paths)))
        if test_fraction > 0 and len(paths) > 1:
            n_test = max(n_test, 1)
        n_test = min(n_test, len(paths) - 1)
        order = rng.permutation(len(paths))
        chosen = set(order[:n_test].tolist())
        for index, path in enumerate(paths):
            (test if index in chosen else train).append((path, name))
    return sorted(train), sorted(test)


def _open(path):
    from PIL import Image

    try:
        return Image.open(path)
    except Exception as err:  # Pillow raises several kinds for a file it cannot read
        raise UsageError(f"{path} is not an image Pillow can read ({type(err).__name__}); fix or "
                         "remove it") from None


def _pixels(path, image_size, sizes):
    """One file as uint8 (H, W) for grayscale modes, else (H, W, 3) RGB; resized to
    ``image_size`` square when given, else its size checked against the first file's
    (``sizes``: [(size, path)] of the first)."""
    from PIL import Image

    with _open(path) as image:
        if image_size is None:
            if not sizes:
                sizes.append((image.size, path))
            elif image.size != sizes[0][0]:
                (w0, h0), path0 = sizes[0]
                w1, h1 = image.size
                raise UsageError(f"images differ in size ({path0} is {w0}x{h0}, {path} is "
                                 f"{w1}x{h1}); give --image_size N to resize them all to N x N")
        try:
            image = image.convert("L" if image.mode in GRAYSCALE_MODES else "RGB")
            if image_size is not None and image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(image)
        except Exception as err:  # a truncated or damaged file: Pillow's many kinds
            raise UsageError(f"{path} could not be decoded ({type(err).__name__}: {err}); "
                             "fix or remove it") from None


def decode(listing, image_size):
    """uint8 (N, C, H, W) of every listed file, in one pass: grayscale stays one channel when
    all files are grayscale, else every file is RGB (a grayscale one repeated over the three
    channels, as Pillow's conversion does); resized to ``image_size`` square when given,
    else the files must share one size (a one-line error names two that differ)."""
    sizes = []
    decoded = [_pixels(os.path.join(listing.root, path), image_size, sizes)
               for path in listing.paths]
    if all(pixels.ndim == 2 for pixels in decoded):
        return np.stack(decoded)[:, None]
    out = np.empty((len(decoded), 3, *decoded[0].shape[:2]), dtype=np.uint8)
    for index, pixels in enumerate(decoded):
        out[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return out


def load_images(listing, image_size, cache_dir, say):
    """The decoded images of ``listing`` from the cache in ``cache_dir``, or decoded now and
    cached. Says which in one line."""
    key = listing.stat_key(image_size)
    path = os.path.join(cache_dir, f"images_{key[:32]}.npy")
    try:
        images = np.load(path, allow_pickle=False)
        if images.dtype == np.uint8 and images.ndim == 4 and len(images) == len(listing.paths):
            say(f"read {len(images)} decoded images from the cache {path}")
            return images
    except (OSError, ValueError):
        pass  # none yet, or unreadable: decode again
    images = decode(listing, image_size)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        atomic.remove_stale_temps(path)
        with atomic.atomic_open(path, "wb") as handle:
            np.save(handle, images, allow_pickle=False)
        for name in os.listdir(cache_dir):  # older versions of this data
            older = name != os.path.basename(path)
            if older and name.startswith("images_") and name.endswith(".npy"):
                os.remove(os.path.join(cache_dir, name))
        say(f"decoded {len(images)} images; cached them in {path}")
    except OSError as err:  # a read-only data folder still trains, without a cache
        say(f"decoded {len(images)} images; could not cache them in {cache_dir} "
            f"({err.strerror or err}); give --cache_dir to keep them")
    return images
