"""Registration identifiers (DOMAIN.md §3.5): normalising written forms, telling the registry, finding every
identifier of every registry in free text, and rejecting the known false positives."""

from __future__ import annotations

import dataclasses
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.identifiers import (
    CANONICAL_PATTERNS,
    Found,
    canonical,
    find_identifiers,
    normalise,
    registry_of,
    registry_record_url,
)
from service.vocabularies import REGISTRIES

ROOT = Path(__file__).resolve().parent.parent


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


# ----------------------------------------------------------------------------------------------------------
# Every example of the §3.5 table, the odd written forms and ICTRP forms: (written, canonical, registry).

EXAMPLES = [
    # ClinicalTrials.gov
    ("NCT04333550", "NCT04333550", "ClinicalTrials.gov"),
    ("NCT 00902941", "NCT00902941", "ClinicalTrials.gov"),
    ("nCt01208194", "NCT01208194", "ClinicalTrials.gov"),
    ("NCT#00379470", "NCT00379470", "ClinicalTrials.gov"),
    ("NCT#04280705", "NCT04280705", "ClinicalTrials.gov"),
    ("nct04280705", "NCT04280705", "ClinicalTrials.gov"),
    ("NCT: 04280705", "NCT04280705", "ClinicalTrials.gov"),
    ("NCT-04380818", "NCT04380818", "ClinicalTrials.gov"),
    ("NCT4357535", "NCT04357535", "ClinicalTrials.gov"),  # CT.gov resolves a dropped leading zero
    # ChiCTR, new and old forms
    ("ChiCTR2000030261", "ChiCTR2000030261", "ChiCTR"),
    ("ChiCTR-2000030261", "ChiCTR2000030261", "ChiCTR"),
    ("ChiCTR - TRC - 10000836", "ChiCTR-TRC-10000836", "ChiCTR"),
    ("ChiCTRIOR15006626", "ChiCTR-IOR-15006626", "ChiCTR"),
    ("ChiCTR 2000030261", "ChiCTR2000030261", "ChiCTR"),
    ("ChiCTR-ROC-17011223", "ChiCTR-ROC-17011223", "ChiCTR"),
    ("ChiCTR-OCS-13003526", "ChiCTR-OCS-13003526", "ChiCTR"),
    ("ChiCTR-TTRCC-14004829", "ChiCTR-TTRCC-14004829", "ChiCTR"),
    ("chictr-roc-17011223", "ChiCTR-ROC-17011223", "ChiCTR"),
    # ISRCTN
    ("ISRCTN78805636", "ISRCTN78805636", "ISRCTN"),
    ("ISRCTN 02452400", "ISRCTN02452400", "ISRCTN"),
    ("ISRCTN: 15022307", "ISRCTN15022307", "ISRCTN"),
    # EudraCT, with and without EUCTR prefix and country suffix
    ("2004-002714-11", "2004-002714-11", "EudraCT"),
    ("EUCTR2020-001909-22-FR", "2020-001909-22", "EudraCT"),
    ("2020-001934-37-ES", "2020-001934-37", "EudraCT"),
    ("EUCTR2020-001909-22", "2020-001909-22", "EudraCT"),
    ("EUCTR2020-001909-22-3RD", "2020-001909-22", "EudraCT"),
    ("EudraCT2020-000936-23", "2020-000936-23", "EudraCT"),
    ("2020 001500 41", "2020-001500-41", "EudraCT"),
    # CTIS
    ("2022-500024-30-00", "2022-500024-30-00", "CTIS"),
    ("CTIS2025-520964-16-00", "2025-520964-16-00", "CTIS"),
    # DRKS
    ("DRKS00005115", "DRKS00005115", "DRKS"),
    ("DRKS-IDDRKS00025222", "DRKS00025222", "DRKS"),
    ("DRKS ID 00003498", "DRKS00003498", "DRKS"),
    ("DRKS-ID: DRKS00033562", "DRKS00033562", "DRKS"),
    # IRCT, new and old
    ("IRCT20200310046736N1", "IRCT20200310046736N1", "IRCT"),
    ("IRCT138706211241N1", "IRCT138706211241N1", "IRCT"),
    ("irct20200328046886n12", "IRCT20200328046886N12", "IRCT"),
    # CTRI (mdr writes "-" for "/")
    ("CTRI/2020/12/029986", "CTRI/2020/12/029986", "CTRI"),
    ("CTRI/2007/091/000012", "CTRI/2007/091/000012", "CTRI"),
    ("CTRI-2020-12-029986", "CTRI/2020/12/029986", "CTRI"),
    ("CTRI/ 2020/ 12/ 029986", "CTRI/2020/12/029986", "CTRI"),
    # ANZCTR
    ("ACTRN12605000057684", "ACTRN12605000057684", "ANZCTR"),
    ("ACTRN12622001013752", "ACTRN12622001013752", "ANZCTR"),
    ("ANZCTR 12620000454976", "ACTRN12620000454976", "ANZCTR"),
    ("ACTRN12620000454976p", "ACTRN12620000454976", "ANZCTR"),
    # CRiS
    ("KCT0004176", "KCT0004176", "CRiS"),
    # UMIN-CTR
    ("UMIN000012045", "UMIN000012045", "UMIN-CTR"),
    ("UMIN:000000562", "UMIN000000562", "UMIN-CTR"),
    ("JPRN-UMIN000040341", "UMIN000040341", "UMIN-CTR"),
    ("JPRN-C000000433", "UMIN000000433", "UMIN-CTR"),
    # jRCT
    ("jRCT1040240030", "jRCT1040240030", "jRCT"),
    ("jRCT2080223938", "jRCT2080223938", "jRCT"),
    ("jRCTs071210011", "jRCTs071210011", "jRCT"),
    ("JPRN-jRCTs031200123", "jRCTs031200123", "jRCT"),
    ("JRCT2031190264", "jRCT2031190264", "jRCT"),
    # JapicCTI
    ("JapicCTI-194861", "JapicCTI-194861", "JapicCTI"),
    ("JAPICCTI 194861", "JapicCTI-194861", "JapicCTI"),
    # TCTR
    ("TCTR20210709003", "TCTR20210709003", "TCTR"),
    ("TCTR20110000022", "TCTR20110000022", "TCTR"),
    # PACTR
    ("PACTR202406532417953", "PACTR202406532417953", "PACTR"),
    ("PACTR 2010020001429343", "PACTR2010020001429343", "PACTR"),
    # NTR / NL / OMON
    ("NL9229", "NL9229", "NTR"),
    ("NTR4269", "NTR4269", "NTR"),
    ("NTR 4269", "NTR4269", "NTR"),
    ("NL-OMON54196", "NL-OMON54196", "NTR"),
    # ReBEC
    ("RBR-2b9qf7h", "RBR-2b9qf7h", "ReBEC"),
    ("RBR-8g2q8q5", "RBR-8g2q8q5", "ReBEC"),
    ("RBR-45kf9p", "RBR-45kf9p", "ReBEC"),
    # RPCEC, SLCTR, LBCTR
    ("RPCEC00000139", "RPCEC00000139", "RPCEC"),
    ("SLCTR/2018/002", "SLCTR/2018/002", "SLCTR"),
    ("SLCTR/2024/037", "SLCTR/2024/037", "SLCTR"),
    ("LBCTR2022074978", "LBCTR2022074978", "LBCTR"),
    # REPEC
    ("PER-106-20", "PER-106-20", "REPEC"),
    ("PER-002-21", "PER-002-21", "REPEC"),
    # ITMCTR
    ("ITMCTR2022000094", "ITMCTR2022000094", "ITMCTR"),
    ("ITMCTR1900002281", "ITMCTR1900002281", "ITMCTR"),
    # WHO UTN
    ("U1111-1131-4384", "U1111-1131-4384", "UTN"),
]

# Strings that are not registration identifiers, alone or in text (§3.5 counter-examples and pitfalls).
COUNTER_EXAMPLES = [
    "ISCRTN12345678",            # typo
    "IRCT20181201041815N",       # truncated IRCT
    "ZINC000052955",             # a ZINC compound, not a UMIN "C" number
    "per 100 000",               # prose, not REPEC
    "nl-2012-302759",            # a DOI part, not a Dutch trial
    "NL26560.042.09",            # a CCMO dossier number
    "C000000433",                # UMIN's old form without context
    "1111-1131-4384",            # a UTN without its "U" and without context
    "NCT0434740",                # 7 digits after a 0
    "NCT043505931",              # 9 digits
    "ChiCTR200003026",           # 9 digits
    "2020-1500-41",              # not an EudraCT shape
    "hello",
    "",
]


@pytest.mark.parametrize("written, expected, registry", EXAMPLES)
def test_canonical_of_every_example(written, expected, registry):
    assert canonical(written) == (expected, registry)
    assert normalise(written) == expected
    assert canonical(expected) == (expected, registry)  # idempotent
    assert registry_of(expected) == registry  # the canonical form passes the strict pattern


@pytest.mark.parametrize("written, expected, registry", EXAMPLES)
def test_every_example_is_found_in_a_sentence(written, expected, registry):
    context = "Netherlands Trial Register" if written.startswith("NL") else "Trial registration"
    text = f"Methods were prespecified. {context}: {written}. Registered on 26 February 2020."
    found = find_identifiers(text)
    assert [(f.identifier, f.registry) for f in found] == [(expected, registry)]
    assert found[0].written == written
    assert text[found[0].start:found[0].end] == written


@pytest.mark.parametrize("text", COUNTER_EXAMPLES)
def test_counter_examples_are_not_identifiers(text):
    assert canonical(text) is None
    assert find_identifiers(f"Trial registration: {text}.") == []


@pytest.mark.parametrize("text", [
    "The incidence was 48.9 cases per 100 000 people and 31 more per 1000 persons.",
    "See https://doi.org/10.1136/bmjopen-nl-2012-302759 on the Netherlands Trial Register.",
    "Approved by the CCMO (NL26560.042.09) in the Netherlands.",
    "Docking found ZINC000052955 and ZINC000003831 (UMIN-CTR is not involved).",
    "The Iranian registry lists IRCT20181201041815N as pending.",
    "Neurotensin receptor NTR1 and NTR2 signalling in control subjects.",
    "Seasonal HCoV-NL63 and HCoV-229E infections in the Netherlands Trial Register cohort.",
    "Published at doi:10.1186/2020-001500-41 and 10.1136/bmjopen-2020-041234-12.",
    "Phone 2020 0015 0041, ISCRTN12345678, NCT-like NCT0434740 and NCT043505931.",
    "A 1111-1131-4384 code with no context, and C000000433 with no registry named.",
    "Enrolment 2020-001500-41-2021 is a range, not an EudraCT number.",
])
def test_known_false_positives_in_text(text):
    assert find_identifiers(text) == []


@pytest.mark.parametrize("text, expected", [
    # EudraCT digits inside IRCT, PACTR and CTIS numbers are not EudraCT numbers
    ("IRCT20200310046736N1", [("IRCT20200310046736N1", "IRCT")]),
    ("IRCT 20200310046736N1", [("IRCT20200310046736N1", "IRCT")]),
    ("PACTR202004801273802", [("PACTR202004801273802", "PACTR")]),
    ("PACTR 2010020001429343", [("PACTR2010020001429343", "PACTR")]),
    ("2022-500024-30-00", [("2022-500024-30-00", "CTIS")]),
    ("EU CT number 2023-503456-12-00", [("2023-503456-12-00", "CTIS")]),
    # context makes the ambiguous forms count
    ("UMIN-CTR (C000000433)", [("UMIN000000433", "UMIN-CTR")]),
    ("UTN: 1111-1131-4384", [("U1111-1131-4384", "UTN")]),
    ("registered in the Netherlands Trial Register (NL8491)", [("NL8491", "NTR")]),
    ("NTR (NL8477) and NL8547", [("NL8477", "NTR"), ("NL8547", "NTR")]),
    # labels and glued forms seen in PubMed abstracts
    ("ClinicalTrials.govNCT05857124", [("NCT05857124", "ClinicalTrials.gov")]),
    ("ISRCTN, 15281137", [("ISRCTN15281137", "ISRCTN")]),
    ("Number (ISRCTN): 99840264.", [("ISRCTN99840264", "ISRCTN")]),
    ("ISRCTN Number: 72940450", [("ISRCTN72940450", "ISRCTN")]),
    ("NCT04605692-10/27/2020", [("NCT04605692", "ClinicalTrials.gov")]),
    ("https://clinicaltrials.gov/ct2/show/NCT04565509?term=NCT04565509",
     [("NCT04565509", "ClinicalTrials.gov")]),
    ("https://jrct.mhlw.go.jp/latest-detail/jRCTs071210011)", [("jRCTs071210011", "jRCT")]),
    ("EudraCT-2020-001500-41", [("2020-001500-41", "EudraCT")]),
    ("Registered in ChiCTR NCT04280705", [("NCT04280705", "ClinicalTrials.gov")]),
])
def test_ambiguous_forms(text, expected):
    assert [(f.identifier, f.registry) for f in find_identifiers(text)] == expected


def test_real_world_sentences():
    text = ("TRIAL REGISTRATION: Chinese Clinical Trial Registry, ChiCTR2000030261. "
            "Registered on 26 February 2020")
    assert find_identifiers(text) == [Found("ChiCTR2000030261", "ChiCTR", 53, 69, "ChiCTR2000030261")]
    text = "The trial was registered with EudraCT (2020-001500-41) and ClinicalTrials.gov (NCT04280705)."
    assert [(f.identifier, f.registry, f.written) for f in find_identifiers(text)] == [
        ("2020-001500-41", "EudraCT", "2020-001500-41"),
        ("NCT04280705", "ClinicalTrials.gov", "NCT04280705")]


def test_several_identifiers_are_found_in_order_once_each():
    text = ("Registered as NCT04280705 (ClinicalTrials.gov), EUCTR2020-001909-22-FR and ChiCTR-2000030261; "
            "see also nct 04280705, 2020-001909-22 and ChiCTR2000030261, plus ISRCTN 02452400.")
    found = find_identifiers(text)
    assert [(f.identifier, f.registry) for f in found] == [
        ("NCT04280705", "ClinicalTrials.gov"), ("2020-001909-22", "EudraCT"),
        ("ChiCTR2000030261", "ChiCTR"), ("ISRCTN02452400", "ISRCTN")]
    assert [f.written for f in found] == ["NCT04280705", "EUCTR2020-001909-22-FR", "ChiCTR-2000030261",
                                          "ISRCTN 02452400"]  # the first occurrence of each
    for f in found:
        assert text[f.start:f.end] == f.written
    assert [f.start for f in found] == sorted(f.start for f in found)


@pytest.mark.parametrize("written, expected", [
    ("NCT\u00a004280705", "NCT04280705"),
    ("NCT\u202f04280705", "NCT04280705"),
    ("NCT\u200b04280705", "NCT04280705"),
    ("NCT\u2009#\u200904280705", "NCT04280705"),
    ("ChiCTR\u20102000030261", "ChiCTR2000030261"),
    ("ChiCTR\u2013ROC\u201317011223", "ChiCTR-ROC-17011223"),
    ("2020\u2013001500\u201341", "2020-001500-41"),
    ("2020\u2212001500\u221241", "2020-001500-41"),
    ("2020\u00a0001500\u00a041", "2020-001500-41"),
    ("EUCTR2020\u2011001909\u201122\u2011FR", "2020-001909-22"),
    ("2022\u2014500024\u201430\u201400", "2022-500024-30-00"),
    ("CTRI/2020/12/\u00a0029986", "CTRI/2020/12/029986"),
    ("PER\u2011106\u201120", "PER-106-20"),
    ("U1111\u20131131\u20134384", "U1111-1131-4384"),
    ("RBR\u20132b9qf7h", "RBR-2b9qf7h"),
    ("NL\u2011OMON54196", "NL-OMON54196"),
    ("JapicCTI\u2010194861", "JapicCTI-194861"),
    ("DRKS\u00a0ID\u00a000003498", "DRKS00003498"),
    ("ISRCTN\u300002452400", "ISRCTN02452400"),
])
def test_unicode_dashes_and_spaces_inside_identifiers(written, expected):
    text = f"Trial registration:\u00a0{written}\u2014registered 2020."
    (found,) = find_identifiers(text)
    assert found.identifier == expected
    assert found.written == written  # the original characters, at offsets into the original text
    assert text[found.start:found.end] == written
    assert canonical(written)[0] == expected


def test_found_is_a_small_frozen_record():
    (found,) = find_identifiers("NCT04280705")
    assert found == Found("NCT04280705", "ClinicalTrials.gov", 0, 11, "NCT04280705")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.identifier = "x"


def test_registry_codes_are_the_vocabulary_codes():
    assert {code for code, _ in CANONICAL_PATTERNS} == set(REGISTRIES)
    assert {registry for _, _, registry in EXAMPLES} == set(REGISTRIES)  # every registry has examples


def test_module_is_stdlib_only():
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('identifiers', 'service/identifiers.py')\n"
            "module = sys.modules['identifiers'] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "assert module.find_identifiers('NCT04280705')[0].identifier == 'NCT04280705'\n"
            "banned = {'flask', 'peewee', 'psycopg2', 'service'}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ----------------------------------------------------------------------------------------------------------
# Linear time: a 1 MB abstract full of digit runs and near-miss prefixes against a 10 KB one.

NEAR_MISSES = ["NCT 0", "NCT0", "2020-0", "2020-5", "2020 00", "IRCT2020", "PACTR20", "ChiCTR", "ChiCTR-ABC-",
               "CTRI/2020/", "EUCTR2020-", "NL", "NTR", "UMIN", "C0000", "ZINC0000", "RBR-", "PER-", "1111-",
               "U1111-", "DRKS-ID", "jRCT", "ISRCTN ", "nl-2012-", "per 100 ", "SLCTR/20", "KCT00",
               "ACTRN126"]


def _digit_soup(size: int, seed: int) -> str:
    rnd = random.Random(seed)
    parts, length = [], 0
    while length < size:
        part = rnd.choice(NEAR_MISSES) if rnd.random() < 0.5 else "".join(
            rnd.choice("0123456789") for _ in range(rnd.randint(1, 60)))
        part += rnd.choice(["", " ", "-", "/", ".", "\u2013", "\u00a0", "N", "\n"])
        parts.append(part)
        length += len(part)
    return "".join(parts)[:size]


def _cpu_seconds(text: str) -> float:
    started = time.process_time()
    find_identifiers(text)
    return time.process_time() - started


def test_extraction_is_linear_in_the_text():
    # 100x the text must cost about 100x (quadratic scanning would cost 10,000x). Process time, best of
    # five taken in turns, so a busy machine slows both sizes alike instead of failing the test.
    small, large = _digit_soup(10_000, 1), _digit_soup(1_000_000, 2)
    times = [(_cpu_seconds(small), _cpu_seconds(large)) for _ in range(5)]
    ratio = min(t for _, t in times) / max(min(t for t, _ in times), 1e-6)
    assert ratio < 1_000, f"1 MB took {ratio:.0f} times as long as 10 KB"


@pytest.mark.parametrize("text", [
    "9" * 1_000_000,                                     # one long digit run
    "NL1234 " * 140_000,                                 # many context checks, none successful
    "2020-001500-41-" * 65_000,                          # EudraCT-like numbers that go on
    "NCT" * 330_000,                                     # prefixes without digits
], ids=["digits", "NL-without-context", "EudraCT-run-on", "prefixes"])
def test_degenerate_megabyte_inputs_are_fast(text):
    started = time.perf_counter()
    find_identifiers(text)
    assert time.perf_counter() - started < 5.0


# ----------------------------------------------------------------------------------------------------------
# Properties. Canonical identifiers per registry, from the strict patterns and from the forms in the wild.

STRICT = {code: pattern.pattern.replace(r"\d", "[0-9]") for code, pattern in CANONICAL_PATTERNS}
EXTRACTABLE = {
    "ClinicalTrials.gov": r"NCT0[0-9]{7}",
    "ChiCTR": r"ChiCTR[0-9]{10}|ChiCTR-[A-Z]{3,5}-[0-9]{8}",
    "ISRCTN": r"ISRCTN[0-9]{8}",
    "EudraCT": r"20[0-3][0-9]-0[0-9]{5}-[0-9]{2}",
    "CTIS": r"20[23][0-9]-5[0-9]{5}-[0-9]{2}-[0-9]{2}",
    "DRKS": r"DRKS000[0-9]{5}",
    "IRCT": r"IRCT[0-9]{11,14}N[0-9]{1,3}",
    "CTRI": r"CTRI/20[0-9]{2}/[0-9]{2,3}/[0-9]{6}",
    "ANZCTR": r"ACTRN12[0-9]{12}",
    "CRiS": r"KCT00[0-9]{5}",
    "UMIN-CTR": r"UMIN000[0-9]{6}",
    "jRCT": r"jRCT[a-z]?[0-9]{9,10}",
    "JapicCTI": r"JapicCTI-[0-9]{6}",
    "TCTR": r"TCTR20[0-9]{9}",
    "PACTR": r"PACTR20[0-9]{13,14}",
    "NTR": r"NTR[0-9]{2,5}|NL[0-9]{3,5}|NL-OMON[0-9]{5}",
    "ReBEC": r"RBR-[0-9a-z]{6,8}",
    "RPCEC": r"RPCEC[0-9]{8}",
    "SLCTR": r"SLCTR/20[0-9]{2}/[0-9]{3}",
    "LBCTR": r"LBCTR20[0-9]{8}",
    "REPEC": r"PER-[0-9]{3}-[0-9]{2}",
    "ITMCTR": r"ITMCTR[0-9]{10}",
    "UTN": r"U1111-[0-9]{4}-[0-9]{4}",
}
assert set(EXTRACTABLE) == set(STRICT) == set(REGISTRIES)


def _identifiers(patterns: dict[str, str]):
    return st.sampled_from(sorted(patterns)).flatmap(
        lambda code: st.tuples(st.just(code), st.from_regex(patterns[code], fullmatch=True)))


PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(_identifiers(STRICT) | _identifiers(EXTRACTABLE))
def test_canonical_identifiers_are_fixed_points(item):
    code, identifier = item
    assert canonical(identifier) == (identifier, code)
    assert normalise(identifier) == identifier
    assert registry_of(identifier) == code


def _written_variant(draw, identifier: str) -> str:
    """The identifier in another case, with a separator after its letter prefix and odd dashes."""
    text = "".join(c.swapcase() if draw(st.booleans()) else c for c in identifier)
    m = re.match(r"[A-Za-z]+", text)
    if m and not re.match(r"(?i)nl|per|u1111|rbr|chictr-", text):  # these keep their own separators
        text = text[:m.end()] + draw(st.sampled_from(["", " ", "-", ":", "#", "\u00a0", ": "])) + \
            text[m.end():].lstrip("-")
    return text.replace("-", draw(st.sampled_from(["-", "\u2010", "\u2013", "\u2212"])))


@st.composite
def _variants(draw):
    code, identifier = draw(_identifiers(EXTRACTABLE))
    return code, identifier, _written_variant(draw, identifier)


@PROPERTY
@given(_variants())
def test_canonical_is_idempotent_on_written_variants(item):
    code, identifier, written = item
    result = canonical(written)
    assert result == (identifier, code)
    assert canonical(result[0]) == result


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PROSE = st.text(alphabet=LETTERS + "      .,;:()'\"!?-", max_size=80)


@PROPERTY
@given(_identifiers(EXTRACTABLE), PROSE, PROSE, st.sampled_from([" ", " (", ": ", "; ", " [", "\u00a0"]),
       st.sampled_from([" ", ").", ", ", ". ", "]; ", "\u00a0"]))
def test_an_identifier_in_random_prose_is_found(item, before, after, opening, closing):
    code, identifier = item
    if identifier.startswith("NL"):
        before += " Netherlands Trial Register"
    text = before + opening + identifier + closing + after
    found = {f.identifier: f for f in find_identifiers(text)}
    assert identifier in found, text
    assert found[identifier].registry == code
    assert found[identifier].written.endswith(identifier)  # or "JPRN-", "DRKS ID" ... before it
    assert text[found[identifier].start:found[identifier].end] == found[identifier].written


def test_registry_record_urls():
    assert registry_record_url("nct 04280705") == "https://clinicaltrials.gov/study/NCT04280705"
    assert registry_record_url("ISRCTN12345678") == "https://www.isrctn.com/ISRCTN12345678"
    assert registry_record_url("ChiCTR-2000030261") == \
        "https://trialsearch.who.int/Trial2.aspx?TrialID=ChiCTR2000030261"
    assert registry_record_url("CTRI/2020/04/024775") == \
        "https://trialsearch.who.int/Trial2.aspx?TrialID=CTRI%2F2020%2F04%2F024775"
    assert registry_record_url("ACTRN12620000445976") == "https://www.anzctr.org.au/ACTRN12620000445976.aspx"
    assert registry_record_url("not an identifier") is None and registry_record_url(None) is None
