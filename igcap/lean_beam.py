"""A lean beam-search loop for the engine's ViT → GPT-2 captioners, with ``generate`` as its reference.

The app's default preset decodes with beam search, which ``generate`` runs through its model call every
step: input preparation, masks, a cache object per layer reordered (cross-attention included) after every
step, and the image keys and values computed for every beam. This loop keeps ``generate``'s own beam
bookkeeping, called as ``generate`` calls it (its preparation of the configuration, special tokens and
lengths, its logits processors and stopping criteria, and its ``_beam_search`` steps: top-k continuations,
running and finished beams, the early-stop heuristic), and replaces only the model call: the image encoder
once per photo (through the call ``generate`` makes, so ``EncoderMemo`` hits are shared), the image keys
and values once per photo and repeated per beam (the int8 linear quantizes its input per tensor, and a
tensor with each row repeated has the same range: so every beam's keys and values are those ``generate``
computes), ``lean_decoding.DecoderStep`` on a preallocated self-attention cache reordered by beam.

It gives ``generate``'s ids (tests/igcap/test_lean_beam.py: int8 and fp32, the presets, several photos,
variants, length penalties, early stopping). ``beam_plan`` returns None for anything it does not
reproduce, and the caller uses ``generate``. It relies on ``generate``'s private helpers of transformers
5.x; a version without them gets None (generate decodes), never a wrong caption.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from igcap import lean_decoding


HELPERS = ("_prepare_generation_config", "_prepare_special_tokens", "_prepare_generated_length",
           "_get_logits_processor", "_get_stopping_criteria", "_get_top_k_continuations",
           "_get_running_beams_for_next_iteration", "_update_finished_beams", "_check_early_stop_heuristic",
           "_beam_search_has_unfinished_sequences", "_flatten_beam_dim", "_unflatten_beam_dim")
ALLOWED = {**lean_decoding.NEUTRAL_OPTIONS}
ALLOWED.pop("num_return_sequences")  # beam search returns several sequences (the variants)


@dataclass(frozen=True)
class BeamPlan:
    config: object  # generate's prepared GenerationConfig (before lengths and special tokens)
    has_default_max_length: bool
    has_default_min_length: bool


def beam_plan(model, gen_config, extras: dict | None = None) -> BeamPlan | None:
    """The plan for ``model.generate(pixel_values=…, generation_config=gen_config, **extras)`` with beam
    search, or None when the loop would not give generate's ids."""
    if not all(hasattr(model, h) for h in HELPERS):
        return None
    config = lean_decoding.prepared_config(model, copy.deepcopy(gen_config), extras, "BEAM_SEARCH", ALLOWED)
    if config is None or config.low_memory:
        return None
    if config.num_return_sequences is not None and config.num_return_sequences > config.num_beams:
        return None
    return BeamPlan(config, has_default_max_length=gen_config.max_length is None and model.generation_config.max_length is None,
                    has_default_min_length=gen_config.min_length is None and model.generation_config.min_length is None)


def beam_generate(model, pixel_values, plan: BeamPlan):
    """(B, 3, H, W) pixels → (B × returned sequences, length) ids, as ``generate`` returns them. Call it
    under ``torch.inference_mode()``."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    config = copy.deepcopy(plan.config)
    batch, device = pixel_values.shape[0], pixel_values.device
    model._prepare_special_tokens(config, False, device=device, batch_size=batch)
    num_beams = config.num_beams
    expand = max(num_beams, config.num_return_sequences or 1)
    start = config._decoder_start_token_tensor
    input_ids = (torch.ones((batch, 1), dtype=torch.long, device=device) * start).repeat_interleave(expand, dim=0)
    config = model._prepare_generated_length(generation_config=config, has_default_max_length=plan.has_default_max_length,
                                             has_default_min_length=plan.has_default_min_length,
                                             model_input_name="pixel_values", inputs_tensor=pixel_values,
                                             input_ids_length=input_ids.shape[1])
    logits_processor = model._get_logits_processor(generation_config=config, input_ids_seq_length=input_ids.shape[1],
                                                   encoder_input_ids=pixel_values, prefix_allowed_tokens_fn=None,
                                                   logits_processor=LogitsProcessorList(), device=device, model_kwargs={})
    stopping_criteria = model._get_stopping_criteria(generation_config=config, stopping_criteria=StoppingCriteriaList())

    memory = lean_decoding.encode(model, pixel_values)
    decoder = model.decoder.transformer
    cross = [_repeated(lean_decoding.cross_keys_values(block.crossattention, memory), expand) for block in decoder.h]
    step = lean_decoding.DecoderStep(model.decoder)
    cache = lean_decoding.SelfAttentionCache(decoder, batch * expand, config.max_length, memory.dtype, device)
    return _beam_search(model, input_ids, logits_processor, stopping_criteria, config, step, cross, cache)


def _repeated(keys_values, times: int):
    """Each photo's keys and values repeated per beam, laid out as generate's (computed on repeated rows)."""
    return tuple(t.repeat_interleave(times, dim=0) for t in keys_values)


def _beam_search(self, input_ids, logits_processor, stopping_criteria, generation_config, step, cross, cache):
    """transformers' ``GenerationMixin._beam_search`` (5.x) for our case: no outputs beyond the ids, the
    model call replaced by ``step`` on the lean cache."""
    import torch

    pad_token_id = generation_config._pad_token_tensor
    eos_token_id = generation_config._eos_token_tensor
    early_stopping, length_penalty = generation_config.early_stopping, generation_config.length_penalty
    max_length, num_beams = generation_config.max_length, generation_config.num_beams
    num_return_sequences = generation_config.num_return_sequences
    batch_size_unflattened, cur_len = input_ids.shape[:2]
    batch_size = batch_size_unflattened // num_beams
    decoder_prompt_len = cur_len
    n_eos_tokens = eos_token_id.shape[0] if eos_token_id is not None else 0
    beams_to_keep = max(2, 1 + n_eos_tokens) * num_beams
    top_num_beam_mask = torch.cat((torch.ones((num_beams), dtype=torch.bool),
                                   torch.zeros((beams_to_keep - num_beams), dtype=torch.bool)), dim=0).to(input_ids.device)
    output_fill_value = pad_token_id or eos_token_id[0] if eos_token_id is not None else -1
    running_sequences = torch.full((batch_size, num_beams, max_length), fill_value=output_fill_value, dtype=torch.int64,
                                   device=input_ids.device)
    running_sequences[:, :, :cur_len] = self._unflatten_beam_dim(input_ids, batch_size, num_beams)
    sequences = running_sequences.detach().clone()
    running_beam_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=input_ids.device)
    running_beam_scores[:, 1:] = -1e9
    beam_scores = torch.full((batch_size, num_beams), fill_value=-1e9, dtype=torch.float, device=input_ids.device)
    is_sent_finished = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=input_ids.device)
    is_early_stop_heuristic_unsatisfied = torch.ones((batch_size, 1), dtype=torch.bool, device=input_ids.device)
    next_token_hits_stopping_criteria = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=input_ids.device)
    running_beam_indices = torch.full((batch_size, num_beams, max_length - cur_len), fill_value=-1, dtype=torch.int32,
                                      device=input_ids.device)
    beam_indices = running_beam_indices.detach().clone()
    flat_running_sequences = input_ids
    position = 0
    while True:
        if position:
            flat_running_sequences = self._flatten_beam_dim(running_sequences[:, :, :cur_len])
        logits = step(flat_running_sequences[:, -1:], position, cross, cache)
        log_probs = torch.nn.functional.log_softmax(logits, dim=-1)
        log_probs = logits_processor(flat_running_sequences, log_probs)
        log_probs = self._unflatten_beam_dim(log_probs, batch_size, num_beams)
        log_probs = log_probs + running_beam_scores[:, :, None]
        log_probs = torch.reshape(log_probs, (batch_size, -1))
        topk_log_probs, topk_running_sequences, topk_running_beam_indices = self._get_top_k_continuations(
            accumulated_log_probs=log_probs, running_sequences=running_sequences, running_beam_indices=running_beam_indices,
            cur_len=cur_len, decoder_prompt_len=decoder_prompt_len, do_sample=False, beams_to_keep=beams_to_keep,
            num_beams=num_beams, batch_size=batch_size)
        next_token_hits_stopping_criteria = stopping_criteria(
            self._flatten_beam_dim(topk_running_sequences[:, :, : cur_len + 1]), None)
        next_token_hits_stopping_criteria = self._unflatten_beam_dim(next_token_hits_stopping_criteria, batch_size,
                                                                     beams_to_keep)
        running_sequences, running_beam_scores, running_beam_indices = self._get_running_beams_for_next_iteration(
            topk_log_probs=topk_log_probs, topk_running_sequences=topk_running_sequences,
            topk_running_beam_indices=topk_running_beam_indices,
            next_token_hits_stopping_criteria=next_token_hits_stopping_criteria, num_beams=num_beams)
        sequences, beam_scores, beam_indices, is_sent_finished = self._update_finished_beams(
            sequences=sequences, topk_running_sequences=topk_running_sequences, beam_scores=beam_scores,
            topk_log_probs=topk_log_probs, beam_indices=beam_indices, topk_running_beam_indices=topk_running_beam_indices,
            is_early_stop_heuristic_unsatisfied=is_early_stop_heuristic_unsatisfied, is_sent_finished=is_sent_finished,
            next_token_hits_stopping_criteria=next_token_hits_stopping_criteria, top_num_beam_mask=top_num_beam_mask,
            num_beams=num_beams, cur_len=cur_len, decoder_prompt_len=decoder_prompt_len, length_penalty=length_penalty,
            early_stopping=early_stopping)
        beam_idx = self._flatten_beam_dim(running_beam_indices[..., cur_len - decoder_prompt_len])
        cache.reorder(position, beam_idx)
        cur_len += 1
        position += 1
        is_early_stop_heuristic_unsatisfied = self._check_early_stop_heuristic(
            is_early_stop_heuristic_unsatisfied=is_early_stop_heuristic_unsatisfied, running_beam_scores=running_beam_scores,
            beam_scores=beam_scores, is_sent_finished=is_sent_finished, cur_len=cur_len, max_length=max_length,
            decoder_prompt_len=decoder_prompt_len, early_stopping=early_stopping, length_penalty=length_penalty)
        if not self._beam_search_has_unfinished_sequences(is_early_stop_heuristic_unsatisfied, is_sent_finished,
                                                          next_token_hits_stopping_criteria, early_stopping):
            break
    sequences = self._flatten_beam_dim(sequences[:, :num_return_sequences, :])
    beam_indices = self._flatten_beam_dim(beam_indices[:, :num_return_sequences, :])
    max_generated_length = ((beam_indices + 1).bool()).sum(dim=1).max()
    return sequences[:, : decoder_prompt_len + max_generated_length]
