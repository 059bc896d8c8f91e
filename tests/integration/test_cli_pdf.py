"""`ledger invoice pdf ID -o FILE` as a user runs it, on both backends."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings
from commands.messages import NewLine
from ledger.money import Money
from tests.invoice_documents import printed, text_of


@pytest.fixture
def invoice_id(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> UUID:
    """An issued kwd invoice, with the seller the environment names."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SELLER_NAME", "Gulf Trading W.L.L.")
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    app = bootstrap(Settings(database_url=database_url))
    try:
        created = app.create_draft(
            customer={"email": "ap@example.com", "name": "Дмитрий Шостакович"},
            currency="kwd",
            lines=[NewLine("Freight", "3", 1_250_500, "5")],
        ).result
        app.issue(created)
    finally:
        app.close()
    return created


def test_the_pdf_is_written_and_its_path_printed(
    invoice_id: UUID, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "invoice.pdf"
    target.parent.mkdir()

    code = main(["invoice", "pdf", str(invoice_id), "-o", str(target)])

    assert code == 0
    assert capsys.readouterr().out.strip() == str(target)
    text = text_of(target.read_bytes())
    assert "INV-000001" in text
    assert "Дмитрий Шостакович" in text
    assert "Gulf Trading W.L.L." in text
    assert printed("Amount due", text) == Money(3_939_075, "kwd").format() == "3,939.075 KWD"
    assert [p.name for p in target.parent.iterdir()] == ["invoice.pdf"]  # no partial file left


def test_an_earlier_version(invoice_id: UUID, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "draft.pdf"
    assert main(["invoice", "pdf", str(invoice_id), "-o", str(target), "--version", "1"]) == 0
    assert "DRAFT" in text_of(target.read_bytes())
    capsys.readouterr()

    assert main(["invoice", "pdf", str(invoice_id), "-o", str(target), "--version", "99"]) == 3
    assert "not found" in capsys.readouterr().err


def test_refusals_are_the_clis_errors(
    invoice_id: UUID, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = main(["invoice", "pdf", "00000000-0000-0000-0000-000000000000", "-o", str(tmp_path / "x.pdf")])
    assert (unknown, "not found" in capsys.readouterr().err) == (3, True)

    unwritable = main(["invoice", "pdf", str(invoice_id), "-o", str(tmp_path / "missing" / "x.pdf")])
    assert (unwritable, "cannot write" in capsys.readouterr().err) == (2, True)

    monkeypatch.setenv("LEDGER_PDF_FONT_DIR", str(tmp_path / "fonts"))
    fontless = main(["invoice", "pdf", str(invoice_id), "-o", str(tmp_path / "x.pdf")])
    err = capsys.readouterr().err
    assert fontless == 2
    assert str(tmp_path / "fonts" / "DejaVuSans.ttf") in err
    assert "fonts-dejavu-core" in err
    assert not (tmp_path / "x.pdf").exists()

    with pytest.raises(SystemExit) as bad_id:
        main(["invoice", "pdf", "INV-000001", "-o", str(tmp_path / "x.pdf")])
    assert bad_id.value.code == 2
