"""A lean greedy decoding loop for the engine's ViT → GPT-2 captioners, with ``generate`` as its reference.

transformers' ``generate`` spends a good part of each step outside the matrix products: it prepares the
inputs, builds attention masks, updates its cache objects and output records, and checks stopping
criteria, every token. This loop does only what a greedy caption needs: the image encoder once (through
the same call ``generate`` makes, so ``EncoderMemo`` hits are shared), the cross-attention keys and
values once, then per token the decoder's own modules called in ``generate``'s order on a preallocated
self-attention cache, the few logits processors the presets use, and an argmax.

It gives the token ids ``generate`` gives (tests/igcap/test_lean_decoding.py: int8 and fp32, batches whose
rows end at different lengths, min/max new tokens, repetition penalty, no-repeat n-grams), because it
does the same arithmetic in the same order. The rows of a batch also stay together until the last one
ends, finished rows fed the pad token as ``generate`` does: the int8 linear quantizes its input per
tensor, so dropping finished rows would change the other rows' activations.

``greedy_plan`` says whether the loop can decode a request; anything else (beam search, sampling, extra
logits processors such as the emoji limit, "Start with…" prompts, an architecture or attention it does
not know, any generation option it does not reproduce) returns None, and the caller uses ``generate``.
The loop keeps no state between calls: several sessions may decode with one model at once.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from igcap.attention import ONE_THREAD_SDPA, on_one_thread

log = logging.getLogger(__name__)

# generation options that must keep their neutral value for the loop to reproduce generate (anything
# else, like num_beams or do_sample, is covered by the generation mode check)
NEUTRAL_OPTIONS = {
    "bad_words_ids": (None,), "begin_suppress_tokens": (None,), "suppress_tokens": (None,),
    "encoder_no_repeat_ngram_size": (None, 0), "encoder_repetition_penalty": (None, 1.0),
    "exponential_decay_length_penalty": (None,), "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
    "guidance_scale": (None, 1.0), "max_time": (None,), "min_length": (None, 0), "remove_invalid_values": (None, False),
    "renormalize_logits": (None, False), "sequence_bias": (None,), "stop_strings": (None,),
    "watermarking_config": (None,), "num_return_sequences": (None, 1), "use_cache": (None, True),
    "output_scores": (None, False), "output_logits": (None, False), "return_dict_in_generate": (None, False),
    "output_attentions": (None, False), "output_hidden_states": (None, False), "cache_implementation": (None,),
    "token_healing": (None, False), "prefill_chunk_size": (None,), "is_assistant": (None, False),
}
ATTENTION = ("sdpa", ONE_THREAD_SDPA, "eager")  # the decoder's attention implementations the loop calls the same way


@dataclass(frozen=True)
class GreedyPlan:
    """What the loop needs to reproduce one greedy ``generate`` call."""

    start_id: int  # the decoder start token (GPT-2's end-of-text)
    eos_id: int
    pad_id: int  # fed to rows that have ended
    max_new_tokens: int
    min_new_tokens: int = 0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    extra: tuple = ()  # further logits processors (the emoji limit), after the built-in ones as generate applies them


@dataclass(frozen=True)
class SamplePlan(GreedyPlan):
    """Sampling as ``generate`` samples without beams: the same processors, then its warpers (igcap.logits),
    a softmax and one ``torch.multinomial`` draw per step over every row, so with the same seed the same
    draws (light models only; rows repeated per variant as generate expands its inputs)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_return_sequences: int = 1


def greedy_plan(model, gen_config, extras: dict | None = None) -> GreedyPlan | None:
    """The plan for ``model.generate(pixel_values=…, generation_config=gen_config, **extras)``, or None
    when the loop would not give generate's tokens (the caller then calls generate)."""
    config = prepared_config(model, gen_config, extras, "GREEDY_SEARCH")
    options = plan_options(config) if config is not None else None
    return GreedyPlan(**options) if options is not None else None


def plan_options(config) -> dict | None:
    """What every lean plan reads from generate's prepared configuration: the token ids (one end token;
    pad = end when unset) and the lengths and penalties; None when it has no decoder start or end token,
    or several end tokens."""
    eos = config.eos_token_id
    if isinstance(eos, (list, tuple)):
        if len(eos) != 1:
            return None
        eos = eos[0]
    if eos is None or config.decoder_start_token_id is None:
        return None
    return dict(start_id=int(config.decoder_start_token_id), eos_id=int(eos),
                pad_id=int(eos if config.pad_token_id is None else config.pad_token_id),
                max_new_tokens=int(config.max_new_tokens), min_new_tokens=int(config.min_new_tokens or 0),
                repetition_penalty=float(config.repetition_penalty or 1.0),
                no_repeat_ngram_size=int(config.no_repeat_ngram_size or 0))


def prepared_config(model, gen_config, extras: dict | None, mode: str, options: dict = NEUTRAL_OPTIONS):
    """The configuration generate itself would use for this request (ours over the model's own over the
    defaults) when a lean loop may decode it: a supported model, no extra generate arguments, generation
    mode ``mode`` (a ``GenerationMode`` name), a ``max_new_tokens``, and every option in ``options`` at a
    value the loop reproduces; else None (the caller then calls generate)."""
    if extras or not supports_model(model):
        return None
    try:
        config, _ = model._prepare_generation_config(gen_config)
        actual = config.get_generation_mode()
    except Exception as err:  # a transformers version that prepares configurations otherwise
        log.info("lean decoding off: the generation configuration cannot be read (%s)", err)
        return None
    from transformers.generation.configuration_utils import GenerationMode

    if actual != getattr(GenerationMode, mode) or config.max_new_tokens is None:
        return None
    if any(getattr(config, name, None) not in allowed for name, allowed in options.items()):
        return None
    return config


def supports_model(model) -> bool:
    """A VisionEncoderDecoder with a GPT-2 decoder that has cross-attention, in inference mode (or igcap's
    light model, which is only made for such configs)."""
    from igcap import light_model

    if light_model.is_light(model):
        return True
    decoder = getattr(model, "decoder", None)
    transformer = getattr(decoder, "transformer", None)
    if type(decoder).__name__ != "GPT2LMHeadModel" or type(transformer).__name__ != "GPT2Model":
        return False
    if getattr(model, "training", True) or getattr(model, "encoder", None) is None:
        return False
    config = decoder.config
    attention = config._attn_implementation
    return (bool(config.add_cross_attention) and attention in ATTENTION
            and not (attention == "eager" and config.reorder_and_upcast_attn)
            and all(hasattr(block, "crossattention") for block in transformer.h))


def processors(plan: GreedyPlan, prompt_length: int = 1):
    """The logits processors generate builds for the plan's options, in generate's order (igcap.logits:
    the same arithmetic, without importing transformers)."""
    from igcap.logits import Processors, build_processors, build_warpers

    out = build_processors(eos_id=plan.eos_id, repetition_penalty=plan.repetition_penalty,
                           no_repeat_ngram_size=plan.no_repeat_ngram_size, min_new_tokens=plan.min_new_tokens,
                           prompt_length=prompt_length, extra=plan.extra)
    if isinstance(plan, SamplePlan):
        out = Processors((*out, *build_warpers(temperature=plan.temperature, top_k=plan.top_k, top_p=plan.top_p)))
    return out


def greedy_generate(model, pixel_values, plan: GreedyPlan):
    """(B, 3, H, W) pixels → (B, 1 + new tokens) ids, as ``generate`` returns them (start token first,
    rows that ended early padded). Call it under ``torch.inference_mode()``."""
    return greedy_generate_together([model], pixel_values, [plan])[0]


def greedy_generate_together(models, pixel_values, plans) -> list:
    """Several models' greedy ids for the same photos, decoded in lockstep: at every step, block 0 of
    each model in turn, then block 1 of each, and so on.

    A published pair shares its image encoder and GPT-2 blocks 0–10 (the pool holds them once): decoded
    this way, a shared block's weights are read from memory once per step, and the second model finds
    them in the CPU's cache (a 2.4 MB int8 product: about 75 µs from memory, 25 µs from cache); the
    cross-attention keys and values of shared blocks are computed and kept once. Each model still does
    exactly what it does alone (the same operations on the same shapes, in the same order; rows stay
    with their own model: the int8 linear quantizes its input per tensor, so batching the two models'
    rows would change both), so its ids are those ``greedy_generate`` gives it alone. Not for sampling: the
    models' draws would interleave, so neither would get the draws it gets alone."""
    if len(models) > 1 and any(isinstance(plan, SamplePlan) for plan in plans):
        raise ValueError("sampled captions are drawn one model at a time")
    runs: list[_GreedyRun] = []
    for model, plan in zip(models, plans):
        runs.append(_GreedyRun(model, pixel_values, plan, runs))
    pending = [run.blocks() for run in runs]
    while pending:
        pending = [blocks for blocks in pending if next(blocks, _DONE) is not _DONE]
    return [run.ids for run in runs]


_DONE = object()


class _GreedyRun:
    """One model's greedy decoding, one block at a time (``blocks`` yields after each)."""

    def __init__(self, model, pixel_values, plan: GreedyPlan, earlier: list[_GreedyRun]):
        import torch

        self.model, self.plan = model, plan
        self.memory = encode(model, pixel_values)
        if isinstance(plan, SamplePlan) and plan.num_return_sequences > 1:  # generate's input expansion
            self.memory = self.memory.repeat_interleave(plan.num_return_sequences, dim=0)
        decoder = model.decoder.transformer
        batch, device = self.memory.shape[0], self.memory.device
        self.cross = [self._cross_keys_values(layer, block.crossattention, earlier)
                      for layer, block in enumerate(decoder.h)]
        self.cache = SelfAttentionCache(decoder, batch, plan.max_new_tokens, self.memory.dtype, device)
        self.step = DecoderStep(model.decoder)
        self.ids = torch.full((batch, 1), plan.start_id, dtype=torch.long, device=device)

    def _cross_keys_values(self, layer: int, attention, earlier: list[_GreedyRun]):
        """This block's keys and values over the image: an earlier model's, when it computed them with the
        same weights from the same encoder output."""
        import torch

        mine = weights_identity(attention.c_attn)
        for run in earlier:
            block = run.model.decoder.transformer.h
            if layer < len(block) and weights_identity(block[layer].crossattention.c_attn) == mine and \
                    (run.memory is self.memory or torch.equal(run.memory, self.memory)):
                return run.cross[layer]
        return cross_keys_values(attention, self.memory)

    def blocks(self):
        import torch

        plan, logits_processors = self.plan, processors(self.plan)
        sampling = isinstance(plan, SamplePlan)
        unfinished = torch.ones(self.ids.shape[0], dtype=torch.long, device=self.ids.device)
        for step in range(plan.max_new_tokens):
            logits = yield from self.step.layers(self.ids[:, -1:], step, self.cross, self.cache)
            scores = logits_processors(self.ids, logits)
            if sampling:
                next_ids = torch.multinomial(torch.nn.functional.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            else:
                next_ids = torch.argmax(scores, dim=-1)
            next_ids = next_ids * unfinished + plan.pad_id * (1 - unfinished)
            self.ids = torch.cat([self.ids, next_ids[:, None]], dim=-1)
            unfinished = unfinished & (next_ids != plan.eos_id).long()
            if unfinished.max() == 0:
                return


def shared_blocks(model_a, model_b) -> int:
    """How many of two captioners' first decoder blocks hold the very same weights (a published pair
    loaded through one pool: 11 of 12)."""
    count = 0
    for a, b in zip(model_a.decoder.transformer.h, model_b.decoder.transformer.h):
        if weights_identity(a) != weights_identity(b):
            break
        count += 1
    return count


def weights_identity(module) -> tuple:
    """Where a module's weights live: equal for modules that share them (int8 matrices by object, other
    tensors by address)."""
    found = []
    for sub in module.modules():
        packed = getattr(sub, "weight_int8", None)
        if packed is not None:
            found.append(("int8", id(packed)))
        found += [(name, t.data_ptr()) for name, t in (*sub._parameters.items(), *sub._buffers.items()) if t is not None]
    return tuple(found)


def encode(model, pixel_values):
    """The image encoder's output as the decoder reads it, from the call generate makes (same arguments:
    the encoder memo's key includes them)."""
    output = model.encoder(output_attentions=False, output_hidden_states=False, return_dict=True,
                           pixel_values=pixel_values)
    memory = output[0]
    if (model.encoder.config.hidden_size != model.decoder.config.hidden_size
            and model.decoder.config.cross_attention_hidden_size is None):
        memory = model.enc_to_dec_proj(memory)
    return memory


def cross_keys_values(attention, memory, contiguous: bool = True):
    """One block's cross-attention keys and values over the image, (B, heads, patches, head_dim) each,
    computed once per caption as generate's cache does.

    Each is made contiguous, head by head (generate keeps transposed views of the projection): the same
    values, and PyTorch's attention kernel computes the same result from either layout (tested), but it
    reads one head's keys as one block instead of 197 rows 3 KB apart. Every step reads all twelve
    blocks' (14.5 MB for one photo, more than the CPU's caches keep between steps): a full-size
    model's cross-attention 1.16 → 0.87 ms per step, one photo × four models −5% (docs/performance.md).
    ``contiguous=False`` keeps the views (the benchmark's lever)."""
    keys, values = attention.c_attn(memory).split(attention.split_size, dim=2)
    shape = (*keys.shape[:-1], -1, attention.head_dim)
    keys, values = keys.view(shape).transpose(1, 2), values.view(shape).transpose(1, 2)
    return (keys.contiguous(), values.contiguous()) if contiguous else (keys, values)


class SelfAttentionCache:
    """Each block's self-attention keys and values, preallocated for every step of one call."""

    def __init__(self, decoder, batch: int, steps: int, dtype, device):
        import torch

        first = decoder.h[0].attn
        shape = (batch, first.num_heads, steps, first.head_dim)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in decoder.h]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in decoder.h]

    def reorder(self, step: int, rows) -> None:
        """Beam search: every layer's keys and values so far follow their beams (``rows``: the source row of
        each row), as generate's cache reorder does."""
        for store in (self.keys, self.values):
            for layer, t in enumerate(store):
                store[layer][:, :, :step + 1] = t[:, :, :step + 1].index_select(0, rows)

    def append(self, layer: int, step: int, keys, values):
        """Store this step's keys and values; returns every step's so far."""
        self.keys[layer][:, :, step:step + 1] = keys
        self.values[layer][:, :, step:step + 1] = values
        return self.keys[layer][:, :, :step + 1], self.values[layer][:, :, :step + 1]


class DecoderStep:
    """One token through GPT-2 → float32 logits (B, V): the modules GPT2LMHeadModel.forward calls, in its
    order, with the same arithmetic, but each block's parts looked up once per caption instead of once
    per token, and without nn.Module's call machinery or the MLP/attention wrappers (about 1 ms of a
    7 ms step at one photo). Layer norms call the function their module calls; int8 products call the
    dynamic linear directly (their inputs are float32 and contiguous here: layer norm, attention and
    activation outputs); every other module is called through its own ``forward``."""

    def __init__(self, lm):
        decoder = lm.transformer
        self.wte, self.wpe, self.head = decoder.wte.forward, decoder.wpe.forward, lm.lm_head
        self.ln_f = _layer_norm(decoder.ln_f)
        attend = attention_function(decoder.config)
        self.blocks = []
        for block in decoder.h:
            attn, cross = block.attn, block.crossattention
            self.blocks.append((
                _layer_norm(block.ln_1), _linear(attn.c_attn), attn.split_size, attn.head_dim,
                functools.partial(attend, attn), _linear(attn.c_proj),
                _layer_norm(block.ln_cross_attn), _linear(cross.q_attn), cross.head_dim,
                functools.partial(attend, cross), _linear(cross.c_proj),
                _layer_norm(block.ln_2), _linear(block.mlp.c_fc), block.mlp.act.forward, _linear(block.mlp.c_proj),
            ))

    def __call__(self, token_ids, step: int, cross, cache: SelfAttentionCache):
        layers = self.layers(token_ids, step, cross, cache)
        while True:
            try:
                next(layers)
            except StopIteration as done:
                return done.value

    def layers(self, token_ids, step: int, cross, cache: SelfAttentionCache):
        """The step one block at a time: yields after each block, returns the logits."""
        import torch

        positions = torch.arange(1, device=token_ids.device) + step
        hidden = self.wte(token_ids) + self.wpe(positions.unsqueeze(0)).to(token_ids.device)
        for layer, (ln_1, c_attn, split, head_dim, self_attend, c_proj, ln_cross, q_attn, cross_head_dim,
                    cross_attend, cross_proj, ln_2, c_fc, act, mlp_proj) in enumerate(self.blocks):
            query, keys, values = c_attn(ln_1(hidden)).split(split, dim=2)
            shape = (*keys.shape[:-1], -1, head_dim)
            keys, values = cache.append(layer, step, keys.view(shape).transpose(1, 2), values.view(shape).transpose(1, 2))
            hidden = c_proj(self_attend(query.view(shape).transpose(1, 2), keys, values)) + hidden
            query = q_attn(ln_cross(hidden))
            out = cross_attend(query.view(*query.shape[:-1], -1, cross_head_dim).transpose(1, 2), *cross[layer])
            hidden = hidden + cross_proj(out)
            hidden = hidden + mlp_proj(act(c_fc(ln_2(hidden))))  # GPT2MLP: its dropout is off in inference
            yield
        return self.head(self.ln_f(hidden)[:, -1:, :])[:, -1].to(copy=True, dtype=torch.float32)


def _layer_norm(module):
    """nn.LayerNorm's forward, as a plain function of its input."""
    import torch

    if not isinstance(module, torch.nn.LayerNorm) or type(module).forward is not torch.nn.LayerNorm.forward:
        return module.forward
    shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
    return lambda x: torch.nn.functional.layer_norm(x, shape, weight, bias, eps)


def _linear(module):
    """Int8Linear's product without its input conversion (the input is float32 and contiguous here), or
    any other module's own forward (GPT-2's Conv1D, nn.Linear)."""
    from igcap.optimize import int8_classes

    if type(module) is not int8_classes().Int8Linear:
        return module.forward
    from igcap.optimize.int8 import int8_product

    weight, reduce_range = module.weight_int8, module.reduce_range
    return lambda x: int8_product(x, weight.packed, reduce_range)


def attention_function(config):
    """Attention as the decoder's own implementation computes it for one new token → (B, 1, heads ×
    head_dim). For SDPA, the call transformers' ``sdpa_attention_forward`` makes in this case (one
    query, no mask, so not causal; GPT-2 has no grouped heads), without its per-call checks; for
    igcap's ``ONE_THREAD_SDPA`` (igcap.attention), that call on one torch thread for a small batch."""
    if config._attn_implementation in ("sdpa", ONE_THREAD_SDPA):
        import torch
        from torch.nn.functional import scaled_dot_product_attention

        get_threads, set_threads = torch.get_num_threads, torch.set_num_threads  # inline: 24 calls a step
        pinning = config._attn_implementation == ONE_THREAD_SDPA

        def attend_sdpa(module, query, keys, values):
            threads = get_threads() if pinning and on_one_thread(query.shape[0]) else 0
            if threads:
                set_threads(1)
            try:
                out = scaled_dot_product_attention(query, keys, values, attn_mask=None, dropout_p=0.0,
                                                   scale=module.scaling, is_causal=False)
            finally:
                if threads:
                    set_threads(threads)
            out = out.transpose(1, 2).contiguous()
            return out.reshape(*out.shape[:-2], -1).contiguous()

        return attend_sdpa
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward

    interface = ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)

    def attend(module, query, keys, values):
        out, _ = interface(module, query, keys, values, None, dropout=0.0, scaling=module.scaling)
        return out.reshape(*out.shape[:-2], -1).contiguous()

    return attend
