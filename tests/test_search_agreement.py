"""What a text search follows (mmv_lite.search.search_agreement), and notebook 06's prose held to it."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mmv_lite import search

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"


def _bank(z_t, z_v, factors, has_text=None):
    n = len(z_v)
    emb = {
        "z_t_vat": z_t[:, None, :],
        "z_v_vat": z_v,
        "text_valid": torch.ones(n, 1, dtype=torch.bool),
        "has_text": torch.ones(n, dtype=torch.bool) if has_text is None else has_text,
        "index": torch.arange(n),
    }
    return search.ClipBank(dataset=SimpleNamespace(factors=factors), emb=emb, graph="fac")


def test_agreement_counts_the_top_k_that_share_the_querys_value_beside_chance():
    # Four clips: colours a a b b, motions x y x y. Each narration lands exactly on its own clip's video and next on
    # the clip of the same colour, so a top-2 search agrees on colour always and on motion half the time.
    z_v = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0]])
    factors = {"colour": ["a", "a", "b", "b"], "motion": ["x", "y", "x", "y"], "kind": ["k"] * 4}
    got = search.search_agreement(_bank(z_v.clone(), z_v, factors), factors=("colour", "motion", "kind"), k=2)
    assert got["colour"] == {"agreement": 100.0, "chance": 50.0, "queries": 4}
    assert got["motion"]["agreement"] == 50.0 and got["motion"]["chance"] == 50.0
    assert got["kind"]["agreement"] == 100.0 and got["kind"]["chance"] == 100.0
    assert search.follows_best_and_least(got) == ("colour", "motion")
    # Clips without a narration ask nothing.
    fewer = search.search_agreement(_bank(z_v.clone(), z_v, factors, torch.tensor([1, 1, 0, 0]).bool()), k=2)
    assert fewer["colour"]["queries"] == 2


_FACTOR = {"colour": "colour", "color": "colour", "kind": "kind", "shape": "kind", "motion": "motion"}
_FACTOR_WORD = re.compile(r"\b(" + "|".join(_FACTOR) + r")\b", re.IGNORECASE)


def notebook_claims(text: str) -> dict[str, list[str]]:
    """The factors a text names as followed best / least / hardly read / above all. "follows **X** best" and
    "**Y** least" name theirs; in a sentence saying "hardly read(s)", the sentence's first factor word (its subject)
    is the one claimed; before "above all", the nearest factor word in the sentence."""
    text = re.sub(r"\s+", " ", text.replace("#", " "))
    claims: dict[str, list[str]] = {"best": [], "least": [], "hardly": [], "above all": []}
    for w in re.findall(r"follows \*\*(\w+)\*\* best", text):
        claims["best"].append(_FACTOR.get(w.lower(), w))
    for w in re.findall(r"\*\*(\w+)\*\* least", text):
        claims["least"].append(_FACTOR.get(w.lower(), w))
    for sentence in re.split(r"(?<=[.!?])\s", text):
        words = [_FACTOR[w.lower()] for w in _FACTOR_WORD.findall(sentence)]
        if re.search(r"hardly read", sentence) and words:
            claims["hardly"].append(words[0])
        if "above all" in sentence:
            before = [_FACTOR[w.lower()] for w in _FACTOR_WORD.findall(sentence.split("above all")[0])]
            claims["above all"] += before[-1:]
    return claims


def test_claims_are_read_from_prose():
    text = "The search follows **colour** best and **motion** least. It hardly reads the kind; motion, above all."
    assert notebook_claims(text) == {
        "best": ["colour"],
        "least": ["motion"],
        "hardly": ["kind"],
        "above all": ["motion"],
    }
    old = (
        "Colour is said in most narrations but is not heard at all, and the shipped video network hardly reads it "
        "(notebook 03, section 6): matching clips with their sounds taught it other cues first, and the motion, which "
        "narrations and sounds share, above all."
    )
    assert notebook_claims(old) == {"best": [], "least": [], "hardly": ["colour"], "above all": ["motion"]}


@pytest.mark.skipif(not (SAMPLES / "mmv_lite_fac.pt").is_file(), reason="data_samples/ not made yet")
def test_notebook_06_names_as_best_and_least_what_its_search_measures():
    """Notebook 06 computes search_agreement on the test clips with the shipped checkpoint: its prose may call a
    factor best (or followed "above all") only if it is the best there, and least or "hardly read" only if least."""
    jupytext = pytest.importorskip("jupytext")
    from mmv_lite.checkpoints import load_model
    from mmv_lite.data.clips import ClipDataset

    nb = jupytext.read(ROOT / "notebooks" / "06_retrieval.py")
    assert any("search_agreement(bank" in c.source for c in nb.cells if c.cell_type == "code")
    claims = notebook_claims("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
    assert claims["best"], "notebook 06 no longer says which factor its search follows best"
    model, cfg, _ = load_model(SAMPLES / "mmv_lite_fac.pt")
    bank = search.ClipBank.build(model, ClipDataset(SAMPLES, "test", cfg.data))
    best, least = search.follows_best_and_least(search.search_agreement(bank, k=5))
    assert set(claims["best"] + claims["above all"]) <= {best}, f"measured best: {best}; the text says {claims}"
    assert set(claims["least"] + claims["hardly"]) <= {least}, f"measured least: {least}; the text says {claims}"
