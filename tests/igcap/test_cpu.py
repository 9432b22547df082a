"""The CPU's flags, and what the benchmark records of them."""

from igcap import bench, cpu
from igcap.optimize import int8_classes

EPYC_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n\nprocessor\t: 1\nflags\t: other\n"
EPYC_VNNI = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: avx2 fma avx512f avx512_vnni avx512_bf16\n"


def test_cpu_flags_are_read_from_cpuinfo():
    assert cpu.cpu_flags(EPYC_AVX2) == {"fpu", "sse", "avx", "avx2", "fma"}  # the first processor's
    assert cpu.cpu_flags("processor\t: 0\nFeatures\t: fp asimd\n") == {"fp", "asimd"}  # ARM
    assert cpu.cpu_flags("") == set()


def test_two_cpus_of_one_name_are_told_apart_by_their_int8_features():
    """This project had both an AVX2 and an AVX-512 VNNI "AMD EPYC": the int8 figures differ by a factor of
    two, and only the features say which machine a benchmark's JSON came from."""
    avx2, vnni = cpu.cpu_flags(EPYC_AVX2), cpu.cpu_flags(EPYC_VNNI)
    assert cpu.int8_features(avx2) == ["avx2", "fma"]
    assert cpu.int8_features(vnni) == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert not cpu.has_vnni(avx2) and cpu.has_vnni(vnni) and cpu.has_vnni({"avx2", "avx_vnni"})


def test_the_benchmarks_machine_record_names_this_cpus_features_and_int8_activations():
    machine = bench.machine_info()
    flags = cpu.cpu_flags()
    assert machine["cpu_features"] == cpu.int8_features(flags)
    seven_bit = int8_classes().Int8Linear.reduce_range
    assert seven_bit == (not cpu.has_vnni(flags))
    assert machine["int8_activations"] == ("7-bit" if seven_bit else "8-bit")


ZEN5 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
        "flags\t\t: avx2 fma avx512f avx512_vnni avx_vnni avx512_bf16\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n")
ZEN4 = ZEN5.replace("cpu family\t: 26\nmodel\t\t: 2", "cpu family\t: 25\nmodel\t\t: 17", 1)


def test_two_epycs_with_the_same_features_are_told_apart_by_their_generation():
    """Two generations of EPYC both report "AMD EPYC" and may show the same int8 features (a Zen 4 and a Zen 5
    ran int8 products at half and full speed here); family and model tell them apart."""
    assert cpu.int8_features(cpu.cpu_flags(ZEN5)) == cpu.int8_features(cpu.cpu_flags(ZEN4)) == \
        ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"]
    assert cpu.cpu_generation(ZEN5) == "AuthenticAMD family 26 model 2"  # the first processor's, not the second's
    assert cpu.cpu_generation(ZEN4) == "AuthenticAMD family 25 model 17"
    assert cpu.cpu_generation("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n") == \
        "implementer 0x41 part 0xd0c"  # ARM
    assert cpu.cpu_generation("") == "" and cpu.cpu_generation(EPYC_AVX2) == ""  # nothing to tell
    assert cpu.cpu_name(ZEN5) == "AMD EPYC" and cpu.cpu_name("processor\t: 0\nFeatures\t: fp\n") == ""


def test_the_benchmarks_table_names_the_cpus_generation():
    machine = bench.machine_info()
    assert machine["cpu_generation"] == cpu.cpu_generation()
    result = {"machine": {**machine, "load_average_end": [1.0]}, "tokens_per_caption": 32, "repeats": 3}
    header = bench.format_table(result).splitlines()[0]
    named = f"{machine['cpu']} ({machine['cpu_generation']})" if machine["cpu_generation"] else machine["cpu"]
    assert named in header
    old = {**result, "machine": {k: v for k, v in result["machine"].items() if k != "cpu_generation"}}
    assert f" · {machine['cpu']} · " in bench.format_table(old).splitlines()[0]  # a JSON written before it
