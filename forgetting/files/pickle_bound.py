"""Bound what a loaded pickle can expand to, so a tiny file cannot exhaust the machine.

A pickle can refer to one object many times (the memo's GET, the DUP opcode). Ten lists of
ten references to the same list, nine levels deep, is a 258-byte file that loads in
microseconds as a few dozen objects, but is a billion numbers to anything that walks it as
a tree: ``numpy.array(rows)``, a DataFrame, a copy ("billion laughs"). So ``safe_pickle.load``
refuses a file whose tree, shared references counted every time they are reached, holds
more than ``budget(file size)`` elements.

The bound: ``2 * file size + 4096`` elements, counting one per container slot (two per dict
entry), one per array element, one per character of a string or byte of a bytes value, one
per other value. Without shared references a pickle cannot exceed its size in bytes: every
element costs at least one opcode byte (an array element at least its item size), so any
file a training script, the ordering script or ``pickle.dump`` of plain data writes is
within it; the factor 2 and the constant leave room for the odd shared object (a file
repeating a list under two keys) while anything beyond is a crafted or broken file. So a
consumer holds at most a couple of elements per byte of the file.

The cost of proving that on a 200 MB stats file (30 million numbers) must stay small next
to the load itself, so no element is visited on the usual path:

* ``fresh_objects()`` lists the objects the garbage collector tracks (every list, dict,
  tuple, set, and ``_reconstruct`` array) that were made since ``start()``: ``start``
  moves everything older into the collector's permanent generation (``gc.freeze``, O(1)),
  ``finish`` moves it back (``gc.unfreeze``, O(1); older objects then count as old, which
  only changes when the collector looks at them again);
* a container or array reachable twice has a second reference, so its reference count
  gives it away: ``has_shared`` reads the counts of the fresh objects and of the arrays the
  loader made, in C (about 200,000 objects for a 50,000-example file: ~15 ms);
* only then is the tree measured exactly (``expanded_size``), with each shared object
  measured once, stopping at the budget: O(distinct objects), milliseconds for a bomb (it
  is small), a few seconds for a 200 MB file (4-5 s measured at 50,000 x 200: the rare
  case of a large file that shares something, or of a caller using ``gc.freeze``).

A count that is high for another reason (another thread's objects, an object cached by a
library) only sends the load through the exact measure, never to a refusal. When the caller
already uses ``gc.freeze``, the fresh objects cannot be told apart and every load is
measured exactly. Not seen by the fast check: a long string or bytes value referred to many
times (strings are not tracked by the collector, and finding them would mean visiting every
element, or copying the memo: ~100 ms on a 200 MB file the original scripts wrote). Its
expansion is bounded by (file size / 2)**2 characters, not exponential, and the readers
convert what they load to numbers, refusing strings (the sorting readers check a list's
items before numpy sees them).
"""
import gc
import sys

import numpy as np

_CONTAINERS = (list, tuple, dict, set, frozenset)


def budget(file_size):
    """The most elements a file of ``file_size`` bytes may expand to (see the module doc)."""
    return 2 * file_size + 4096


class Watch:
    """Tells the objects made between ``start()`` and ``fresh_objects()`` from older ones."""

    def __init__(self):
        self.frozen_here = False

    def start(self):
        # get_freeze_count walks the permanent generation: 0 (the usual case) costs nothing.
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen_here = True

    def fresh_objects(self):
        """The tracked objects made since ``start()``, or None if they cannot be told apart."""
        return gc.get_objects() if self.frozen_here else None

    def finish(self):
        if self.frozen_here:
            gc.unfreeze()
            self.frozen_here = False


def _refcounts(objects):
    """``sys.getrefcount`` of each of ``objects`` (a list), in C, as an int64 array."""
    return np.fromiter(map(sys.getrefcount, objects), dtype=np.int64, count=len(objects))


def _unshared_refs():
    """What ``_refcounts`` says of an object with one owner: the owner, the list it is found
    in, getrefcount's argument (3 on CPython 3.11; measured rather than assumed, as
    interpreters differ in what they count)."""
    owner = [[0]]
    return int(_refcounts([owner[0]])[0])


_UNSHARED_REFS = _unshared_refs()


def has_shared(watch, holder, arrays):
    """True if an object the load made has a second owner: a non-empty container among
    ``watch.fresh_objects()`` or an array in ``arrays``. ``holder``: a one-item list holding
    the loaded object (its only owner), skipped like ``arrays``. True also when the fresh
    objects cannot be told apart, so the caller measures."""
    fresh = watch.fresh_objects()
    if fresh is None:
        return True
    # Reference counts in C (~10 ms for 200,000 objects); the few objects above the count of
    # an unshared one (a dtype the memo shares, the lists passed in) are then looked at.
    candidates = np.flatnonzero(_refcounts(fresh) > _UNSHARED_REFS).tolist()
    skip, obj = (holder, arrays, fresh), None
    for index in candidates:
        obj = fresh[index]
        if type(obj) in _CONTAINERS and len(obj) and not any(obj is other for other in skip):
            return True
    del fresh, skip, obj  # the fresh list holds the tracked arrays too
    return bool(arrays) and bool((_refcounts(arrays) > _UNSHARED_REFS).any())


class SelfReferencing(ValueError):
    """The loaded object contains itself (a cycle): no stats or sorting file does."""


def expanded_size(root, limit):
    """Elements of ``root`` walked as a tree (shared objects counted each time they are
    reached, each measured once), or ``limit + 1`` as soon as the count passes ``limit``.
    Raises ``SelfReferencing`` on a cycle. O(distinct objects); no recursion."""
    sizes = {}      # id -> measured size (capped at limit + 1)
    keep = []       # keeps measured objects alive so their ids stay theirs
    on_path = set()
    stack = [(root, None)]
    while stack:
        obj, children = stack[-1]
        key = id(obj)
        if children is None:   # first visit: its own elements, then its children
            own, children = _own_and_children(obj)
            if not children:
                stack.pop()
                sizes[key] = min(own, limit + 1)
                keep.append(obj)
                continue
            on_path.add(key)
            stack[-1] = (obj, children)
            sizes[key] = own
            continue
        # later visits: add the first unmeasured child, or finish
        while children and id(children[-1]) in sizes and id(children[-1]) not in on_path:
            sizes[key] = min(sizes[key] + sizes[id(children.pop())], limit + 1)
        if sizes[key] > limit:
            return limit + 1
        if children:
            child = children[-1]
            if id(child) in on_path:
                raise SelfReferencing("it contains itself")
            stack.append((child, None))
            continue
        stack.pop()
        on_path.discard(key)
        keep.append(obj)
    return sizes[id(root)]


def _own_and_children(obj):
    """(elements of ``obj`` itself, the objects inside it that have elements of their own)."""
    kind = type(obj)
    if kind in (list, tuple, set, frozenset):
        if _numbers_only(obj):  # the usual list (one example's losses): no Python loop
            return len(obj), []
        return len(obj), [item for item in obj if _has_parts(item)]
    if kind is dict:
        return 2 * len(obj), [item for pair in obj.items() for item in pair if _has_parts(item)]
    if isinstance(obj, np.ndarray):
        items = obj.ravel().tolist() if obj.dtype.hasobject else ()
        return max(obj.size, 1), [item for item in items if _has_parts(item)]
    if isinstance(obj, (str, bytes, bytearray)):
        return max(len(obj), 1), []
    return 1, []


def _numbers_only(items):
    """True if ``items`` holds only numbers, checked in C by ``sum``, which refuses anything
    else a safe pickle can hold (a string, a container, None) except a numpy array, which
    makes the sum an array."""
    try:
        with np.errstate(all="ignore"):  # int64 overflow in the sum says nothing about items
            return not isinstance(sum(items), np.ndarray)
    except Exception:  # noqa: BLE001 - whatever it is, the item-by-item walk decides
        return False


def _has_parts(item):
    return not isinstance(item, (int, float, complex, np.generic))
