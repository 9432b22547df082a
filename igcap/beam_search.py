"""Beam search for the engine's ViT → GPT-2 captioners without transformers, with ``generate`` as its reference.

generate's beam bookkeeping ported as plain functions, so a caption path built on igcap's own modules never
imports transformers (about 1.5 s and 133 MiB), around igcap's model call: the image encoder once per photo,
the image keys and values once per photo and repeated per beam (the int8 linear quantizes per tensor, and a
tensor with each row repeated has the same range, so every beam's are those generate computes on repeated
rows), ``lean_decoding.DecoderStep`` on a preallocated self-attention cache reordered by beam,
``igcap.logits`` for the processors. Light models use it directly; transformers models through
``lean_beam.beam_plan``, which reads generate's own configuration for the request.

Adapted from transformers 5.24.0 (Apache-2.0), generation/utils.py: ``GenerationMixin._beam_search`` and
its helpers ``_flatten_beam_dim``, ``_unflatten_beam_dim``, ``_gather_beams``, ``_get_top_k_continuations``,
``_get_running_beams_for_next_iteration``, ``_update_finished_beams``, ``_check_early_stop_heuristic``,
``_beam_search_has_unfinished_sequences``; what ``generate`` does before it for our case (the start token
per row repeated per beam, ``_prepare_special_tokens``' pad, ``_prepare_generated_length``'s
max_length = prompt + max_new_tokens); and generation/stopping_criteria.py's ``MaxLengthCriteria`` and
``EosTokenCriteria``. The float operations are theirs, in their order, so the ids are equal
(tests/igcap/test_light_beam.py: int8 and fp32, the presets, several photos, variants, length penalties,
early stopping True/False/"never", beams ending at different steps). Only the greedy (not sampled)
selection, one end token, and ids as the only output are ported.

``beam_request`` turns DecodingSettings into a request, or None for what the loop does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

from igcap import lean_decoding
from igcap.logits import build_processors

EARLY_STOPPING = (True, False, "never")


@dataclass(frozen=True)
class BeamRequest:
    """One beam search as generate would run it (its option names and defaults)."""

    start_id: int  # the decoder start token (GPT-2's end-of-text)
    eos_id: int
    pad_id: int  # fills what finished sequences leave (generate fills with the end token when the pad is 0)
    num_beams: int
    num_return_sequences: int = 1  # the variants: the best sequences per photo, best first
    max_new_tokens: int = 20
    min_new_tokens: int = 0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    extra: tuple = ()  # further logits processors (the emoji limit), after the built-in ones as generate applies them

    def __post_init__(self):
        if self.num_beams < 1 or not 1 <= self.num_return_sequences <= self.num_beams:
            raise ValueError("beam search needs at least one beam and at most one returned sequence per beam")
        if self.max_new_tokens < 1 or self.min_new_tokens < 0:
            raise ValueError("max_new_tokens must be at least 1 and min_new_tokens at least 0")
        if self.early_stopping not in EARLY_STOPPING or not isinstance(self.early_stopping, (bool, str)):
            raise ValueError(f"early_stopping must be True, False or 'never', not {self.early_stopping!r}")


def beam_request(settings, start_id: int, eos_id: int, pad_id: int, extra: tuple = ()) -> BeamRequest | None:
    """The request for ``settings`` (igcap.decoding.DecodingSettings), or None when they are not beam search
    or use what this loop does not do: start words (a longer prompt), or an emoji limit without its
    logits processor in ``extra``; the caller decodes those otherwise.

    The request holds only the settings' options. ``generate`` also reads the model's own generation
    config for options the settings leave unset (bad_words_ids, forced_eos_token_id, suppress_tokens…;
    lean_decoding.NEUTRAL_OPTIONS lists them): the caller must check that the model's holds none of them
    at a non-neutral value before decoding with this loop, or its ids may differ from generate's."""
    from igcap.decoding import STRATEGY_MODES

    if settings.strategy != "beam" or (settings.max_emoji is not None and not extra) or settings.start_with.strip():
        return None
    return BeamRequest(start_id=start_id, eos_id=eos_id, pad_id=pad_id, num_beams=settings.num_beams,
                       num_return_sequences=settings.num_variants, max_new_tokens=settings.max_new_tokens,
                       min_new_tokens=settings.min_new_tokens, repetition_penalty=float(settings.repetition_penalty),
                       no_repeat_ngram_size=settings.no_repeat_ngram_size,
                       length_penalty=float(settings.length_penalty),
                       early_stopping=STRATEGY_MODES["beam"]["early_stopping"], extra=tuple(extra))


def beam_search(model, pixel_values, request: BeamRequest):
    """(B, 3, H, W) pixels → (B × num_return_sequences, length) ids, as ``generate`` returns them (start
    token first, each photo's sequences best first, shorter ones filled after their end)."""
    import torch

    with torch.inference_mode():
        batch, device = pixel_values.shape[0], pixel_values.device
        beams = request.num_beams  # generate repeats each photo max(num_beams, num_return_sequences) times
        input_ids = torch.full((batch, 1), request.start_id, dtype=torch.long, device=device)
        input_ids = input_ids.repeat_interleave(beams, dim=0)
        max_length = input_ids.shape[1] + request.max_new_tokens  # _prepare_generated_length
        processors = build_processors(eos_id=request.eos_id, repetition_penalty=request.repetition_penalty,
                                      no_repeat_ngram_size=request.no_repeat_ngram_size,
                                      min_new_tokens=request.min_new_tokens, prompt_length=input_ids.shape[1],
                                      extra=request.extra)
        memory = lean_decoding.encode(model, pixel_values)
        decoder = model.decoder.transformer
        cross = [tuple(t.repeat_interleave(beams, dim=0)
                       for t in lean_decoding.cross_keys_values(block.crossattention, memory)) for block in decoder.h]
        cache = lean_decoding.SelfAttentionCache(decoder, batch * beams, max_length, memory.dtype, device)
        step = lean_decoding.DecoderStep(model.decoder)

        def next_log_probs(flat_sequences, position: int, reorder):
            if reorder is not None:
                cache.reorder(position - 1, reorder)
            logits = step(flat_sequences[:, -1:], position, cross, cache)
            return processors(flat_sequences, torch.nn.functional.log_softmax(logits, dim=-1))

        return search(input_ids, next_log_probs, request, max_length)


def search(input_ids, next_log_probs, request: BeamRequest, max_length: int):
    """``GenerationMixin._beam_search`` for our case. ``next_log_probs(flat_sequences, position, reorder)``:
    the processed log-probabilities of the next token of every row, after the model's cache has followed
    ``reorder`` (each row's source row at the previous step; None at the first)."""
    import torch

    device = input_ids.device
    eos = torch.tensor([request.eos_id], device=device)
    num_beams, length_penalty, early_stopping = request.num_beams, request.length_penalty, request.early_stopping
    batch_size = input_ids.shape[0] // num_beams
    cur_len = decoder_prompt_len = input_ids.shape[1]
    beams_to_keep = max(2, 1 + eos.shape[0]) * num_beams
    top_num_beam_mask = torch.cat((torch.ones((num_beams), dtype=torch.bool),
                                   torch.zeros((beams_to_keep - num_beams), dtype=torch.bool)), dim=0).to(device)
    # generate: `pad_token_id or eos_token_id[0]`, so a pad of id 0 fills with the end token
    fill = request.pad_id or request.eos_id
    running_sequences = torch.full((batch_size, num_beams, max_length), fill_value=fill, dtype=torch.int64, device=device)
    running_sequences[:, :, :cur_len] = unflatten_beam_dim(input_ids, batch_size, num_beams)
    sequences = running_sequences.detach().clone()
    # only the first beam's continuations count at the first step (the beams start equal)
    running_beam_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=device)
    running_beam_scores[:, 1:] = -1e9
    beam_scores = torch.full((batch_size, num_beams), fill_value=-1e9, dtype=torch.float, device=device)
    is_sent_finished = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=device)
    is_early_stop_heuristic_unsatisfied = torch.ones((batch_size, 1), dtype=torch.bool, device=device)
    running_beam_indices = torch.full((batch_size, num_beams, max_length - cur_len), fill_value=-1, dtype=torch.int32,
                                      device=device)
    beam_indices = running_beam_indices.detach().clone()
    flat_running_sequences, reorder = input_ids, None
    while True:
        log_probs = next_log_probs(flat_running_sequences, cur_len - decoder_prompt_len, reorder)
        log_probs = unflatten_beam_dim(log_probs, batch_size, num_beams)
        log_probs = log_probs + running_beam_scores[:, :, None]
        log_probs = torch.reshape(log_probs, (batch_size, -1))  # (batch, beams × vocabulary)
        topk_log_probs, topk_running_sequences, topk_running_beam_indices = top_k_continuations(
            log_probs, running_sequences, running_beam_indices, cur_len, decoder_prompt_len, beams_to_keep, num_beams,
            batch_size)
        next_token_hits_stopping_criteria = unflatten_beam_dim(
            hits_stopping_criteria(flatten_beam_dim(topk_running_sequences[:, :, :cur_len + 1]), max_length, eos),
            batch_size, beams_to_keep)
        running_sequences, running_beam_scores, running_beam_indices = running_beams_for_next_iteration(
            topk_log_probs, topk_running_sequences, topk_running_beam_indices, next_token_hits_stopping_criteria,
            num_beams)
        sequences, beam_scores, beam_indices, is_sent_finished = update_finished_beams(
            sequences, topk_running_sequences, beam_scores, topk_log_probs, beam_indices, topk_running_beam_indices,
            is_early_stop_heuristic_unsatisfied, is_sent_finished, next_token_hits_stopping_criteria,
            top_num_beam_mask, num_beams, cur_len, decoder_prompt_len, length_penalty, early_stopping)
        reorder = flatten_beam_dim(running_beam_indices[..., cur_len - decoder_prompt_len])
        cur_len += 1
        is_early_stop_heuristic_unsatisfied = check_early_stop_heuristic(
            is_early_stop_heuristic_unsatisfied, running_beam_scores, beam_scores, is_sent_finished, cur_len, max_length,
            decoder_prompt_len, early_stopping, length_penalty)
        if not has_unfinished_sequences(is_early_stop_heuristic_unsatisfied, is_sent_finished,
                                        next_token_hits_stopping_criteria, early_stopping):
            break
        flat_running_sequences = flatten_beam_dim(running_sequences[:, :, :cur_len])
    num_return_sequences = request.num_return_sequences
    sequences = flatten_beam_dim(sequences[:, :num_return_sequences, :])
    beam_indices = flatten_beam_dim(beam_indices[:, :num_return_sequences, :])
    # the longest returned sequence's length: beam_indices holds -1 past each sequence's last token
    max_generated_length = ((beam_indices + 1).bool()).sum(dim=1).max()
    return sequences[:, :decoder_prompt_len + int(max_generated_length)]


def flatten_beam_dim(tensor):
    """[batch, beams, ...] → [batch × beams, ...]"""
    import torch

    shape = list(tensor.shape)
    return torch.reshape(tensor, [shape[0] * shape[1]] + shape[2:])


def unflatten_beam_dim(tensor, batch_size: int, num_beams: int):
    """[batch × beams, ...] → [batch, beams, ...]"""
    import torch

    shape = list(tensor.shape)
    return torch.reshape(tensor, [batch_size, num_beams] + shape[1:])


def gather_beams(tensor, beam_indices):
    """The beams ``beam_indices`` (batch, selected) picks from ``tensor`` (batch, beams, ...)."""
    import torch

    while len(beam_indices.shape) < len(tensor.shape):
        beam_indices = beam_indices.unsqueeze(-1)
    return torch.take_along_dim(input=tensor, indices=beam_indices, dim=1)


def hits_stopping_criteria(sequences, max_length: int, eos):
    """generate's stopping criteria for our case, per row: max length reached (MaxLengthCriteria) or the
    last token an end token (EosTokenCriteria)."""
    import torch

    is_done = torch.full((sequences.shape[0],), False, device=sequences.device, dtype=torch.bool)
    is_done = is_done | torch.full((sequences.shape[0],), sequences.shape[1] >= max_length, device=sequences.device,
                                   dtype=torch.bool)
    return is_done | torch.isin(sequences[:, -1:], eos).any(dim=-1)


def top_k_continuations(accumulated_log_probs, running_sequences, running_beam_indices, cur_len: int,
                        decoder_prompt_len: int, beams_to_keep: int, num_beams: int, batch_size: int):
    """The best ``beams_to_keep`` continuations over all beams of each photo (``_get_top_k_continuations``
    without sampling): twice the beams, so that at least ``num_beams`` do not end even if the best all do."""
    import torch

    topk_log_probs, topk_indices = torch.topk(accumulated_log_probs, k=beams_to_keep)
    vocab_size = accumulated_log_probs.shape[-1] // num_beams
    topk_current_beam_indices = topk_indices // vocab_size
    topk_running_beam_indices = gather_beams(running_beam_indices, topk_current_beam_indices)
    topk_running_sequences = gather_beams(running_sequences, topk_current_beam_indices)
    topk_running_sequences[:, :, cur_len] = topk_indices % vocab_size
    # the source row in the flattened batch
    batch_offset = torch.arange(batch_size, device=topk_indices.device).view(-1, 1) * num_beams
    topk_running_beam_indices[:, :, cur_len - decoder_prompt_len] = topk_current_beam_indices + batch_offset
    return topk_log_probs, topk_running_sequences, topk_running_beam_indices


def running_beams_for_next_iteration(topk_log_probs, topk_running_sequences, topk_running_beam_indices,
                                     next_token_hits_stopping_criteria, num_beams: int):
    """The best ``num_beams`` continuations that did not just end (``_get_running_beams_for_next_iteration``)."""
    import torch

    topk_running_log_probs = topk_log_probs + next_token_hits_stopping_criteria.to(torch.float32) * -1.0e9
    next_topk_indices = torch.topk(topk_running_log_probs, k=num_beams)[1]
    return (gather_beams(topk_running_sequences, next_topk_indices),
            gather_beams(topk_running_log_probs, next_topk_indices),
            gather_beams(topk_running_beam_indices, next_topk_indices))


def update_finished_beams(sequences, topk_running_sequences, beam_scores, topk_log_probs, beam_indices,
                          topk_running_beam_indices, is_early_stop_heuristic_unsatisfied, is_sent_finished,
                          next_token_hits_stopping_criteria, top_num_beam_mask, num_beams: int, cur_len: int,
                          decoder_prompt_len: int, length_penalty: float, early_stopping):
    """The best ``num_beams`` finished sequences so far, with the ones that just ended among the top
    ``num_beams`` continuations scored with the length penalty (``_update_finished_beams``)."""
    import torch

    did_top_num_beams_just_finished = next_token_hits_stopping_criteria & top_num_beam_mask[None, :]
    topk_log_probs = topk_log_probs / ((cur_len + 1 - decoder_prompt_len) ** length_penalty)
    beams_in_batch_are_full = torch.all(is_sent_finished, axis=-1, keepdims=True) & (early_stopping is True)
    topk_log_probs += beams_in_batch_are_full.to(torch.float32) * -1.0e9
    topk_log_probs += (~is_early_stop_heuristic_unsatisfied).to(torch.float32) * -1.0e9
    topk_log_probs += (~did_top_num_beams_just_finished) * -1.0e9
    merged_sequences = torch.cat((sequences, topk_running_sequences), dim=1)
    merged_scores = torch.cat((beam_scores, topk_log_probs), dim=1)
    merged_beam_indices = torch.cat((beam_indices, topk_running_beam_indices), dim=1)
    merged_is_sent_finished = torch.cat((is_sent_finished, did_top_num_beams_just_finished), dim=1)
    topk_merged_indices = torch.topk(merged_scores, k=num_beams)[1]
    return (gather_beams(merged_sequences, topk_merged_indices), gather_beams(merged_scores, topk_merged_indices),
            gather_beams(merged_beam_indices, topk_merged_indices),
            gather_beams(merged_is_sent_finished, topk_merged_indices))


def check_early_stop_heuristic(is_early_stop_heuristic_unsatisfied, running_beam_scores, beam_scores, is_sent_finished,
                               cur_len: int, max_length: int, decoder_prompt_len: int, early_stopping,
                               length_penalty: float):
    """Per photo, whether the best running beam may still beat the worst finished one
    (``_check_early_stop_heuristic``: its best possible length is the current one, or the maximum with
    early_stopping "never" and a positive length penalty)."""
    import torch

    if early_stopping == "never" and length_penalty > 0.0:
        best_hypothetical_length = max_length - decoder_prompt_len
    else:
        best_hypothetical_length = cur_len - decoder_prompt_len
    best_possible_running_score = running_beam_scores[:, :1] / (best_hypothetical_length**length_penalty)
    worst_finished_score = torch.where(is_sent_finished, torch.min(beam_scores, dim=1, keepdim=True)[0], -1.0e9)
    return is_early_stop_heuristic_unsatisfied & torch.any(best_possible_running_score > worst_finished_score, dim=-1,
                                                           keepdim=True)


def has_unfinished_sequences(is_early_stop_heuristic_unsatisfied, is_sent_finished, next_token_hits_stopping_criteria,
                             early_stopping) -> bool:
    """Whether to run another step (``_beam_search_has_unfinished_sequences``): a photo's running beams may
    still improve, not every photo has all its beams finished (early_stopping True), and some continuation
    did not hit a stopping criterion."""
    import torch

    improvement_possible = torch.any(is_early_stop_heuristic_unsatisfied)
    exists_open_beam = ~(torch.all(is_sent_finished) & (early_stopping is True))
    valid_continuations = ~torch.all(next_token_hits_stopping_criteria)
    return bool(improvement_possible & exists_open_beam & valid_continuations)
