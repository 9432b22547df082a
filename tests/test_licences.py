"""No GPL in the product: every distribution requirements.txt installs (and what those require) is checked
for a GPL licence, in its declared licence and in the licences of the libraries its binary wheel bundles.

pillow-heif's metadata says BSD-3-Clause, while its binary wheels are GPLv2 through the x265 encoder they
bundle (its LICENSES_bundled.txt): the app decodes HEIC with pi-heif instead, whose wheels bundle only LGPL
libraries. LGPL (psycopg, libheif, libde265: dynamically linked) and GPL with the GCC runtime exception
(numpy's libgfortran) do not bind the product."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
GPL = re.compile(r"(?<![L\w-])(A?GPL|GNU (Affero )?General Public License)", re.I)
EXCEPTIONS = re.compile(r"WITH GCC-exception|Lesser", re.I)
# "License: GPLv2" in a list of bundled libraries, or "License for ... binary wheels: GPLv2"
BUNDLED = re.compile(r"^\s*(License|License for [^\n:]+):\s*(?P<licence>[^\n]+)$", re.M)


def pinned(requirements: Path) -> list[Requirement]:
    """The requirements of a requirements file (pip's own options, such as --find-links, left out)."""
    lines = (line.split("#")[0].strip() for line in requirements.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_requirements_ask_for_the_cpu_build_of_torch():
    """PyPI's Linux wheel of torch is the CUDA build: about 20 NVIDIA packages, several GB, most of them
    under NVIDIA's proprietary licence, on Community Cloud or any fresh Linux machine (this machine's pip
    settings hid it). The requirements name PyTorch's page of CPU wheels and its +cpu build on Linux."""
    for name in ("requirements.txt", "requirements-peer.txt"):
        text = (ROOT / name).read_text()
        assert "--find-links https://download.pytorch.org/whl/cpu/torch/" in text, name
        torch = [r for r in pinned(ROOT / name) if r.name == "torch"]
        linux = [r for r in torch if r.marker and r.marker.evaluate({"sys_platform": "linux"})]
        assert [str(r.specifier) for r in linux] == ["==2.13.0+cpu"], name
        assert all(r.marker for r in torch), name


def product_distributions(requirements: Path = ROOT / "requirements.txt") -> dict[str, md.Distribution]:
    names = [req.name for req in pinned(requirements) if req.marker is None or req.marker.evaluate()]
    found: dict[str, md.Distribution] = {}
    while names:
        name = names.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        found[key] = dist = md.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                names.append(req.name)
    return found


def gpl_findings(dist: md.Distribution) -> list[str]:
    declared = [dist.metadata.get("License-Expression") or "", dist.metadata.get("License") or "",
                *(c for c in dist.metadata.get_all("Classifier") or [] if c.startswith("License"))]
    found = [f"declared: {text[:80]}" for text in declared if GPL.search(text) and not EXCEPTIONS.search(text)]
    for file in dist.files or []:
        if ".dist-info/" in str(file) and re.search(r"licen|copying|notice", str(file), re.I):
            text = Path(dist.locate_file(file)).read_text(errors="ignore")
            found += [f"{file}: {m.group(0).strip()}" for m in BUNDLED.finditer(text)
                      if GPL.search(m.group("licence")) and not EXCEPTIONS.search(m.group("licence"))]
    return found


def test_the_product_installs_nothing_under_the_gpl():
    found = {name: gpl_findings(dist) for name, dist in product_distributions().items()}
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert "pi-heif" in found and "pillow-heif" not in found


def test_the_check_finds_a_gpl_binary_wheel_whose_metadata_says_bsd():
    # The test environment has pillow-heif (it encodes the HEIC test photos): the check must see through it.
    dist = md.distribution("pillow-heif")
    assert "GPL" not in (dist.metadata.get("License-Expression") or dist.metadata.get("License") or "")
    assert any("GPLv2" in hit for hit in gpl_findings(dist))


def spdx_identifiers(dist: md.Distribution) -> set[str]:
    """The licence and exception identifiers of the distribution's License-Expression (PEP 639: SPDX), if any."""
    expression = dist.metadata.get("License-Expression") or ""
    return {word for word in re.split(r"[\s()]+", expression) if word and word.upper() not in ("AND", "OR", "WITH")}


def test_the_readme_names_every_licence_the_product_declares():
    """The README's licence list is the product's: it left out MIT-CMU (pillow), MIT-0 (cffi), 0BSD, Zlib and
    CC0-1.0 (bundled in numpy), BSL-1.0 and LLVM-exception (torch). Each SPDX identifier a distribution
    declares is named there as written (word for word: MIT does not stand for MIT-0)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Licences\n", 1)[1].split("\n## ", 1)[0]
    missing: dict[str, list[str]] = {}
    for name, dist in sorted(product_distributions().items()):
        for word in spdx_identifiers(dist):
            if not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", section, re.I):
                missing.setdefault(word, []).append(name)
    assert missing == {}


def test_offline_the_makefile_installs_from_requirements_without_the_page_and_with_the_plain_pin(tmp_path):
    """Where PyTorch's page cannot be reached, make reads a copy of the requirements without it; the +cpu pin
    stayed in the copy, which a mirror of PyPI alone cannot satisfy (only its plain 2.13.0 is there)."""
    import subprocess

    unpage = next(line.split(":=", 1)[1].strip() for line in (ROOT / "Makefile").read_text().splitlines()
                  if line.startswith("UNPAGE"))
    for name in ("requirements.txt", "requirements-peer.txt"):
        copy = tmp_path / name
        copy.write_text((ROOT / name).read_text())
        subprocess.run(f"{unpage} {copy}", shell=True, check=True)
        assert "download.pytorch.org" not in "".join(l for l in copy.read_text().splitlines() if not l.startswith("#"))
        torch = [r for r in pinned(copy) if r.name == "torch"]
        assert {str(r.specifier) for r in torch} == {"==2.13.0"}, name
