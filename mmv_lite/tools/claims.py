"""Numbers in the course's text, tied to the results files they come from.

A notebook (or any Markdown) states a measured number as a link to the file that holds it, with the value's place in
that file as the link's title::

    MIL-NCE reaches [41.3](../docs/results/findings.json "findings.mil_nce.checks.0.a.mean") % R@10.

Rendered, the number reads as a number and links to its source. :func:`citations` finds every such number in a text
and :func:`check_citation` reads the file and says whether the stated number is the stored value rounded to the
digits stated; ``tests/test_notebook_claims.py`` runs it over every notebook, so text and results cannot drift apart.
The place is a dotted path through the JSON: object keys, and list indices as integers.

After the results are measured again, ``python -m mmv_lite.tools.claims notebooks/*.py`` rewrites every cited number to
its file's value (with the digits it had); read the sentences around them again before committing.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# [number](relative/path.json "dotted.path"): the number may carry a sign and decimals
_CITATION = re.compile(r"\[(?P<number>[-+]?\d+(?:\.\d+)?)\]\((?P<file>[^ )]+\.json) \"(?P<path>[^\"]+)\"\)")


@dataclass(frozen=True)
class Citation:
    number: str  # as written in the text
    file: str  # relative to the text's folder
    path: str  # dotted place in the JSON document

    @property
    def decimals(self) -> int:
        return len(self.number.partition(".")[2])


def citations(text: str) -> list[Citation]:
    """Every cited number in ``text``, in order."""
    return [Citation(m["number"], m["file"], m["path"]) for m in _CITATION.finditer(text)]


@lru_cache(maxsize=32)
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``"findings.mil_nce.checks.0.gap"``) of a JSON document. A key that itself
    holds dots (``"f_v.kind"``) is found whole: at each level the longest run of parts that is a key is taken."""
    node, parts = doc, path.split(".")
    while parts:
        if isinstance(node, list):
            part = parts.pop(0)
            if not part.lstrip("-").isdigit():
                raise KeyError(f"{path!r}: {part!r} is not a list index")
            node = node[int(part)]
        elif isinstance(node, dict):
            n = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in node), 0)
            if not n:
                raise KeyError(f"{path!r}: no key {parts[0]!r} (there are {sorted(node)[:12]})")
            node, parts = node[".".join(parts[:n])], parts[n:]
        else:
            raise KeyError(f"{path!r}: {parts[0]!r} goes below a value")
    return node


def check_citation(c: Citation, base: str | Path) -> str | None:
    """``None`` when the number ``c`` states is the cited value rounded to the stated decimals, else why not."""
    file = (Path(base) / c.file).resolve()
    if not file.is_file():
        return f"[{c.number}] cites {c.file}, which does not exist"
    try:
        value = lookup(_load(file), c.path)
    except (KeyError, IndexError) as e:
        return f"[{c.number}] cites {c.file} at {e}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"[{c.number}] cites {c.file} {c.path!r}, which holds {value!r}, not a number"
    if f"{value:.{c.decimals}f}" != f"{float(c.number):.{c.decimals}f}":
        return f"[{c.number}] cites {c.file} {c.path!r}, which holds {value:.{c.decimals + 2}f}"
    return None


def fill_citations(text: str, base: str | Path) -> str:
    """``text`` with every cited number replaced by its file's value, rounded to the digits it had."""

    def fill(m: re.Match) -> str:
        c = Citation(m["number"], m["file"], m["path"])
        value = lookup(_load((Path(base) / c.file).resolve()), c.path)
        return f'[{float(value):.{c.decimals}f}]({c.file} "{c.path}")'

    return _CITATION.sub(fill, text)


def main(paths: list[str]) -> int:
    """Rewrite the cited numbers of each file in ``paths`` (paths relative to each file's folder)."""
    if not paths:
        print("usage: python -m mmv_lite.tools.claims FILE [FILE ...]  (rewrites cited numbers to their files' values)")
        return 2
    for name in paths:
        path = Path(name)
        old = path.read_text()
        new = fill_citations(old, path.parent)
        if new != old:
            path.write_text(new)
            print(f"{name}: {len(citations(new))} cited numbers, updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
