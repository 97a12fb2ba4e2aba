"""docs/ is the contract: every script's flags as its parser defines them, and the links
between the pages. A flag added, removed or given another default without docs/flags.md
changing with it fails here; so does a link to a page or section that is not there."""
import argparse
import importlib
import os
import re

import pytest

from forgetting.errors import ArgumentParser
from forgetting.files.naming import (IMAGES_APPENDED_FLAGS, IMAGES_FNAME_FLAGS,
                                     SAMPLING_DEFAULTS, SCRIPT_FNAME_FLAGS)

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
TRAINING = ("run_mnist", "run_cifar", "run_continual", "run_images")
SAMPLED = ("run_mnist", "run_cifar", "run_images")   # the training scripts with --sampling
READING = ("order_examples_by_forgetting", "score_examples", "sweep", "collect_results",
           "plot_figures", "reproduce_paper")
ORDINALS = {f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}": n
            for n in range(1, 20)}


def read(name):
    with open(os.path.join(DOCS, name)) as handle:
        return handle.read()


def sections(text):
    """{heading: body} of the ``## `` sections of a page."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def table_rows(body):
    """The cells of every table row of ``body`` (header and rule rows included)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in body.splitlines() if line.startswith("|")]


def documented(script):
    """{flag: (default cell, file-name cell or None)} from the script's sections of flags.md."""
    pages = sections(read("flags.md"))
    bodies = [pages[f"{script}.py"]]
    if script in TRAINING:
        bodies += [pages["Shared training flags"]]
    if script in SAMPLED:
        bodies += [pages["Sampling flags"]]
    flags = {}
    for body in bodies:
        rows = table_rows(body)
        header = rows[0]
        for row in rows[2:]:
            position = row[header.index("file name")] if "file name" in header else None
            for flag in re.findall(r"`(--[\w-]+)", row[0]):
                flags[flag] = (row[1] if len(row) > 1 else "", position)
    return flags


def script_parser(script, monkeypatch):
    """The script's argparse parser, taken from its ``build_parser`` or caught as its
    ``parse_args`` is about to parse."""
    module = importlib.import_module(script)
    if hasattr(module, "build_parser"):
        return module.build_parser()
    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise LookupError

    monkeypatch.setattr(ArgumentParser, "parse_args", catch)
    with pytest.raises(LookupError):
        module.parse_args([])
    return caught[0]


def options(parser):
    """{option string: action} of ``parser`` and its subcommands, --help left out."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(options(sub))
        elif not isinstance(action, argparse._HelpAction):
            found.update({option: action for option in action.option_strings})
    return found


@pytest.mark.parametrize("script", TRAINING + READING)
def test_every_flag_is_documented_with_its_default(script, monkeypatch):
    parser_flags = options(script_parser(script, monkeypatch))
    if script == "plot_figures":  # a table of figures: each flag named in the section
        body = sections(read("flags.md"))["plot_figures.py"]
        assert sorted(f for f in parser_flags if f"`{f}" not in body) == []
        return
    docs = documented(script)
    assert sorted(set(parser_flags) - set(docs)) == [], "flags missing from docs/flags.md"
    assert sorted(set(docs) - set(parser_flags)) == [], "docs/flags.md lists flags the script lacks"
    for flag, (cell, _) in docs.items():
        default = parser_flags[flag].default
        if default in (None, False, [], "") or not re.fullmatch(r"`?[\w./-]+`?", cell):
            continue  # "required", "off", "none", a sentence: nothing to compare
        text = cell.strip("`")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert float(text) == default, f"{script} {flag}: docs say {text}, parser {default}"
        else:
            assert text == str(default), f"{script} {flag}: docs say {text}, parser {default}"


@pytest.mark.parametrize("script", TRAINING)
def test_file_name_order_is_the_documented_one(script):
    docs = documented(script)
    positions = {flag[2:]: ORDINALS[cell] for flag, (_, cell) in docs.items() if cell in ORDINALS}
    order = {**SCRIPT_FNAME_FLAGS, "run_images.py": IMAGES_FNAME_FLAGS}[f"{script}.py"]
    expected = {flag: index + 1 for index, flag in enumerate(order)}
    if script == "run_images":  # dataset: the source's name (--data_dir or --npz, "1st, as ...")
        del expected["dataset"]
        appended = {flag[2:] for flag, (_, cell) in docs.items()
                    if cell and cell.startswith("appended")}
        assert appended - {"sampling", *SAMPLING_DEFAULTS} == set(IMAGES_APPENDED_FLAGS)
    assert positions == expected


def slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_resolve():
    pages = [name for name in os.listdir(DOCS) if name.endswith(".md")]
    anchors = {name: {slug(h) for h in re.findall(r"^#+ (.+)$",
                                                  re.sub(r"```.*?```", "", read(name), flags=re.S),
                                                  flags=re.M)}
               for name in pages}
    broken = []
    for name in pages:
        for link in re.findall(r"\]\(([^)#]*)(?:#([^)]*))?\)", read(name)):
            target, anchor = link[0] or name, link[1]
            if target.startswith(("http:", "https:")):
                continue
            if target not in anchors or (anchor and anchor not in anchors[target]):
                broken.append(f"{name}: {target}#{anchor}")
    assert broken == []
