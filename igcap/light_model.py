"""igcap's own ViT → GPT-2 captioner modules, filled from an int8 cache entry, so a process captions
without importing transformers.

Importing transformers' model classes costs about 1.5 s and 133 MiB on this machine (``torch._dynamo``,
which ``transformers.masking_utils`` imports unconditionally, then ``sympy``, ``scipy``, ``torch.fx``),
every start, before the first caption. Once a model's int8 weights are in the int8 cache nothing of
transformers is needed to caption with the lean loops: the entry holds every tensor and which module it
belongs to. ``LightCaptioner`` is the module tree transformers builds for the same config, with the same
names (so an entry fills it as it fills the transformers model, and ``to_transformers`` moves its very
tensors into a transformers model when a request needs ``generate``), holding only what the lean loops
and the image encoder call. The encoder's forward is ViTModel's, operation for operation (same
functions, same arguments, same order); the decoder is run by ``lean_decoding.DecoderStep`` as for a
transformers model. tests/igcap/test_light_model.py checks both against transformers bit for bit.

``read_config`` returns None for any config it does not reproduce (another architecture, an encoder
with a different width from the decoder's, GPT-2's reordered attention, another activation...): the
model is then loaded through transformers as before. Nothing here imports transformers but
``to_transformers``, called only when a request needs ``generate``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from igcap.attention import ONE_THREAD_SDPA

ACTIVATIONS = ("gelu", "gelu_new")  # ViT's exact GELU, GPT-2's tanh approximation
# generation_config.json keys that cannot change what the lean loops decode: token ids (igcap sets them all
# to the tokenizer's end-of-text, architecture.set_token_ids), max_length (max_new_tokens, always set,
# takes precedence) and bookkeeping
ANY = object()
NEUTRAL_GENERATION = {"bos_token_id": ANY, "eos_token_id": ANY, "pad_token_id": ANY, "decoder_start_token_id": ANY,
                      "max_length": ANY, "transformers_version": ANY, "_from_model_config": ANY,
                      "output_attentions": False, "output_hidden_states": False, "output_scores": False,
                      "return_dict_in_generate": False, "use_cache": True}


def _neutral(generation: dict) -> bool:
    return all(key in NEUTRAL_GENERATION and NEUTRAL_GENERATION[key] in (ANY, value) for key, value in generation.items())


@dataclass(frozen=True)
class EncoderConfig:
    """The ViT fields the forward uses (``config.json``'s ``encoder``)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    layer_norm_eps: float
    image_size: int
    patch_size: int
    num_channels: int
    qkv_bias: bool


@dataclass(frozen=True)
class DecoderConfig:
    """The GPT-2 fields the lean loops use (``config.json``'s ``decoder``)."""

    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int
    n_positions: int
    vocab_size: int
    layer_norm_epsilon: float
    activation_function: str
    scale_attn_weights: bool
    scale_attn_by_inverse_layer_idx: bool
    _attn_implementation: str = ONE_THREAD_SDPA  # what lean_decoding.attention_function reads (igcap.attention)
    cross_attention_hidden_size: None = None  # the image memory is read at the decoder's width

    @property
    def hidden_size(self) -> int:
        return self.n_embd


@dataclass(frozen=True)
class CaptionerConfig:
    encoder: EncoderConfig
    decoder: DecoderConfig
    generation: dict  # the checkpoint's generation_config.json ({} when it has none)


def read_config(folder: Path) -> CaptionerConfig | None:
    """The captioner's config from ``folder``'s config.json (and generation_config.json), or None when this
    module does not reproduce the model exactly (the caller then loads it through transformers)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
        generation_file = Path(folder) / "generation_config.json"
        generation = json.loads(generation_file.read_text()) if generation_file.is_file() else {}
        return _parse(config, generation)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _parse(config: dict, generation: dict) -> CaptionerConfig | None:
    enc, dec = config.get("encoder") or {}, config.get("decoder") or {}
    if config.get("model_type") != "vision-encoder-decoder" or enc.get("model_type") != "vit" \
            or dec.get("model_type") != "gpt2":
        return None
    image_size, patch_size = enc.get("image_size", 224), enc.get("patch_size", 16)
    if not (isinstance(image_size, int) and isinstance(patch_size, int)):  # non-square sizes: not reproduced
        return None
    encoder = EncoderConfig(
        hidden_size=int(enc.get("hidden_size", 768)), num_hidden_layers=int(enc.get("num_hidden_layers", 12)),
        num_attention_heads=int(enc.get("num_attention_heads", 12)),
        intermediate_size=int(enc.get("intermediate_size", 3072)), hidden_act=enc.get("hidden_act", "gelu"),
        layer_norm_eps=float(enc.get("layer_norm_eps", 1e-12)), image_size=image_size, patch_size=patch_size,
        num_channels=int(enc.get("num_channels", 3)), qkv_bias=bool(enc.get("qkv_bias", True)))
    n_embd = int(dec.get("n_embd", 768))
    decoder = DecoderConfig(
        n_embd=n_embd, n_layer=int(dec.get("n_layer", 12)), n_head=int(dec.get("n_head", 12)),
        n_inner=int(dec.get("n_inner") or 4 * n_embd), n_positions=int(dec.get("n_positions", 1024)),
        vocab_size=int(dec.get("vocab_size", 50257)), layer_norm_epsilon=float(dec.get("layer_norm_epsilon", 1e-5)),
        activation_function=dec.get("activation_function", "gelu_new"),
        scale_attn_weights=bool(dec.get("scale_attn_weights", True)),
        scale_attn_by_inverse_layer_idx=bool(dec.get("scale_attn_by_inverse_layer_idx", False)))
    reproduced = (
        dec.get("add_cross_attention") is True and not dec.get("reorder_and_upcast_attn", False)
        and encoder.hidden_act == "gelu" and decoder.activation_function == "gelu_new"
        and encoder.hidden_size == decoder.n_embd  # else transformers adds a projection (enc_to_dec_proj)
        and encoder.hidden_size % encoder.num_attention_heads == 0 and decoder.n_embd % decoder.n_head == 0
        and enc.get("head_dim") in (None, encoder.hidden_size // encoder.num_attention_heads)
        and enc.get("pooler_output_size") in (None, encoder.hidden_size) and enc.get("pooler_act", "tanh") == "tanh"
        and not config.get("tie_encoder_decoder", False)
        and _neutral(generation))
    return CaptionerConfig(encoder, decoder, dict(generation)) if reproduced else None


class EncoderOutput(dict):
    """The image encoder's output, readable as transformers' BaseModelOutput is read: by key, by position
    (item 0 is the last hidden state) and by attribute."""

    def __getitem__(self, key):
        return list(self.values())[key] if isinstance(key, int) else super().__getitem__(key)

    def __getattr__(self, name):
        try:
            return super().__getitem__(name)
        except KeyError:
            raise AttributeError(name) from None


def _torch():
    import torch

    return torch


class Placeholder:
    """Where the entry puts an int8 module (``_replace`` swaps it in); calling one means the entry lacked it."""


def _classes():
    torch = _torch()
    nn = torch.nn
    from torch.nn.functional import gelu, scaled_dot_product_attention

    # torch's own modules, minus the random initialisation: on the meta device it runs torch's reference
    # decompositions, which import torch._dynamo (the import a light model exists to avoid); the entry
    # fills every value anyway
    class LayerNorm(nn.LayerNorm):
        def reset_parameters(self):
            pass

    class Embedding(nn.Embedding):
        def reset_parameters(self):
            pass

    class Conv2d(nn.Conv2d):
        def reset_parameters(self):
            pass

    class Slot(nn.Module, Placeholder):
        """An int8 matrix's place in the tree until the entry's module replaces it."""

        def forward(self, *args, **kwargs):
            raise RuntimeError("this model's int8 cache entry did not fill every matrix")

    class ViTLayer(nn.Module):
        def __init__(self, c: EncoderConfig):
            super().__init__()
            self.attention = nn.Module()
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(self.attention, name, Slot())
            self.layernorm_before = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
            self.layernorm_after = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
            self.mlp = nn.Module()
            self.mlp.fc1, self.mlp.fc2 = Slot(), Slot()
            self.head_dim = c.hidden_size // c.num_attention_heads
            self.scaling = self.head_dim ** -0.5

        def forward(self, hidden):
            """ViTLayer.forward with its SDPA attention (no mask, not causal) and dropout off."""
            residual = hidden
            hidden = self.layernorm_before(hidden)
            attention, shape = self.attention, hidden.shape[:-1]
            heads = (*shape, -1, self.head_dim)
            query = attention.q_proj(hidden).view(heads).transpose(1, 2)
            keys = attention.k_proj(hidden).view(heads).transpose(1, 2)
            values = attention.v_proj(hidden).view(heads).transpose(1, 2)
            out = scaled_dot_product_attention(query, keys, values, attn_mask=None, dropout_p=0.0, scale=self.scaling,
                                               is_causal=False)
            out = out.reshape(out.shape[0], -1, query.shape[2], values.shape[-1]).transpose(1, 2).contiguous()
            hidden = attention.o_proj(out.reshape(*shape, -1).contiguous()) + residual
            residual = hidden
            hidden = self.mlp.fc2(gelu(self.mlp.fc1(self.layernorm_after(hidden))))
            return hidden + residual

    class ViTEncoder(nn.Module):
        """ViTModel (with the pooler it carries but whose output nobody reads: not computed)."""

        def __init__(self, c: EncoderConfig):
            super().__init__()
            self.config = c
            self.embeddings = nn.Module()
            self.embeddings.cls_token = nn.Parameter(torch.empty(1, 1, c.hidden_size))
            patches = (c.image_size // c.patch_size) ** 2
            self.embeddings.position_embeddings = nn.Parameter(torch.empty(1, patches + 1, c.hidden_size))
            self.embeddings.patch_embeddings = nn.Module()
            self.embeddings.patch_embeddings.projection = Conv2d(c.num_channels, c.hidden_size,
                                                                 kernel_size=c.patch_size, stride=c.patch_size)
            self.layers = nn.ModuleList(ViTLayer(c) for _ in range(c.num_hidden_layers))
            self.layernorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
            self.pooler = nn.Module()
            self.pooler.dense = Slot()

        def forward(self, pixel_values, output_attentions=False, output_hidden_states=False, return_dict=True):
            """The image memory as an EncoderOutput (the encoder memo keeps it, and may hand it to the
            transformers model of the same weights, or hand this one the transformers model's output)."""
            embeddings = self.embeddings
            projection = embeddings.patch_embeddings.projection
            if pixel_values.dtype != projection.weight.dtype:
                pixel_values = pixel_values.to(projection.weight.dtype)
            size = self.config.image_size
            if pixel_values.shape[1] != self.config.num_channels or tuple(pixel_values.shape[2:]) != (size, size):
                raise ValueError(f"the image encoder takes {self.config.num_channels} × {size} × {size} pixels, "
                                 f"not {tuple(pixel_values.shape[1:])}")
            hidden = projection(pixel_values).flatten(2).transpose(1, 2)
            hidden = torch.cat((embeddings.cls_token.expand(pixel_values.shape[0], -1, -1), hidden), dim=1)
            hidden = hidden + embeddings.position_embeddings
            for layer in self.layers:
                hidden = layer(hidden)
            return EncoderOutput(last_hidden_state=self.layernorm(hidden))

    class NewGELU(nn.Module):
        """GPT-2's activation, transformers' NewGELUActivation formula as written there."""

        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    class GPT2Attention(nn.Module):
        def __init__(self, c: DecoderConfig, layer: int, cross: bool):
            super().__init__()
            self.num_heads, self.split_size = c.n_head, c.n_embd
            self.head_dim = c.n_embd // c.n_head
            self.scaling = self.head_dim ** -0.5 if c.scale_attn_weights else 1.0
            if c.scale_attn_by_inverse_layer_idx:
                self.scaling /= float(layer + 1)
            self.c_attn, self.c_proj = Slot(), Slot()
            if cross:
                self.q_attn = Slot()

    class GPT2Block(nn.Module):
        def __init__(self, c: DecoderConfig, layer: int):
            super().__init__()
            self.ln_1 = LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
            self.attn = GPT2Attention(c, layer, cross=False)
            self.ln_2 = LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
            self.crossattention = GPT2Attention(c, layer, cross=True)
            self.ln_cross_attn = LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
            self.mlp = nn.Module()
            self.mlp.c_fc, self.mlp.c_proj, self.mlp.act = Slot(), Slot(), NewGELU()

    class GPT2Decoder(nn.Module):
        """GPT2LMHeadModel's parts (run by lean_decoding.DecoderStep)."""

        def __init__(self, c: DecoderConfig):
            super().__init__()
            self.config = c
            self.transformer = nn.Module()
            self.transformer.config = c
            self.transformer.wte = Slot()
            self.transformer.wpe = Embedding(c.n_positions, c.n_embd)
            self.transformer.h = nn.ModuleList(GPT2Block(c, i) for i in range(c.n_layer))
            self.transformer.ln_f = LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
            self.lm_head = Slot()

    class LightCaptioner(nn.Module):
        """A VisionEncoderDecoderModel's tree for the lean loops; ``generation`` holds its token ids."""

        def __init__(self, config: CaptionerConfig):
            super().__init__()
            self.light_config = config
            self.encoder, self.decoder = ViTEncoder(config.encoder), GPT2Decoder(config.decoder)
            self.eval()

        def set_token_ids(self, eos: int) -> None:
            """pad = eos = decoder start = ``eos`` (architecture.set_token_ids for transformers models)."""
            self.start_id = self.eos_id = self.pad_id = int(eos)

        def unfilled(self) -> list[str]:
            """Names of the places the entry left empty (a matrix slot, or a tensor still on the meta device)."""
            missing = [name for name, m in self.named_modules() if isinstance(m, Placeholder)]
            return missing + [name for name, t in (*self.named_parameters(), *self.named_buffers()) if t.is_meta]

    return LightCaptioner


_LIGHT = None


def light_class():
    """The LightCaptioner class (built on first use, so importing this module does not import torch)."""
    global _LIGHT
    if _LIGHT is None:
        _LIGHT = _classes()
    return _LIGHT


def is_light(model) -> bool:
    return _LIGHT is not None and isinstance(model, _LIGHT)


def skeleton(config: CaptionerConfig):
    """A LightCaptioner on the meta device (no memory), its int8 places empty: for an entry to fill."""
    torch = _torch()
    with torch.device("meta"):
        model = light_class()(config)
    return model.requires_grad_(False)


def to_transformers(light, source: str, revision: str | None = None):
    """The transformers VisionEncoderDecoderModel holding ``light``'s very tensors and int8 modules (nothing
    copied), for requests only ``generate`` serves. The one function here that imports transformers."""
    from igcap import optimize
    from igcap.attention import use_one_thread_attention
    from igcap.optimize.lean_loading import meta_model_of, meta_tensors

    model = meta_model_of(source, revision)
    classes = optimize.int8_classes()
    int8 = (classes.Int8Linear, classes.RescoredHead, classes.Bf16Embedding)
    for name in [name for name, m in light.named_modules() if isinstance(m, int8)]:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, light.get_submodule(name))
    tensors = dict((*light.named_parameters(remove_duplicate=False), *light.named_buffers(remove_duplicate=False)))
    for full, store, attr, _ in list(meta_tensors(model)):
        if full not in tensors:
            raise RuntimeError(f"the light model has no tensor for {full}")
        store[attr] = tensors[full]
    use_one_thread_attention(model)  # the light model's attention (its config's ONE_THREAD_SDPA)
    optimize.ENCODER_MEMO.remember(model.eval().requires_grad_(False))
    return model
