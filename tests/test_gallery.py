"""The gallery is generated: results/README.md equals what the committed summaries give, and the
generator fills rows from headlines (nested keys, lists) and fails loudly on a missing key."""

import json
from pathlib import Path

import pytest

from dl_course import gallery

ROOT = Path(__file__).resolve().parent.parent


def test_committed_gallery_agrees_with_the_committed_summaries(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = gallery.main(check=True, results_dir=ROOT / "results")
    assert code == 0, capsys.readouterr().err


def test_rows_come_from_the_headline(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "summary.json").write_text(json.dumps(
        {"runs": [], "headline": {"losses": [0.5, 0.25], "by": {"a": {"x": 0.123}}, "n": 3}}))
    entry = {"section": gallery.SECTIONS[0], "title": "Toy", "figures": ["f.png", "g_h.png"], "shows": "what",
             "ours": "losses {losses:.2f}; x {by[a][x]:.1%}; {n} runs", "paper": "claim"}
    row = gallery.row("toy", entry, tmp_path)
    assert "losses 0.50 / 0.25; x 12.3%; 3 runs — paper: claim" in row
    assert "![](toy/f.png) [g h](toy/g_h.png)" in row and "`dl-course run toy --workdir results/toy --overwrite`" in row
    with pytest.raises(ValueError, match="cannot fill"):
        gallery.row("toy", {**entry, "ours": "{missing:.2f}"}, tmp_path)
    assert "(no reference run committed)" in gallery.row("absent", entry, tmp_path)


def test_render_replaces_only_the_generated_part():
    readme = f"intro\n\n{gallery.BEGIN}\nold\n{gallery.END}\ntail\n"
    assert gallery.render(readme, f"{gallery.BEGIN}\nnew\n{gallery.END}") == f"intro\n\n{gallery.BEGIN}\nnew\n{gallery.END}\ntail\n"
