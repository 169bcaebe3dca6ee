"""idphoto.spec_table: the README's spec table is the one the catalogue makes."""
from __future__ import annotations

from conftest import REPO
from idphoto import spec_table
from idphoto.specs import SPECS


def test_readme_table_is_generated_from_the_catalogue(capsys):
    assert spec_table.main(["--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.count("\n") == len(SPECS) + 1
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's spec table is stale: paste `python -m idphoto.spec_table --markdown`"
