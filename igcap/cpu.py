"""What the CPU can do, read from /proc/cpuinfo: the feature flags that decide the int8 engine's speed,
memory and arithmetic.

Standard library only, and nothing from igcap: the ONNX Runtime peer (igcap/bench_peer.py) runs in its
own environment and loads this file by its path, as it loads bench_child.py.
"""

from __future__ import annotations

from pathlib import Path

# VNNI decides 8- or 7-bit activations in igcap's int8 linear (reduce_range) and the peer's quantization;
# without AVX-512, fbgemm packs for AVX2 (its inner dimension padded to a multiple of 512)
INT8_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def read_cpuinfo() -> str:
    """/proc/cpuinfo's text; "" where /proc is absent (every reader below then finds nothing)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _first_processor(cpuinfo: str | None) -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo's text (read when not given); empty where /proc is
    absent."""
    fields: dict[str, str] = {}
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        name, colon, value = line.partition(":")
        if not colon:
            if fields:  # the blank line after the first processor
                break
            continue
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_name(cpuinfo: str | None = None) -> str:
    """The first processor's ``model name`` ("AMD EPYC"); "" where /proc/cpuinfo has none (ARM, no /proc)."""
    return _first_processor(cpuinfo).get("model name", "")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The first processor's flags (x86's ``flags``, ARM's ``Features``) from /proc/cpuinfo's text (read
    when not given); empty where /proc is absent."""
    fields = _first_processor(cpuinfo)
    return set((fields.get("flags") or fields.get("Features") or "").split())


def cpu_generation(cpuinfo: str | None = None) -> str:
    """Which generation of CPU this is, where its name does not say: x86's vendor, family and model
    ("AuthenticAMD family 26 model 2": a Zen 5 EPYC; family 25 is Zen 3 or 4), ARM's implementer and part;
    "" where /proc/cpuinfo does not tell. Hosts named "AMD EPYC" alike ran int8 products at half or double
    each other's speed with the same feature flags (docs/performance.md, tenth and twelfth rounds)."""
    fields = _first_processor(cpuinfo)
    if "cpu family" in fields and "model" in fields:
        return f"{fields.get('vendor_id', '')} family {fields['cpu family']} model {fields['model']}".strip()
    if "CPU implementer" in fields and "CPU part" in fields:
        return f"implementer {fields['CPU implementer']} part {fields['CPU part']}"
    return ""


def has_vnni(flags: set[str]) -> bool:
    """int8 dot products without saturating 16-bit sums (AVX-512 VNNI or AVX-VNNI)."""
    return bool({"avx512_vnni", "avx_vnni"} & flags)


def int8_features(flags: set[str]) -> list[str]:
    """Which of INT8_FEATURES the flags hold: the benchmark's record of the machine (two CPUs named
    alike, such as "AMD EPYC", can differ in exactly these)."""
    return [f for f in INT8_FEATURES if f in flags]
