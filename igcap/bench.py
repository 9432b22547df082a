"""The benchmark against the original app's path: random-weight checkpoints of the real architecture,
the original path rebuilt faithfully and igcap's engine, each in its own process, same photos, same
number of tokens.

Two sets of four checkpoints, saved once in the form of the published repos (``save_pretrained`` +
tokenizer + image processor):

* ``distinct``: four unrelated models, like the four our own pipeline makes;
* ``published_like``: two pairs; in each pair the encoder and GPT-2 blocks 0-10 are identical and only
  the last block, the final norm and the tied embeddings differ (what the original notebook's runs made).

Scenarios, each path in its own child process (``python -m igcap.bench child ...``):

* ``cold``: process start → first caption on screen;
* ``one_photo``: one photo × four models, warm (after loading);
* ``eight_photos``: eight photos × four models;
* ``load``: the four models' load times added up (the original loads them up front; igcap as the
  first photo asks for each).

Peak memory is each child's own high-water mark (``VmHWM``), read by the child as it ends.

With ``--peer PYTHON`` a third path runs in each round: the ONNX Runtime int8 peer (``igcap/bench_peer.py``,
Optimum's ``ORTModelForVision2Seq``), in its own environment (``make peer-venv``), on int8 ONNX files it
exports from the same checkpoints once before the rounds (not timed). JSON: ``paths`` names the paths run,
each scenario gains ``peer`` and ``speedup_vs_peer`` (the peer's seconds over igcap's), and ``peer`` holds its
versions, settings and preparation times.

Every caption is forced to exactly N new tokens (``min_new_tokens = max_new_tokens = N``), greedy.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from igcap import architecture, lean_decoding, loading, optimize, threads
from igcap.architecture import EOS_TOKEN as EOS
from igcap.architecture import GPT2_EOS_ID as EOS_ID
from igcap.bench_child import PHOTO_SIZE, ChildReport, bench_photos, finish, time_scenarios  # noqa: F401 (re-exported)
from igcap.captioner import Captioner
from igcap.config import Settings
from igcap.decoding import DEFAULT_PRESET, PRESETS, DecodingSettings
from igcap.demo import build_demo_models, held_out_records
from igcap.evaluation import caption_records, spec_for
from igcap.loading import LoadOptions, ModelCache, cache_from_settings
from igcap.optimize import int8 as int8_module
from igcap.registry import DEFAULT_KEYS as KEYS

log = logging.getLogger(__name__)

SETS = ("distinct", "published_like")
SCENARIOS = ("one_photo", "eight_photos", "cold", "load")
PATHS = ("original", "igcap")
PEER = "peer"  # the ONNX Runtime int8 peer (igcap/bench_peer.py), a third path with --peer
PEER_THREADS = 2  # the peer's intra-op threads: its best on this 2-core machine
PEER_SCRIPT = Path(__file__).with_name("bench_peer.py")  # run by the peer environment's python, as a script
DEFAULT_PEER_PYTHON = Path(__file__).resolve().parent.parent / ".venv-peer" / "bin" / "python"  # make peer-venv
FORMAT_VERSION = 1  # bump when the checkpoints' recipe changes, so cached ones are rebuilt
READY_FILE = "bench-ready.json"


@dataclass(frozen=True)
class BenchOptions:
    tokens: int = 32  # new tokens per caption, forced (min = max)
    repeats: int = 3  # each measurement, median reported
    sets: tuple[str, ...] = SETS
    cache_dir: Path | None = None  # where the checkpoints are built once (default IGCAP_DATA_DIR/bench)
    quick: bool = False  # tiny models, a few tokens, one repeat: checks the machinery in seconds
    photos: int = 8  # photos in the eight_photos scenario
    peer_python: Path | None = None  # the peer environment's python (make peer-venv): adds the "peer" path
    peer_threads: int = PEER_THREADS

    def __post_init__(self):
        if self.tokens < 1:
            raise ValueError("--tokens must be at least 1")
        if self.repeats < 1:
            raise ValueError("--repeats must be at least 1")
        unknown = [s for s in self.sets if s not in SETS]
        if unknown or not self.sets:
            raise ValueError(f"--sets takes a comma-separated list of {', '.join(SETS)}; not {', '.join(unknown) or 'empty'}")
        if self.peer_python is not None and not Path(self.peer_python).is_file():
            raise ValueError(f"--peer: there is no python at {self.peer_python} (make peer-venv builds "
                             f"{DEFAULT_PEER_PYTHON.relative_to(_project_root())})")
        if self.peer_threads < 1:
            raise ValueError("the peer needs at least one thread")

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths each round runs: the original and igcap, and the peer when --peer names its python."""
        return PATHS + ((PEER,) if self.peer_python is not None else ())


def default_cache_dir(quick: bool = False) -> Path:
    return Settings.from_env().data_dir / ("bench-quick" if quick else "bench")


# ---------------------------------------------------------------- checkpoints

def real_vocab_tokenizer():
    """A byte-level BPE tokenizer with GPT-2's vocabulary size (50,257) and eos id (50,256).

    No GPT-2 tokenizer can be downloaded here; the 50,000 merges are simply the first pairs of the
    256 byte symbols, so every real token id exists and decodes to text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    merges = []
    for a in alphabet:
        for b in alphabet:
            if len(vocab) < EOS_ID:
                merges.append((a, b))
                vocab[a + b] = len(vocab)
    vocab[EOS] = EOS_ID
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS)


def vit_processor():
    return architecture.vit_processor()


def full_size_model(seed: int):
    """ViT-base/16 + GPT-2 small with cross-attention, random weights: 239,195,904 parameters."""
    return architecture.random_captioner(seed=seed).eval()


TINY_SHAPE = architecture.Shape(hidden=32, layers=2, heads=2, intermediate=64, patch_size=32, max_positions=128)


def tiny_model(seed: int, vocab: int):
    """The same classes at toy size, for --quick."""
    return architecture.random_captioner(replace(TINY_SHAPE, vocab_size=vocab), seed=seed).eval()


def fine_tuned_sibling(model, seed: int):
    """A copy that differs only where the notebook's last-block runs trained: GPT-2's last block,
    the final layer norm and the (tied) token embeddings."""
    import copy

    import torch

    sibling = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    decoder = sibling.decoder.transformer
    with torch.no_grad():
        for module in (decoder.h[-1], decoder.ln_f, decoder.wte):
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    return sibling


def build_set(set_name: str, folder: Path, quick: bool = False) -> Path:
    """Four checkpoints under folder/<set_name>/<key>/, built once (a marker file says they are complete)."""
    target = Path(folder) / set_name
    recipe = {"version": FORMAT_VERSION, "set": set_name, "quick": quick}
    ready = target / READY_FILE
    if ready.is_file() and json.loads(ready.read_text()) == recipe:
        return target
    shutil.rmtree(target, ignore_errors=True)
    tokenizer = real_vocab_tokenizer()
    make = (lambda seed: tiny_model(seed, len(tokenizer))) if quick else full_size_model
    model = None
    for i, key in enumerate(KEYS):
        log.warning("building %s/%s (random weights, %s)", set_name, key, "tiny" if quick else "full size")
        if set_name == "published_like" and i % 2 == 1:
            model = fine_tuned_sibling(model, seed=100 + i)  # the pair's first member was built just before
        else:
            model = make(seed=i if set_name == "distinct" else 10 + i)
        _save_repo(target / key, model, tokenizer)
    ready.write_text(json.dumps(recipe))
    return target


def _save_repo(path: Path, model, tokenizer) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    vit_processor().save_pretrained(path)


# ---------------------------------------------------------------- the two paths (child processes)

def run_original(set_dir: Path, tokens: int, photos: int) -> ChildReport:
    """The original app's path: four fp32 from_pretrained loads, the image processor once, generate per
    model per photo, one after another, greedy."""
    import torch
    from transformers import AutoTokenizer, ViTImageProcessor, VisionEncoderDecoderModel

    report = ChildReport("original", threads=torch.get_num_threads(), imports_done_at=time.time())
    start = time.perf_counter()
    processor = ViTImageProcessor.from_pretrained(set_dir / KEYS[0])
    models = [(VisionEncoderDecoderModel.from_pretrained(set_dir / k), AutoTokenizer.from_pretrained(set_dir / k))
              for k in KEYS]
    report.load_seconds = time.perf_counter() - start
    images = bench_photos(photos)

    def caption_all(batch, on_caption=None):
        texts, n = [], 0
        for image in batch:
            pixel_values = processor(images=image, return_tensors="pt").pixel_values
            for model, tokenizer in models:
                out = model.generate(pixel_values, max_new_tokens=tokens, min_new_tokens=tokens)
                texts.append(tokenizer.decode(out[0], skip_special_tokens=True))
                n += out.shape[1] - 1  # the first id is the decoder start token
                if on_caption:
                    on_caption()
        return texts, n

    return time_scenarios(report, caption_all, images)


@dataclass(frozen=True)
class EngineVariant:
    """igcap's engine with one lever changed, for `bench --levers`; the default is what users get."""

    name: str = "default"
    quantize: bool | None = None  # None: the engine's default (int8 on CPU)
    share_weights: bool = True
    batch_size: int = 8
    threads: int | None = None  # None: the engine's default (IGCAP_THREADS, else every core)
    attention: str | None = None  # "eager" to switch SDPA off
    lean_loading: bool = True
    int8_cache: bool = True  # prepared int8 weights from disk (the benchmark fills the cache before its rounds)
    plain_int8_call: bool = False  # int8 products called as torch.ops…linear_dynamic, __torch_function__ lookup and all
    image_keys_as_views: bool = False  # the decoder's image keys and values kept as views of the projection
    lanes: bool = True  # two models at once, one thread each, for a photo or a few (Captioner.lanes)

    def load_options(self, base: LoadOptions) -> LoadOptions:
        """The engine's load options (``base``, from the settings) with this variant's levers changed, and
        nothing else: lean decoding and light models stay as users get them."""
        return replace(base, quantize=self.quantize if self.quantize is not None else base.quantize,
                       share_weights=self.share_weights, threads=self.threads or base.threads,
                       int8_cache=base.int8_cache if self.int8_cache else None)


LEVER_VARIANTS = (
    EngineVariant(),
    EngineVariant("fp32 weights (no int8)", quantize=False),
    EngineVariant("no weight sharing", share_weights=False),
    EngineVariant("batch size 1", batch_size=1),
    EngineVariant("1 torch thread", threads=1),
    EngineVariant("2 torch threads", threads=2),
    EngineVariant("eager attention (no SDPA)", attention="eager"),
    EngineVariant("no int8 cache (quantize at every start)", int8_cache=False),
    EngineVariant("int8 after a full float load", lean_loading=False, int8_cache=False),
    EngineVariant("int8 calls through torch.ops", plain_int8_call=True),
    EngineVariant("image keys and values as views", image_keys_as_views=True),
    EngineVariant("one model at a time (no lanes)", lanes=False),
)


def run_igcap(set_dir: Path, tokens: int, photos: int, variant: EngineVariant = EngineVariant()) -> ChildReport:
    """igcap's engine through its public API: the model cache, the captioner, decoding settings.

    The encoder memo is emptied before each timed scenario: a pair sharing an encoder may reuse each
    other's output within a scenario, never a result left over from the one before."""
    # the engine's libraries imported before loading starts, as the original path does, so both load figures
    # time loading alone: torch (igcap's own modules are imported with this one); transformers only when a
    # model is not in the int8 cache or a request needs generate (igcap.light_model), so not here
    import torch

    imported = time.time()
    settings = Settings.from_env()
    cache = cache_from_settings(settings)
    if variant != EngineVariant():
        cache = ModelCache(cache.registry, variant.load_options(cache.options), max_models=4)
    if not variant.lean_loading:
        optimize.load_int8_lean = _lean_loading_off
    if variant.attention:
        _force_attention(variant.attention)
    if variant.plain_int8_call:
        int8_module._PRODUCT = torch.ops.quantized.linear_dynamic
    if variant.image_keys_as_views:
        lean_decoding.cross_keys_values = functools.partial(lean_decoding.cross_keys_values, contiguous=False)
    captioner = Captioner(cache, batch_size=variant.batch_size, lanes=variant.lanes)
    decoding = DecodingSettings(strategy="greedy", num_beams=1, no_repeat_ngram_size=0, min_new_tokens=tokens,
                                max_new_tokens=tokens, drop_fragment=False)
    report = ChildReport("igcap", threads=variant.threads or 0, variant=asdict(variant),  # 0: the engine's default
                         imports_done_at=imported)
    images = bench_photos(photos)
    first = []
    runs = captioner.caption(images[:1], KEYS, decoding, on_result=lambda run: first or first.append(time.time()))
    _raise_failures(runs)
    report.load_seconds = sum(cache.get(k).seconds for k in KEYS)
    report.first_caption_at = first[0]
    optimize.ENCODER_MEMO.clear()
    t = time.perf_counter()
    runs = captioner.caption(images[:1], KEYS, decoding)
    report.one_photo_seconds = time.perf_counter() - t
    report.captions = [r.raw_text for run in _raise_failures(runs) for r in run.results]
    report.one_photo_tokens = sum(r.tokens for run in runs for r in run.results)
    optimize.ENCODER_MEMO.clear()
    t = time.perf_counter()
    runs = captioner.caption(images, KEYS, decoding)
    report.eight_photos_seconds = time.perf_counter() - t
    report.eight_photos_tokens = sum(r.tokens for run in _raise_failures(runs) for r in run.results)
    return report


def _force_attention(implementation: str) -> None:
    """Every model the engine loads from now on uses this attention implementation."""
    instantiate = loading._instantiate_model

    def with_attention(*args, **kwargs):
        model = instantiate(*args, **kwargs)
        model.set_attn_implementation(implementation)
        return model

    loading._instantiate_model = with_attention


def _lean_loading_off(*args, **kwargs):
    raise optimize.LeanLoadUnsupported("switched off for the benchmark")


def _raise_failures(runs):
    failed = [run.error for run in runs if run.error]
    if failed:
        raise RuntimeError("; ".join(f"{e.model_key}: {e.message}" for e in failed))
    return runs


def child_main(argv: list[str]) -> int:
    """``python -m igcap.bench child PATH SET_DIR TOKENS PHOTOS OUT [VARIANT_JSON]``."""
    path, set_dir, tokens, photos, out = argv[:5]
    if path == "original":
        report = run_original(Path(set_dir), int(tokens), int(photos))
    else:
        variant = EngineVariant(**json.loads(argv[5])) if len(argv) > 5 else EngineVariant()
        report = run_igcap(Path(set_dir), int(tokens), int(photos), variant)
    finish(report)
    Path(out).write_text(json.dumps(asdict(report)))
    return 0


# ---------------------------------------------------------------- the parent

@dataclass
class Measurement:
    """One child run seen from outside: its report, the cold time and its peak resident memory."""

    report: ChildReport
    cold_seconds: float
    peak_rss_mb: float
    imports_seconds: float | None = None  # spawn → the path's libraries imported (the part of cold both pay)


def run_child(path: str, set_dir: Path, options: BenchOptions, variant: EngineVariant | None = None) -> Measurement:
    """One path in a fresh process; cold = spawn → first caption; peak RSS as the child itself saw it
    (its own VmHWM: the parent's size never leaks in, see bench_child.own_peak_rss_mb)."""
    with tempfile.TemporaryDirectory(prefix="igcap-bench-") as tmp:
        out = Path(tmp) / "report.json"
        if path == PEER:
            args = [str(options.peer_python), str(PEER_SCRIPT), "child", str(set_dir), str(peer_onnx_dir(set_dir)),
                    ",".join(KEYS), str(options.tokens), str(options.photos), str(options.peer_threads), str(out)]
            env = _peer_env()
        else:
            args = [sys.executable, "-m", "igcap.bench", "child", path, str(set_dir), str(options.tokens),
                    str(options.photos), str(out)]
            if variant is not None:
                args.append(json.dumps(asdict(variant)))
            env = _child_env(set_dir, Path(tmp))
        started = time.time()
        _run_process(args, env, out, f"the {path} path")
        report = ChildReport(**json.loads(out.read_text()))
    imports = report.imports_done_at - started if report.imports_done_at else None
    return Measurement(report, report.first_caption_at - started, report.peak_rss_mb, imports)


def _run_process(args: list[str], env: dict[str, str], out: Path, what: str, on_line=None) -> None:
    """Run a child to its end, each line of its output to ``on_line`` as it comes; BenchError with the end
    of its output unless it exits 0 and wrote ``out``."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = collections.deque(maxlen=100)
    for line in proc.stdout:
        tail.append(line)
        if on_line:
            on_line(line.rstrip("\n"))
    proc.wait()
    if proc.returncode != 0 or not out.is_file():
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{''.join(tail)[-3000:]}")


class BenchError(RuntimeError):
    """A child process failed; the message carries the end of its output."""


def _child_env(set_dir: Path, tmp: Path) -> dict[str, str]:
    """The models folder points at the set; no user overrides or demo models leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IGCAP_MODEL")}
    env.update(IGCAP_MODELS_DIR=str(set_dir), IGCAP_DEMO_MODELS_DIR=str(tmp / "no-demo-models"),
               IGCAP_INT8_CACHE_DIR=str(int8_cache_dir(set_dir)), IGCAP_INT8_CACHE_MB=str(INT8_CACHE_MB),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(filter(None, [str(_project_root()), env.get("PYTHONPATH")])))
    env.pop("IGCAP_MODELS_FILE", None)
    return env


def _peer_env() -> dict[str, str]:
    """The peer's environment: offline, and nothing of igcap's (its settings, or igcap on the path: the peer
    imports nothing from igcap, and its transformers is not igcap's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IGCAP_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def peer_onnx_dir(set_dir: Path) -> Path:
    """Where the peer keeps a set's exported int8 ONNX files: beside the checkpoints (one folder per model)."""
    return Path(set_dir).parent / "peer-onnx" / Path(set_dir).name


def check_peer(python: Path) -> dict:
    """The peer environment's versions and the instruction set it quantizes for; a clear BenchError if that
    python lacks what the peer needs."""
    with tempfile.TemporaryDirectory(prefix="igcap-bench-") as tmp:
        out = Path(tmp) / "check.json"
        proc = subprocess.run([str(python), str(PEER_SCRIPT), "check", str(out)], env=_peer_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0 or not out.is_file():
            raise BenchError(f"--peer {python} cannot run the ONNX Runtime peer (exit {proc.returncode}): "
                             f"{proc.stdout.strip()[-1500:] or 'no output'}\n"
                             f"Build its environment with `make peer-venv` (requirements-peer.txt) and pass "
                             f"--peer {DEFAULT_PEER_PYTHON.relative_to(_project_root())}")
        return json.loads(out.read_text())


def prepare_peer(python: Path, set_dir: Path, progress=None) -> dict:
    """Export and quantize the set's four checkpoints for the peer, once (kept while current); not timed.
    ``progress`` gets the peer's own progress lines as they come (minutes per full-size model)."""
    with tempfile.TemporaryDirectory(prefix="igcap-bench-") as tmp:
        out = Path(tmp) / "prepare.json"
        on_line = (lambda line: line.startswith("peer:") and progress("    " + line)) if progress else None
        _run_process([str(python), str(PEER_SCRIPT), "prepare", str(set_dir), str(peer_onnx_dir(set_dir)),
                      ",".join(KEYS), str(out)], _peer_env(), out, "preparing the peer (ONNX export + int8)", on_line)
        return json.loads(out.read_text())


INT8_CACHE_MB = 2048  # one set's four entries take about 1.3 GB


def int8_cache_dir(set_dir: Path) -> Path:
    """The int8 cache the benchmark's igcap children use for a set: beside its checkpoints, never the user's."""
    return Path(set_dir).parent / "int8-cache" / Path(set_dir).name


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_benchmark(options: BenchOptions, progress=print, partial=None) -> dict:
    """Every path on each set, alternating, round by round; medians in the issue's schema.

    Rounds go over every set before the next round starts, so a run cut short still covers both
    sets; ``partial(result)`` is called after every completed round of a set (the CLI writes the JSON then).
    With ``options.peer_python`` the ONNX Runtime peer is a third path: its environment is checked first,
    then each set is exported and quantized for it once (not timed; kept in ``peer_onnx_dir``).
    """
    folder = options.cache_dir or default_cache_dir(options.quick)
    machine = machine_info()
    peer = {"python": str(options.peer_python), **check_peer(options.peer_python)} if options.peer_python else None
    set_dirs = {s: build_set(s, folder, quick=options.quick) for s in options.sets}
    paths = options.paths
    raw: dict[str, dict[str, list[Measurement]]] = {s: {p: [] for p in paths} for s in options.sets}
    if peer:
        peer.update(threads=options.peer_threads, preparation={})
        for set_name, set_dir in set_dirs.items():
            progress(f"[{set_name}] peer: ONNX export and int8 quantization ({peer['isa']}), once, not timed …")
            peer["preparation"][set_name] = prepare_peer(options.peer_python, set_dir, progress)["models"]
    first_runs = {}
    for set_name, set_dir in set_dirs.items():  # fills the int8 cache, and measures a start that finds it empty
        progress(f"[{set_name}] igcap with an empty int8 cache (the first start after a wake on a host "
                 f"whose disk is not kept) …")
        shutil.rmtree(int8_cache_dir(set_dir), ignore_errors=True)
        m = run_child("igcap", set_dir, options)
        first_runs[set_name] = _first_run(m)
        progress(f"    load {m.report.load_seconds:.1f} s, cold {m.cold_seconds:.1f} s, peak {m.peak_rss_mb:.0f} MB")
    for r in range(options.repeats):
        for set_name, set_dir in set_dirs.items():
            order = paths if r % 2 == 0 else paths[::-1]  # alternate who goes first, so drift hits all
            for path in order:
                progress(f"[{set_name}] round {r + 1}/{options.repeats}: {path} path …")
                m = run_child(path, set_dir, options)
                raw[set_name][path].append(m)
                progress(f"    load {m.report.load_seconds:.1f} s, one photo {m.report.one_photo_seconds:.1f} s, "
                         f"eight photos {m.report.eight_photos_seconds:.1f} s, cold {m.cold_seconds:.1f} s, "
                         f"peak {m.peak_rss_mb:.0f} MB, load average {os.getloadavg()[0]:.1f}")
            if partial:
                done = {s: by for s, by in raw.items() if all(by[p] for p in paths)}
                partial(summarize(done, options, dict(machine, load_average_end=list(os.getloadavg()),
                                                      rounds_done=r + 1), folder, first_runs, peer))
    machine["load_average_end"] = list(os.getloadavg())
    return summarize(raw, options, machine, folder, first_runs, peer)


def _first_run(m: Measurement) -> dict:
    """igcap's figures from the run that found the int8 cache empty (one run, not a median)."""
    return {"cold_seconds": round(m.cold_seconds, 3), "load_seconds": round(m.report.load_seconds, 2),
            "one_photo_seconds": round(m.report.one_photo_seconds, 3), "peak_rss_mb": round(m.peak_rss_mb, 1)}


@dataclass(frozen=True)
class Target:
    """One of issue 15's targets, checked on a run's medians: ``figure`` of ``scenario`` on ``set_name`` (``speedup``:
    igcap against the original path; ``seconds`` or ``peak_rss_mb``: igcap's own) at least or at most ``bound``."""

    label: str
    set_name: str
    scenario: str
    figure: str
    bound: float
    at_most: bool = False

    def value(self, result: dict) -> float | None:
        entry = result.get(self.set_name, {}).get(self.scenario)
        if not entry:
            return None
        return entry["speedup"] if self.figure == "speedup" else entry["igcap"][self.figure]

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound


# issue 15's targets for the full-size run on a 2-core machine (the medians of one run); --quick is not comparable
TARGETS = (
    Target("cold ≥ 2×", "distinct", "cold", "speedup", 2.0),
    Target("cold ≥ 2×", "published_like", "cold", "speedup", 2.0),
    Target("load of four ≤ 4 s", "distinct", "load", "seconds", 4.0, at_most=True),
    Target("load of four ≤ 4 s", "published_like", "load", "seconds", 4.0, at_most=True),
    Target("one photo ≥ 5×", "distinct", "one_photo", "speedup", 5.0),
    Target("one photo ≥ 7×", "published_like", "one_photo", "speedup", 7.0),
    Target("eight photos ≥ 11×", "distinct", "eight_photos", "speedup", 11.0),
    Target("eight photos ≥ 14×", "published_like", "eight_photos", "speedup", 14.0),
    Target("peak ≤ 1,600 MiB", "distinct", "one_photo", "peak_rss_mb", 1600.0, at_most=True),
    Target("peak ≤ 1,200 MiB", "published_like", "one_photo", "peak_rss_mb", 1200.0, at_most=True),
)


def check_targets(result: dict) -> list[dict]:
    """Each of issue 15's targets this run's figures can speak to (its sets, and the peer when it ran: igcap ahead
    of it in every scenario), with the run's value and whether it is met; empty for a --quick run."""
    if result.get("quick"):
        return []
    checks = []
    for target in TARGETS:
        value = target.value(result)
        if value is not None:
            checks.append({"target": target.label, "set": target.set_name, "value": value, "met": target.met(value)})
    for set_name in SETS:
        ratios = [result[set_name][sc]["speedup_vs_peer"] for sc in SCENARIOS
                  if "speedup_vs_peer" in result.get(set_name, {}).get(sc, {})]
        if ratios:
            checks.append({"target": "ahead of the peer in every scenario", "set": set_name, "value": min(ratios),
                           "met": min(ratios) > 1})
    return checks


def targets_line(checks: list[dict]) -> str:
    """check_targets' verdict in one line: how many are met, and the figures of those that are not."""
    missed = [c for c in checks if not c["met"]]
    return f"issue 15's targets: {len(checks) - len(missed)} of {len(checks)} met" + (
        "; not met: " + "; ".join(f"{c['target']} ({c['set']}): {c['value']:g}" for c in missed) if missed else "")


def summarize(raw: dict, options: BenchOptions, machine: dict, folder: Path, first_runs: dict | None = None,
              peer: dict | None = None) -> dict:
    """Medians per set, scenario and path; ``first_runs``: igcap's run per set that found the int8 cache empty;
    ``peer``: the ONNX Runtime peer's environment, settings and preparation times, when it ran."""
    result = {"machine": machine, "tokens_per_caption": options.tokens, "repeats": options.repeats,
              "photos": {"one_photo": 1, "eight_photos": options.photos}, "models": len(KEYS),
              "checkpoints": str(folder), "quick": options.quick, "paths": list(options.paths),
              "peak_memory": "each child's own peak resident set (VmHWM at its end), MiB; file_pages_mb: the part of "
                             "its resident set that mapped files as it ended (RssFile + RssShmem: libraries, mostly; it varies "
                             "with the host's page cache)"}
    if peer:
        result["peer"] = peer
    for set_name, by_path in raw.items():
        result[set_name] = {scenario: _scenario(scenario, by_path) for scenario in SCENARIOS}
        first = (first_runs or {}).get(set_name)
        if first:
            result[set_name]["igcap_empty_int8_cache"] = first
    result["targets"] = check_targets(result)
    return result


def _scenario(scenario: str, by_path: dict[str, list[Measurement]]) -> dict:
    entry = {path: _path_figures(scenario, ms) for path, ms in by_path.items()}
    entry["speedup"] = round(entry["original"]["seconds"] / entry["igcap"]["seconds"], 2)
    if PEER in entry:  # > 1: igcap is faster than the peer
        entry["speedup_vs_peer"] = round(entry[PEER]["seconds"] / entry["igcap"]["seconds"], 2)
    return entry


def _path_figures(scenario: str, ms: list[Measurement]) -> dict:
    seconds = [_seconds(scenario, m) for m in ms]
    tokens = _tokens(scenario, ms[0].report)
    med = statistics.median(seconds)
    return {"seconds": round(med, 3), "peak_rss_mb": round(statistics.median(m.peak_rss_mb for m in ms), 1),
            "tokens": tokens, "tokens_per_second": round(tokens / med, 2) if tokens else None,
            "load_seconds": round(statistics.median(m.report.load_seconds for m in ms), 2),
            "runs_seconds": [round(s, 3) for s in seconds], "threads": ms[0].report.threads,
            "peak_source": ms[0].report.peak_source, "transformers_imported": ms[0].report.transformers_imported,
            **({"file_pages_mb": round(statistics.median(m.report.file_pages_mb for m in ms), 1)}
               if all(m.report.file_pages_mb is not None for m in ms) else {}),
            **({"imports_seconds": round(statistics.median(m.imports_seconds for m in ms), 3)}
               if scenario == "cold" and all(m.imports_seconds is not None for m in ms) else {})}


def _seconds(scenario: str, m: Measurement) -> float:
    return {"one_photo": m.report.one_photo_seconds, "eight_photos": m.report.eight_photos_seconds,
            "cold": m.cold_seconds, "load": m.report.load_seconds}[scenario]


def _tokens(scenario: str, report: ChildReport) -> int:
    return {"one_photo": report.one_photo_tokens, "eight_photos": report.eight_photos_tokens,
            "cold": 0, "load": 0}[scenario]


def machine_info() -> dict:
    import torch
    import transformers

    from igcap import cpu as cpu_info
    from igcap.optimize.int8 import int8_classes

    cpuinfo = cpu_info.read_cpuinfo()  # read once, for the name, generation and flags
    return {"cpu": cpu_info.cpu_name(cpuinfo) or platform.processor() or platform.machine(),
            "cpu_generation": cpu_info.cpu_generation(cpuinfo),
            "cpu_features": cpu_info.int8_features(cpu_info.cpu_flags(cpuinfo)),
            "int8_activations": "7-bit" if int8_classes().Int8Linear.reduce_range else "8-bit",
            "cores": threads.allowed_cores(), "torch_threads_default": torch.get_num_threads(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_start": list(os.getloadavg())}


def format_table(result: dict) -> str:
    """The figures as a plain-text table, one row per set and scenario."""
    m = result["machine"]
    cpu = f"{m['cpu']} ({m['cpu_generation']})" if m.get("cpu_generation") else m["cpu"]
    lines = [f"igcap bench · {m['date']} · {cpu} · {m['cores']} cores · torch {m['torch']} "
             f"({m['torch_threads_default']} threads) · {result['tokens_per_caption']} tokens per caption · "
             f"median of {result['repeats']} · load average {m['load_average_start'][0]:.1f} → "
             f"{m.get('load_average_end', [0])[0]:.1f}",
             ""]
    columns = _table_columns(PEER in result.get("paths", PATHS))
    lines.append(f"{'set':<15}{'scenario':<14}" + "".join(f"{head:>{width}}" for head, width, _ in columns))
    for set_name in SETS:
        for scenario in SCENARIOS:
            e = result.get(set_name, {}).get(scenario)
            if e:
                lines.append(f"{set_name:<15}{scenario:<14}" + "".join(f"{cell(e):>{width}}" for _, width, cell in columns))
    for set_name in SETS:
        first = result.get(set_name, {}).get("igcap_empty_int8_cache")
        if first:
            lines.append(f"igcap with an empty int8 cache ({set_name}, one run): cold {first['cold_seconds']:.2f} s, "
                         f"load {first['load_seconds']:.2f} s, peak {first['peak_rss_mb']:.0f} MB")
    for set_name in SETS:
        cold = result.get(set_name, {}).get("cold")
        if cold and all("imports_seconds" in cold[p] for p in _paths_in(cold)):
            lines.append(f"cold start ({set_name}), of which importing the path's libraries: " + ", ".join(
                f"{p} {cold[p]['imports_seconds']:.2f} of {cold[p]['seconds']:.2f} s" for p in _paths_in(cold)))
    for set_name in SETS:
        one = result.get(set_name, {}).get("one_photo")
        if one and all("file_pages_mb" in one[p] for p in _paths_in(one)):
            lines.append(f"peak ({set_name}), of which mapped files' pages (libraries, mostly: they vary with the host's "
                         "page cache): " + ", ".join(f"{p} {one[p]['file_pages_mb']:.0f} of {one[p]['peak_rss_mb']:.0f} MB"
                                                     for p in _paths_in(one)))
    if result.get("peer"):
        lines.append(_peer_line(result["peer"]))
    if result.get("targets"):
        lines.append(targets_line(result["targets"]))
    lines.append("load: the four models' load times added up (igcap loads lazily: its first photo pays them); "
                 "peak: each child's own VmHWM")
    return "\n".join(lines)


def _paths_in(entry: dict) -> list[str]:
    """The paths a scenario entry holds figures for, in the table's order."""
    return [p for p in (*PATHS, PEER) if p in entry]


def _table_columns(with_peer: bool) -> list[tuple[str, int, object]]:
    """(heading, width, cell) per column; the peer's columns (its seconds, igcap's speed relative to it, its
    tokens per second and peak) only when it ran."""
    def seconds(path):
        return lambda e: f"{e[path]['seconds']:.2f}"

    def tps(path):
        return lambda e: f"{e[path]['tokens_per_second']:.1f}" if e[path]["tokens_per_second"] else "-"

    def peak(path):
        return lambda e: f"{e[path]['peak_rss_mb']:.0f}"

    ratio = lambda key: lambda e: f"{e[key]:.2f}×"  # noqa: E731
    columns = [("original s", 11, seconds("original"), False), ("igcap s", 9, seconds("igcap"), False),
               ("peer s", 9, seconds(PEER), True), ("speedup", 9, ratio("speedup"), False),
               ("igcap vs peer", 15, ratio("speedup_vs_peer"), True), ("orig tok/s", 12, tps("original"), False),
               ("igcap tok/s", 12, tps("igcap"), False), ("peer tok/s", 12, tps(PEER), True),
               ("orig peak MB", 14, peak("original"), False), ("igcap peak MB", 15, peak("igcap"), False),
               ("peer peak MB", 14, peak(PEER), True)]
    return [(head, width, cell) for head, width, cell, peer_only in columns if with_peer or not peer_only]


def _peer_line(peer: dict) -> str:
    v = peer.get("versions", {})
    prepared = {f"{s}/{k}": p for s, models in peer.get("preparation", {}).items() for k, p in models.items() if not p["reused"]}
    line = (f"peer: ONNX Runtime {v.get('onnxruntime', '?')} int8 (dynamic, per channel, {peer.get('isa', '?')}, merged "
            f"decoder) through Optimum's ORTModelForVision2Seq (optimum-onnx {v.get('optimum-onnx', '?')}, transformers "
            f"{v.get('transformers', '?')}), {peer.get('threads', '?')} intra-op threads, eight photos as one batch per model")
    if prepared:
        line += "; export + quantize, once, not timed: " + ", ".join(
            f"{name} {p['export_seconds']:.0f} + {p['quantize_seconds']:.0f} s" for name, p in prepared.items())
    return line


# ---------------------------------------------------------------- levers

def run_levers(options: BenchOptions, set_name: str = "distinct", progress=print) -> list[dict]:
    """igcap's engine with each lever switched, one child per variant (repeats each, median)."""
    folder = options.cache_dir or default_cache_dir(options.quick)
    set_dir = build_set(set_name, folder, quick=options.quick)
    progress(f"[levers/{set_name}] filling the int8 cache …")
    run_child("igcap", set_dir, options)
    rows = []
    for variant in LEVER_VARIANTS:
        ms = []
        for _ in range(options.repeats):
            progress(f"[levers/{set_name}] {variant.name} …")
            ms.append(run_child("igcap", set_dir, options, variant))
        med = lambda f: round(statistics.median(f(m) for m in ms), 2)  # noqa: E731
        rows.append({"variant": variant.name, "set": set_name, "one_photo_seconds": med(lambda m: m.report.one_photo_seconds),
                     "eight_photos_seconds": med(lambda m: m.report.eight_photos_seconds),
                     "cold_seconds": med(lambda m: m.cold_seconds), "load_seconds": med(lambda m: m.report.load_seconds),
                     "peak_rss_mb": med(lambda m: m.peak_rss_mb), "threads": ms[0].report.threads,
                     "captions_same_as_default": ms[0].report.captions == rows[0]["captions"] if rows else True,
                     "captions": ms[0].report.captions})
        progress(f"    {rows[-1]}")
    return rows


def format_levers(rows: list[dict]) -> str:
    head = f"{'variant':<32}{'one photo s':>12}{'8 photos s':>11}{'cold s':>8}{'load s':>8}{'peak MB':>9}  same captions"
    lines = [head] + [f"{r['variant']:<32}{r['one_photo_seconds']:>12.2f}{r['eight_photos_seconds']:>11.2f}"
                      f"{r['cold_seconds']:>8.1f}{r['load_seconds']:>8.1f}{r['peak_rss_mb']:>9.0f}  "
                      f"{'yes' if r['captions_same_as_default'] else 'no'}" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- int8 agreement on the trained demo models

def int8_agreement(demo_dir: Path | None = None, progress=print) -> dict:
    """Share of held-out photos whose int8 caption is identical to the fp32 one, per demo model.

    The rule for a lossy lever: it is the default only if greedy captions agree on at least 90% of
    held-out photos. Builds the demo models (minutes, one thread) when ``demo_dir`` has none. Also
    reports the default preset (beam search), which the app uses.
    """
    demo_dir = Path(demo_dir or Settings.from_env().demo_dir)
    from igcap.data import SPLIT_VERSION, trained_split

    current = all((demo_dir / key / "config.json").is_file()
                  and (trained_split(demo_dir / key) or {}).get("version") == SPLIT_VERSION for key in KEYS)
    if not current:  # missing, or trained on another split: their held-out photos would not be held out
        progress(f"training the demo models into {demo_dir} (a few minutes) …")
        with threads.torch_threads(1):
            build_demo_models(demo_dir, report=lambda *a: None)
    records = held_out_records(demo_dir / "_data")
    result = {"machine": machine_info(), "held_out_photos": len(records), "demo_models": str(demo_dir), "models": {}}
    for preset in ("fast", DEFAULT_PRESET):
        for key in KEYS:
            spec = spec_for(str(demo_dir / key))
            fp32, int8 = (caption_records(spec, records, PRESETS[preset], quantize=q) for q in (False, True))
            same = sum(a == b for (_, a), (_, b) in zip(fp32, int8))
            entry = result["models"].setdefault(key, {})
            entry[preset] = {"identical": same, "photos": len(fp32), "agreement": round(same / max(len(fp32), 1), 4)}
            progress(f"{key} ({preset}): int8 caption identical to fp32 on {same}/{len(fp32)} held-out photos")
    for name, preset in (("greedy", "fast"), ("default", DEFAULT_PRESET)):
        same = sum(m[preset]["identical"] for m in result["models"].values())
        total = sum(m[preset]["photos"] for m in result["models"].values())
        result[f"agreement_{name}"] = round(same / max(total, 1), 4)
    result["presets"] = {"greedy": "fast", "default": DEFAULT_PRESET}
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        logging.basicConfig(level=logging.WARNING)
        sys.exit(child_main(sys.argv[2:]))
    sys.exit("usage: python -m igcap bench (this module's own entry point is for its child processes)")
