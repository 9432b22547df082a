"""Photos × models × decoding settings → captions, one model at a time (or two at once, one thread each,
for a photo or a few: ``Captioner.lanes``), each model's results handed to a callback in the order the
models were asked, as soon as they are ready. One model failing never loses the others' captions."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from igcap import beam_search, lean_beam, lean_decoding, threads
from igcap.attention import ONE_THREAD_ROWS
from igcap.config import ConfigError
from igcap.decoding import DEFAULT_PRESET, PRESETS, DecodingError, DecodingSettings
from igcap.loading import LoadedModel, ModelCache, ModelLoadError, cache_from_settings
from igcap.optimize.malloc import caption_heap, release_between_models
from igcap.text import clean_caption

log = logging.getLogger(__name__)
SAMPLING_LOCK = threading.Lock()  # held while sampling: torch's random generator is one per process
# Models are captioned two at once, on one thread each, when a batch decodes at most this many rows (photos ×
# beams: one photo with the presets' 4 or 5 beams, or a few photos greedy) — see Captioner.lanes: the batches
# whose attention runs on one thread (igcap.attention), so a model's captions are the same in a lane. Above
# it one model at a time on every thread (each lane would hold its model's image keys and values: 14.5 MB a
# row at full size, 116 MB for eight photos).
LANE_ROWS = ONE_THREAD_ROWS


@dataclass(frozen=True)
class CaptionResult:
    model_key: str
    photo_index: int  # position of the photo in the list given to caption()
    variant: int  # 0 .. num_variants-1
    text: str  # cleaned caption
    raw_text: str  # decoded text before clean-up
    tokens: int  # generated tokens, EOS not counted
    seconds: float  # this caption's share of its batch's generation time
    ended_with_eos: bool  # False when the length limit stopped it


@dataclass(frozen=True)
class ModelFailure:
    model_key: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class ModelRun:
    model_key: str
    results: tuple[CaptionResult, ...] = ()
    error: ModelFailure | None = None
    seconds: float = 0.0  # load (if it happened now) + captioning

    @property
    def ok(self) -> bool:
        return self.error is None


class CaptioningStopped(Exception):
    """``should_stop`` said True between two batches of a model: the rest of its photos are not decoded.
    Raised by caption_with and caption_together, caught by Captioner (the model cut short is no run)."""


@dataclass(frozen=True)
class ProgressEvent:
    model_key: str
    stage: str  # "loading", "captioning", "done" or "failed"
    index: int  # which of the chosen models, 0-based
    total: int


class Captioner:
    """``batch_size`` photos go through a model at once, fewer when that would decode more than
    ``max_rows`` sequences together (photos × beams or variants): the bound on one job's working memory."""

    def __init__(self, cache: ModelCache, batch_size: int = 8, max_rows: int | None = None, lanes: bool = True):
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.cache, self.batch_size, self.max_rows = cache, batch_size, max_rows
        self.two_lanes = lanes  # two models at once where ``lanes`` allows (False: always one at a time)

    def photos_per_batch(self, settings: DecodingSettings) -> int:
        if self.max_rows is None:
            return self.batch_size
        return max(1, min(self.batch_size, self.max_rows // rows_per_photo(settings)))

    def caption(self, images: Sequence, model_keys: Sequence[str], settings: DecodingSettings | None = None,
                on_result: Callable[[ModelRun], None] | None = None,
                on_progress: Callable[[ProgressEvent], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[ModelRun]:
        """Caption every image with every model; returns one ModelRun per model, in the order asked.

        ``should_stop`` is asked before each model and between a model's batches: once it says True, the
        model being decoded ends after its batch and the remaining models are skipped (the runs returned are
        those that finished; a model cut short is not among them).

        All of it runs on the cache's caption threads (IGCAP_THREADS), loading a model included: not on
        whatever count this thread started with (torch's count for new threads is process-wide).
        """
        with caption_heap(), threads.torch_threads(threads.caption_threads(self.cache.options.threads)):
            return self._caption(images, model_keys, settings or PRESETS[DEFAULT_PRESET], on_result, on_progress,
                                 should_stop)

    def _caption(self, images, model_keys, settings, on_result, on_progress, should_stop) -> list[ModelRun]:
        pixels = PixelCache(images)
        runs = []

        def notifier(i):
            key = model_keys[i]
            return lambda stage: on_progress and on_progress(ProgressEvent(key, stage, i, len(model_keys)))

        lane_threads = self.lanes(model_keys, len(pixels), settings)
        if lane_threads:
            return self._caption_in_lanes(model_keys, pixels, settings, lane_threads, notifier, on_result, should_stop)
        i = 0
        while i < len(model_keys):
            if should_stop is not None and should_stop():
                break
            if i:
                release_between_models()
            try:
                done = self._run_siblings(model_keys[i:i + 2], pixels, settings, [notifier(i), notifier(i + 1)],
                                          should_stop=should_stop) if i + 1 < len(model_keys) else None
                done = done or [self._run_model(model_keys[i], pixels, settings, notifier(i), should_stop=should_stop)]
            except CaptioningStopped:
                break
            for j, run in enumerate(done):
                notifier(i + j)("done" if run.ok else "failed")
                runs.append(run)
                if on_result:
                    on_result(run)
            i += len(done)
        return runs

    def lanes(self, model_keys: Sequence[str], photos: int, settings: DecodingSettings) -> int:
        """Torch threads per lane when this request's models are to be captioned two at once (else 0).

        A decoding step of one photo spends about 40% of its time in small operators and attention that use
        one core, while the int8 products wait on memory: two models at once, one thread each, overlap them
        (one photo × four full-size models 1.69 → 1.35 s; docs/performance.md). Each model's captions stay
        the ones it writes alone on every thread: every operator of a step gives the same bits on one thread
        or two, the attention because it runs on one (igcap.attention). So: two models or more (or sibling
        pairs, decoded together in one lane), all on the CPU and loaded as igcap's light models with at
        least two threads, for a request the lean loops serve without drawing random numbers (greedy or beam
        search: sampling takes turns on torch's one generator), at most LANE_ROWS rows per batch."""
        if not self.two_lanes or len(model_keys) < 2 or settings.strategy == "sample" or self.cache.max_models < 2:
            return 0
        if min(photos, self.photos_per_batch(settings)) * rows_per_photo(settings) > LANE_ROWS:
            return 0
        with contextlib.ExitStack() as stack:
            models = [stack.enter_context(self.cache.lease_if_loaded(key)) for key in dict.fromkeys(model_keys)]
            if any(m is None or m.device != "cpu" or m.threads < 2 or light_plan(m, settings) is None for m in models):
                return 0
            return min(m.threads for m in models) // 2

    def _caption_in_lanes(self, model_keys, pixels: PixelCache, settings: DecodingSettings, lane_threads: int,
                          notifier, on_result, should_stop) -> list[ModelRun]:
        """``_caption`` with two lanes: this thread and one helper take the models (a sibling pair as one) in
        the order asked, each captioning on ``lane_threads`` torch threads. This thread also hands every
        progress event and run to the callbacks, runs in the order asked: between its own units, and once
        it has none left, until the helper ends. ``should_stop`` stops both lanes taking more models.

        The caller's thread is a lane, not a third thread waiting: each thread that captions allocates from
        its own heap (glibc's arena), freed memory is kept in it until the job ends (``caption_heap``), and
        two workers' heaps held more than one helper's and the caller's (published-like peak, median of
        3: 1,262 → 1,198 MiB here; docs/performance.md)."""
        if should_stop is not None and should_stop():  # asked before the first model, as one at a time asks
            return []
        units = self._units(model_keys, settings)
        events: queue.Queue = queue.Queue()
        taken, lock, stop = iter(units), threading.Lock(), threading.Event()

        def take():
            with lock:
                return None if stop.is_set() else next(taken, None)

        def helper() -> None:
            try:
                while (unit := take()) is not None:
                    notify = [lambda stage, i=i: events.put(("progress", i, stage)) for i in unit]
                    events.put(("runs", unit, self._run_unit(model_keys, unit, pixels, settings, notify, lane_threads,
                                                             should_stop)))
            except BaseException as err:  # noqa: BLE001  handed to the caller's thread, which raises it
                events.put(("crashed", None, err))
            finally:
                events.put(("ended", None, None))

        finished: dict[int, ModelRun] = {}
        runs: list[ModelRun] = []
        crash: list[BaseException] = []

        def handle(kind, unit, payload) -> bool:
            """One event from either lane; True when it is the helper's end."""
            if kind == "progress":
                notifier(unit)(payload)
            elif kind == "runs":
                finished.update(zip(unit, payload))
            elif kind == "crashed":
                if not isinstance(payload, CaptioningStopped):  # stopped between batches: not a crash
                    crash.append(payload)
                stop.set()
            while len(runs) in finished:  # hand runs over in the order asked
                run = finished.pop(len(runs))
                notifier(len(runs))("done" if run.ok else "failed")
                runs.append(run)
                if on_result:
                    on_result(run)
            if should_stop is not None and not stop.is_set() and should_stop():
                stop.set()
            return kind == "ended"

        worker = threading.Thread(target=helper, name="igcap-caption-lane", daemon=True)
        worker.start()
        helper_ended = False
        try:
            while (unit := take()) is not None:
                notify = [lambda stage, i=i: notifier(i)(stage) for i in unit]  # this thread: told at once
                try:
                    done = self._run_unit(model_keys, unit, pixels, settings, notify, lane_threads, should_stop)
                except CaptioningStopped:
                    stop.set()
                    break
                handle("runs", unit, done)
                with contextlib.suppress(queue.Empty):
                    while not helper_ended:
                        helper_ended = handle(*events.get_nowait())
            while not helper_ended:
                helper_ended = handle(*events.get())
        finally:
            stop.set()
            worker.join()
        if crash:
            raise crash[0]
        return runs

    def _units(self, model_keys, settings: DecodingSettings) -> list[tuple[int, ...]]:
        """The request's models as the sequential loop would take them: adjacent sibling pairs that can be
        decoded together as one unit, every other model alone (indices into ``model_keys``)."""
        units, i = [], 0
        while i < len(model_keys):
            pair = i + 1 < len(model_keys) and self._pair_plans(model_keys[i:i + 2], settings) is not None
            units.append((i, i + 1) if pair else (i,))
            i += 2 if pair else 1
        return units

    def _pair_plans(self, keys, settings: DecodingSettings) -> list | None:
        with self.cache.lease_if_loaded(keys[0]) as first, self.cache.lease_if_loaded(keys[1]) as second:
            return None if first is None or second is None else plans_together(first, second, settings)

    def _run_unit(self, model_keys, unit: tuple[int, ...], pixels: PixelCache, settings: DecodingSettings, notify,
                  threads: int, should_stop=None) -> list[ModelRun]:
        keys = [model_keys[i] for i in unit]
        done = self._run_siblings(keys, pixels, settings, notify, threads, should_stop) if len(unit) == 2 else None
        return done or [self._run_model(key, pixels, settings, tell, threads, should_stop)
                        for key, tell in zip(keys, notify)]

    def _run_siblings(self, keys, pixels: PixelCache, settings: DecodingSettings, notify,
                      threads: int | None = None, should_stop=None) -> list[ModelRun] | None:
        """Two models that share their first decoder blocks (a published pair), both loaded, asked for
        greedy captions: decoded together (``lean_decoding.greedy_generate_together``: the same captions,
        each shared block read once per step). None when they cannot be (the caller decodes each alone).
        ``threads``: the torch threads to caption on instead of the models' own (a lane's)."""
        if self.cache.max_models < 2:
            return None
        start = time.perf_counter()
        try:
            with self.cache.lease_if_loaded(keys[0]) as first, self.cache.lease_if_loaded(keys[1]) as second:
                plans = None if first is None or second is None else plans_together(first, second, settings)
                if plans is None or any(within_positions(m, settings) != settings for m in (first, second)):
                    return None  # (a length past a model's positions: each alone, cut to its own)
                if threads:
                    first, second = replace(first, threads=threads), replace(second, threads=threads)
                for tell in notify:
                    tell("captioning")
                results = caption_together([first, second], plans, pixels, settings, self.photos_per_batch(settings),
                                           should_stop)
        except CaptioningStopped:
            raise
        except Exception:  # noqa: BLE001  each model is then decoded alone, with its own error if any
            log.exception("decoding %s and %s together failed; decoding each alone", *keys)
            return None
        seconds = (time.perf_counter() - start) / 2
        return [ModelRun(key, tuple(found), seconds=seconds) for key, found in zip(keys, results)]

    def _run_model(self, key: str, pixels: PixelCache, settings: DecodingSettings, notify,
                   threads: int | None = None, should_stop=None) -> ModelRun:
        start = time.perf_counter()
        try:
            notify("loading")
            results = self._caption_leased(key, pixels, settings, notify, threads, should_stop)
        except CaptioningStopped:
            raise
        except ModelLoadError as err:
            return ModelRun(key, error=ModelFailure(key, err.message, err.hint), seconds=time.perf_counter() - start)
        except ConfigError:  # a setting that cannot work (IGCAP_DEVICE=cuda without a GPU): every model's, the caller's
            raise
        except Exception as err:  # any failure inside one model must not cost the other models' captions
            log.exception("captioning with %s failed", key)
            return ModelRun(key, error=ModelFailure(key, f"Captioning failed: {err}", "Try other settings, or "
                            "another model; the Models page shows this model's state."), seconds=time.perf_counter() - start)
        return ModelRun(key, tuple(results), seconds=time.perf_counter() - start)


    def _caption_leased(self, key: str, pixels: PixelCache, settings: DecodingSettings, notify,
                        threads: int | None = None, should_stop=None) -> list[CaptionResult]:
        # the lease keeps the model loaded, and counted in the cache's bound, only while it captions
        with self.cache.lease(key) as loaded:
            notify("captioning")
            if threads:  # a lane's threads, for this call only (the model is shared: copied, not changed)
                loaded = replace(loaded, threads=threads)
            return caption_with(loaded, pixels, settings, self.photos_per_batch(settings), should_stop)


def rows_per_photo(settings: DecodingSettings) -> int:
    """Sequences decoded together for one photo: its beams, or its variants when there are more."""
    beams = settings.num_beams if settings.strategy == "beam" else 1
    return max(beams, settings.num_variants)


class PixelCache:
    """Each photo is preprocessed once per distinct image-processor configuration, for all models."""

    def __init__(self, images: Sequence):
        self.images = list(images)
        self._by_processor: dict[str, object] = {}
        self._lock = threading.Lock()  # two lanes may ask at once: each configuration is computed once

    def __len__(self) -> int:
        return len(self.images)

    def pixels(self, processor):
        key = processor.to_json_string()
        with self._lock:
            if key not in self._by_processor:
                self._by_processor[key] = processor(images=self.images, return_tensors="pt").pixel_values
            return self._by_processor[key]  # (N, 3, H, W)


def caption_with(loaded: LoadedModel, pixels: PixelCache, settings: DecodingSettings, batch_size: int = 8,
                 should_stop: Callable[[], bool] | None = None) -> list[CaptionResult]:
    """All photos through one model in batches: a light model through the lean loops when they serve the
    request (light_plan), else the model with transformers' objects (generate's arguments, a lean plan
    where one gives generate's ids). ``should_stop``, asked between batches: True raises CaptioningStopped."""
    import torch

    settings = within_positions(loaded, settings)
    plan = light_plan(loaded, settings)
    if plan is None:
        loaded = loaded.transformers()
        gen_config = settings.to_generation_config(eos_token_id=loaded.eos_token_id)
        prompt = prompt_ids(loaded.tokenizer, settings.start_with)
        extra = generation_extras(loaded, settings, prompt)
        plan = lean_plan(loaded, gen_config, extra, prompt)
    else:
        gen_config, prompt, extra = None, [], {}
    values = pixels.pixels(loaded.processor)
    results = []
    # sampling draws from torch's one process-wide generator: one sampling run at a time, or another
    # session's draws would change this run's (a seed would no longer give the same captions)
    sampling = settings.strategy == "sample"
    with SAMPLING_LOCK if sampling else contextlib.nullcontext():
        # per model, so results do not depend on which models ran before; only when sampling (greedy and
        # beam search draw nothing, and reseeding outside the lock would change another job's draws)
        if sampling and settings.seed is not None:
            torch.manual_seed(settings.seed)
        for start in range(0, len(values), batch_size):
            stop_between_batches(start, should_stop)
            batch = values[start:start + batch_size].to(loaded.device, loaded.input_dtype)
            if prompt:  # "Start with…": the decoder continues after the start token and the person's words
                extra["decoder_input_ids"] = torch.tensor([[loaded.eos_token_id, *prompt]] * len(batch),
                                                          device=loaded.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                sequences = generate_ids(loaded, batch, gen_config, extra, plan)
            share = (time.perf_counter() - t0) / len(sequences)
            results += decode_batch(loaded, sequences, start, settings, share, prompt_len=len(prompt))
    return results


def stop_between_batches(start: int, should_stop: Callable[[], bool] | None) -> None:
    """Before each batch but the first (the first was asked before the model): raise CaptioningStopped when
    ``should_stop`` says so, so a stopped job ends after the batch it was decoding, not after the model."""
    if start and should_stop is not None and should_stop():
        raise CaptioningStopped


def decoder_positions(loaded: LoadedModel) -> int:
    """How many tokens the model's decoder has positions for (GPT-2: 1,024; the demo models: 64)."""
    decoder = loaded.model.decoder
    wpe = getattr(getattr(decoder, "transformer", decoder), "wpe", None)
    return int(wpe.weight.shape[0]) if wpe is not None else int(decoder.config.n_positions)


def within_positions(loaded: LoadedModel, settings: DecodingSettings) -> DecodingSettings:
    """``settings`` with the length cut to what the model has positions for: its start words and the caption
    together (a longer one failed with "index out of range in self"). Raises DecodingError when the start
    words alone fill them."""
    positions = decoder_positions(loaded)
    words = settings.start_with.strip()
    prompt = len(prompt_ids(loaded.transformers().tokenizer, words)) if words else 0
    room = positions - prompt
    if room < 1:
        raise DecodingError(f"“Start with…” is too long for this model: it writes at most {positions} tokens in "
                            f"all, and the words take {prompt}. Use fewer words.")
    if settings.max_new_tokens <= room:
        return settings
    return settings.replace(max_new_tokens=room, min_new_tokens=min(settings.min_new_tokens, room))


def plans_together(first: LoadedModel, second: LoadedModel, settings: DecodingSettings) -> list | None:
    """The two models' greedy plans when they can be decoded in lockstep for these settings (both greedy
    through the lean loop, on the same device, photos and threads, sharing at least their first decoder
    block), else None."""
    if settings.start_with.strip() or first.device != second.device or first.threads != second.threads:
        return None
    if first.processor.to_json_string() != second.processor.to_json_string():
        return None
    if first.light or second.light:  # light models together, or each alone (light_plan or transformers)
        plans = [light_plan(m, settings) for m in (first, second)]
    else:
        plans = [lean_plan(m, settings.to_generation_config(eos_token_id=m.eos_token_id), generation_extras(m, settings, []), [])
                 for m in (first, second)]
    if not all(type(plan) is lean_decoding.GreedyPlan for plan in plans):  # greedy only: no sampling, no beams
        return None
    return plans if lean_decoding.shared_blocks(first.model, second.model) > 0 else None


def caption_together(models: Sequence[LoadedModel], plans: list, pixels: PixelCache, settings: DecodingSettings,
                     batch_size: int = 8, should_stop: Callable[[], bool] | None = None) -> list[list[CaptionResult]]:
    """caption_with for models with ``plans_together``: each batch of photos through all of them in lockstep."""
    import torch

    values = pixels.pixels(models[0].processor)
    results: list[list[CaptionResult]] = [[] for _ in models]
    for start in range(0, len(values), batch_size):
        stop_between_batches(start, should_stop)
        batch = values[start:start + batch_size].to(models[0].device, models[0].input_dtype)
        t0 = time.perf_counter()
        with torch.inference_mode(), threads.torch_threads(models[0].threads) if models[0].threads else contextlib.nullcontext():
            sequences = lean_decoding.greedy_generate_together([m.model for m in models], batch, plans)
        share = (time.perf_counter() - t0) / sum(len(s) for s in sequences)
        for found, loaded, ids in zip(results, models, sequences):
            found += decode_batch(loaded, ids, start, settings, share)
    return results


def light_plan(loaded: LoadedModel, settings: DecodingSettings):
    """A light model's plan for the lean loops when they serve this request without transformers (greedy, beam
    search or sampling, the emoji limit included; no "Start with…" words; the switch on): a GreedyPlan, a
    BeamRequest or a SamplePlan; else None (the caller then uses the model's transformers objects)."""
    if not loaded.light or not loaded.lean_decoding or settings.start_with.strip():
        return None
    from igcap.emoji_control import emoji_processors

    model, extra = loaded.model, tuple(emoji_processors(loaded.tokenizer, settings.max_emoji))
    ids = dict(start_id=model.start_id, eos_id=model.eos_id, pad_id=model.pad_id)
    if settings.strategy == "beam":
        return beam_search.beam_request(settings, **ids, extra=extra)
    options = dict(**ids, max_new_tokens=settings.max_new_tokens, min_new_tokens=settings.min_new_tokens,
                   repetition_penalty=settings.repetition_penalty, no_repeat_ngram_size=settings.no_repeat_ngram_size,
                   extra=extra)
    if settings.strategy == "greedy":
        return lean_decoding.GreedyPlan(**options)
    if settings.strategy == "sample":
        return lean_decoding.SamplePlan(**options, temperature=settings.temperature, top_k=settings.top_k,
                                        top_p=settings.top_p, num_return_sequences=settings.num_variants)
    return None


def lean_plan(loaded: LoadedModel, gen_config, extra: dict, prompt: list[int]):
    """The lean loops' plan when they give generate's tokens for this request (greedy or beam search, no
    emoji limit, no start words, the switch on): a GreedyPlan or a BeamRequest; else None: generate decodes."""
    if not loaded.lean_decoding or prompt:
        return None
    return lean_decoding.greedy_plan(loaded.model, gen_config, extra) or lean_beam.beam_plan(loaded.model, gen_config, extra)


def generate_ids(loaded: LoadedModel, batch, gen_config, extra: dict, plan):
    """(B × returned sequences, length) ids: a lean loop when there is a plan, else generate (the reference).

    A failure of a lean loop on a transformers model (a release that changed what the loops read from its
    modules fails with a TypeError, AttributeError or KeyError) costs nothing but speed: generate decodes
    the batch, and says so in the log."""
    if plan is not None:
        try:
            with threads.torch_threads(loaded.threads) if loaded.threads else contextlib.nullcontext():
                if isinstance(plan, beam_search.BeamRequest):
                    return beam_search.beam_search(loaded.model, batch, plan)
                return lean_decoding.greedy_generate(loaded.model, batch, plan)
        except (TypeError, AttributeError, KeyError) as err:
            if loaded.light:  # igcap's own loops on its own model: a failure here is a bug to see
                raise
            log.warning("%s: the lean decoding loop failed (%s: %s); generate decodes instead",
                        loaded.spec.key, type(err).__name__, err)
    return loaded.model.generate(pixel_values=batch, generation_config=gen_config, **extra)


def prompt_ids(tokenizer, start_with: str) -> list[int]:
    """The person's first words as decoder tokens (none when empty)."""
    text = " ".join(start_with.split())
    return tokenizer(text, add_special_tokens=False).input_ids if text else []


def generation_extras(loaded: LoadedModel, settings: DecodingSettings, prompt: list[int]) -> dict:
    """generate() arguments beyond the GenerationConfig: the emoji limit's logits processor."""
    from igcap.emoji_control import emoji_processors

    processors = emoji_processors(loaded.tokenizer, settings.max_emoji)
    if not processors:
        return {}
    from transformers import LogitsProcessorList

    return {"logits_processor": LogitsProcessorList(processors)}


def decode_batch(loaded: LoadedModel, sequences, first_photo: int, settings: DecodingSettings,
                 seconds_each: float, prompt_len: int = 0) -> list[CaptionResult]:
    """Generated ids (photo-major, variants inner) → CaptionResults; the text includes the start words."""
    eos = loaded.eos_token_id
    keep = " ".join(settings.start_with.split())
    out = []
    for row, seq in enumerate(sequences.tolist()):
        prompt, generated = seq[1:1 + prompt_len], seq[1 + prompt_len:]  # the first id is the decoder start token
        ended = eos in generated
        ids = generated[:generated.index(eos)] if ended else generated
        raw = loaded.tokenizer.decode(prompt + ids, skip_special_tokens=True)
        text = clean_caption(raw, drop_fragment=settings.drop_fragment and not ended, keep=keep)
        photo, variant = divmod(row, settings.num_variants)
        out.append(CaptionResult(loaded.spec.key, first_photo + photo, variant, text, raw, len(ids), seconds_each, ended))
    return out


def caption_photos(images: Sequence, model_keys: Sequence[str] | None = None,
                   settings: DecodingSettings | None = None, cache: ModelCache | None = None) -> list[ModelRun]:
    """One-call convenience: caption with the default cache built from the environment."""
    cache = cache or cache_from_settings()
    return Captioner(cache).caption(images, list(model_keys or cache.registry), settings)
