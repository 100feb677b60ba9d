"""Canonical registration identifiers: normalising written forms and telling the registry."""

from __future__ import annotations

import pytest

from service.identifiers import normalise, registry_of


@pytest.mark.parametrize("written, canonical, registry", [
    ("NCT04280705", "NCT04280705", "ClinicalTrials.gov"),
    ("nct 04280705", "NCT04280705", "ClinicalTrials.gov"),
    ("NCT\u00a004280705", "NCT04280705", "ClinicalTrials.gov"),
    ("chictr2000030261", "ChiCTR2000030261", "ChiCTR"),
    ("ChiCTR-ROC-17011223", "ChiCTR-ROC-17011223", "ChiCTR"),
    ("ChiCTR\u2010ROC\u201017011223", "ChiCTR-ROC-17011223", "ChiCTR"),
    ("EUCTR2020-001909-22-FR", "2020-001909-22", "EudraCT"),
    ("2020-001934-37", "2020-001934-37", "EudraCT"),
    ("2022-500024-30-00", "2022-500024-30-00", "CTIS"),
    ("JPRN-jRCT2031190264", "jRCT2031190264", "jRCT"),
    ("JPRN-UMIN000040341", "UMIN000040341", "UMIN-CTR"),
    ("isrctn40302986", "ISRCTN40302986", "ISRCTN"),
    ("IRCT20200328046886N1", "IRCT20200328046886N1", "IRCT"),
    ("ACTRN12620000454976", "ACTRN12620000454976", "ANZCTR"),
    ("KCT0005105", "KCT0005105", "CRiS"),
    ("CTRI/2020/12/029986", "CTRI/2020/12/029986", "CTRI"),
    ("DRKS00021690", "DRKS00021690", "DRKS"),
    ("RBR-2B9QF7H", "RBR-2b9qf7h", "ReBEC"),
    ("TCTR20200404004", "TCTR20200404004", "TCTR"),
    ("PACTR202004801273802", "PACTR202004801273802", "PACTR"),
    ("NL8491", "NL8491", "NTR"),
    ("SLCTR/2018/002", "SLCTR/2018/002", "SLCTR"),
    ("PER-106-20", "PER-106-20", "REPEC"),
    ("U1111-1131-4384", "U1111-1131-4384", "UTN"),
])
def test_normalise_and_registry(written, canonical, registry):
    assert normalise(written) == canonical
    assert registry_of(canonical) == registry
    assert normalise(canonical) == canonical  # canonical forms are fixed points


@pytest.mark.parametrize("text", ["IRCT20181201041815N", "NCT123", "ISCRTN12345678", "hello", ""])
def test_unknown_shapes_have_no_registry(text):
    assert registry_of(normalise(text)) is None
