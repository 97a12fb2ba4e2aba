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
  gives it away: ``has_shared`` checks the fresh containers, the arrays the loader made and
  the memo's strings and bytes (about 200,000 objects for a 50,000-example file, ~20 ms);
* only then is the tree measured exactly (``expanded_size``), with each shared object
  measured once, stopping at the budget: O(distinct objects), under a second for any file
  the budget lets through and at once for a bomb.

A count that is high for another reason (another thread's objects, an object cached by a
library) only sends the load through the exact measure, never to a refusal. When the caller
already uses ``gc.freeze``, the fresh objects cannot be told apart and every load is
measured exactly. Not seen by the fast check: a long string or bytes value repeated by the
DUP opcode (which no pickler writes) outside the memo; it is bounded by (file size / 2)**2
characters, and no reader here expands strings (they convert to numbers, which fails on the
first string).
"""
import gc
import sys

import numpy as np

_CONTAINERS = (list, tuple, dict, set, frozenset)
_LONG = 64  # a string or bytes value shorter than this, repeated, costs no more than its refs


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


def long_texts(memo_values):
    """The strings and bytes values long enough to matter among the unpickler's memo values."""
    return [obj for obj in memo_values if type(obj) in (str, bytes) and len(obj) >= _LONG]


def _unshared_refs():
    """What ``sys.getrefcount`` says, in has_shared's loops, of an object with one owner: the
    owner, the list it is found in, the loop variable, the call's argument (4 on CPython
    3.11; measured rather than assumed, as interpreters differ in what they count)."""
    owner = [[0]]
    for obj in [owner[0]]:
        return sys.getrefcount(obj)


_UNSHARED_REFS = _unshared_refs()


def has_shared(watch, holder, arrays, texts):
    """True if an object the load made has a second owner: a non-empty container among
    ``watch.fresh_objects()``, an array in ``arrays`` or a string in ``texts``. ``holder``:
    a one-item list holding the loaded object (its only owner), skipped like the lists
    passed in. True also when the fresh objects cannot be told apart, so the caller measures."""
    fresh = watch.fresh_objects()
    if fresh is None:
        return True
    skip, obj = (holder, arrays, texts, fresh), None
    for obj in fresh:
        if (type(obj) in _CONTAINERS and len(obj) and sys.getrefcount(obj) > _UNSHARED_REFS
                and not any(obj is other for other in skip)):
            return True
    del fresh, skip, obj  # the fresh list holds the tracked arrays too
    for group in (arrays, texts):
        for obj in group:
            if sys.getrefcount(obj) > _UNSHARED_REFS:
                return True
    return False


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
