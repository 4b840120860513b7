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
    assert gallery.render(readme, f"{gallery.BEGIN}\nnew\n{gallery.END}") == (
        f"intro\n\n{gallery.BEGIN}\nnew\n{gallery.END}\ntail\n")


def test_a_comparison_row_without_a_ci_makes_the_generator_fail(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "summary.json").write_text(json.dumps(
        {"runs": [], "headline": {"a": 0.51, "b": 0.47, "diff": {"estimate": 0.04, "ci": [0.01, 0.07]},
                                  "a_ci": [0.5, 0.52], "bad_ci": [0.3, 0.2]}}))
    entry = {"section": gallery.SECTIONS[0], "title": "Toy", "figures": [], "shows": "what", "compares": True,
             "ours": "a {a:.2f} vs b {b:.2f}"}
    with pytest.raises(ValueError, match="shows no 95% CI"):
        gallery.row("toy", entry, tmp_path)
    with pytest.raises(ValueError, match="shows no 95% CI"):  # the tables fail, hence `dl-course gallery`
        gallery.tables(tmp_path, {"toy": type("M", (), {"GALLERY": entry})})
    ok = gallery.row("toy", {**entry, "ours": "a {a:.2f} {a_ci:.2f} vs b: {diff[estimate]:+.2f} {diff[ci]:+.2f}"},
                     tmp_path)
    assert "a 0.51 [0.50, 0.52] vs b: +0.04 [+0.01, +0.07]" in ok
    with pytest.raises(ValueError, match="not a \\[lo, hi\\] interval"):
        gallery.row("toy", {**entry, "ours": "{bad_ci:.2f}"}, tmp_path)
    assert "a 0.51" in gallery.row("toy", {**entry, "compares": False}, tmp_path)  # rows that do not compare
