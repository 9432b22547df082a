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
