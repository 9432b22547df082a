"""The facts of the published models' architecture, in one place: ViT image encoder + GPT-2 decoder.

GPT-2 has one special token, ``<|endoftext|>``, and no pad token: it serves as pad = eos = bos = decoder
start, in the model's config (training shifts labels right with decoder start and pads with pad) and in
its generation config (captioning). ViT's image processor: 224-pixel squares, mean = std = 0.5.

A leaf module: it imports nothing of igcap, and torch/transformers only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass

EOS_TOKEN = "<|endoftext|>"
GPT2_EOS_ID = 50256  # the real vocabulary's eos: the last of its tokens
GPT2_VOCAB_SIZE = GPT2_EOS_ID + 1
VIT_IMAGE_SIZE = 224  # google/vit-base-patch16-224-in21k's input, which the published repos carry
VIT_MEAN = VIT_STD = (0.5, 0.5, 0.5)


def vit_processor_settings(side: int = VIT_IMAGE_SIZE) -> dict:
    """ViTImageProcessor keyword arguments: ``side``-pixel squares, mean = std = 0.5."""
    return {"size": {"height": side, "width": side}, "image_mean": list(VIT_MEAN), "image_std": list(VIT_STD)}


def vit_processor(side: int = VIT_IMAGE_SIZE):
    from transformers import ViTImageProcessor

    return ViTImageProcessor(**vit_processor_settings(side))


def set_token_ids(model, eos: int):
    """pad = eos = bos = decoder start = ``eos`` on the model's config, its decoder's and its generation config."""
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = eos
    model.generation_config.bos_token_id = eos
    decoder = model.config.decoder
    decoder.bos_token_id = decoder.eos_token_id = decoder.pad_token_id = eos
    return model


@dataclass(frozen=True)
class Shape:
    """The size of a ViT + GPT-2 captioner. The defaults are the full size: ViT-base/16 + GPT-2 small."""

    hidden: int = 768  # width of both encoder and decoder
    layers: int = 12  # blocks in each
    heads: int = 12
    intermediate: int = 3072  # the ViT's feed-forward width (GPT-2's is 4 × hidden)
    image_size: int = VIT_IMAGE_SIZE  # the processor resizes photos to this square
    patch_size: int = 16
    max_positions: int = 1024  # longest caption in tokens
    vocab_size: int = GPT2_VOCAB_SIZE


FULL_SIZE = Shape()  # 239,195,904 parameters with cross-attention


def random_captioner(shape: Shape = FULL_SIZE, eos: int = GPT2_EOS_ID, seed: int | None = None):
    """A randomly initialised VisionEncoderDecoderModel (ViT encoder + GPT-2 decoder with cross-attention),
    token ids set; ``seed`` fixes the initialisation."""
    import torch
    from transformers import GPT2Config, ViTConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    if seed is not None:
        torch.manual_seed(seed)
    encoder = ViTConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                        intermediate_size=shape.intermediate, image_size=shape.image_size, patch_size=shape.patch_size)
    decoder = GPT2Config(vocab_size=shape.vocab_size, n_embd=shape.hidden, n_layer=shape.layers, n_head=shape.heads,
                         n_positions=shape.max_positions, add_cross_attention=True, is_decoder=True,
                         bos_token_id=eos, eos_token_id=eos)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    return set_token_ids(model, eos)
