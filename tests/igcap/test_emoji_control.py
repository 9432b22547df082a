"""Emoji keep / none / at most N, enforced while decoding on a tiny model pushed to write emoji."""

import pytest

from igcap.emoji_control import EmojiLimitProcessor, emoji_table, prefix_starts_emoji, token_bytes
from igcap.text import count_emoji
from tests import builders


@pytest.fixture(scope="module")
def model(tokenizer):
    return builders.make_tiny_model(tokenizer, seed=3)


class PreferEmoji:
    """Pushes the model towards tokens holding a whole emoji, as an emoji-happy model would be."""

    def __init__(self, tokenizer, bonus=30.0):
        import torch

        self.ids = torch.tensor([i for i, b in enumerate(token_bytes(tokenizer))
                                 if count_emoji(b.decode("utf-8", errors="ignore"))])
        self.bonus = bonus

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += self.bonus
        return scores


def generate(model, tokenizer, processors, **kwargs):
    import torch
    from transformers import LogitsProcessorList

    eos = tokenizer.eos_token_id
    pixels = torch.zeros(2, 3, 224, 224)
    torch.manual_seed(0)
    out = model.generate(pixel_values=pixels, max_new_tokens=16, min_new_tokens=16, eos_token_id=eos, pad_token_id=eos,
                         decoder_start_token_id=eos, logits_processor=LogitsProcessorList(processors), **kwargs)
    table = emoji_table(tokenizer).token_bytes
    data = [b"".join(table[i] for i in seq[1:]) for seq in out.tolist()]
    return [d.decode("utf-8", errors="replace") for d in data]


def test_the_table_finds_emoji_tokens_and_emoji_pieces(tokenizer):
    table = emoji_table(tokenizer)
    emoji_bytes = {table.token_bytes[i] for i in table.emoji_ids.tolist()}
    assert " 🌅".encode() in emoji_bytes and b"\xf0\x9f" in emoji_bytes  # a whole emoji, and the start of one
    assert all(count_emoji(b.decode("utf-8", errors="ignore")) or b.endswith(b"\xf0\x9f") for b in emoji_bytes)
    assert prefix_starts_emoji(b"\xe2\x9c") and not prefix_starts_emoji(b"\xe2\x80")  # ✨ yes; ’ and … no
    assert emoji_table(tokenizer) is table  # built once per tokenizer


@pytest.mark.parametrize("strategy", [{"do_sample": False}, {"do_sample": True, "top_k": 0},
                                      {"num_beams": 3, "do_sample": False}])
def test_at_most_n_emoji_whatever_the_model_prefers(model, tokenizer, strategy):
    keep = generate(model, tokenizer, [PreferEmoji(tokenizer)], **strategy)
    assert all(count_emoji(t) >= 4 for t in keep), keep  # left alone, the pushed model writes many emoji
    for limit in (0, 2):
        texts = generate(model, tokenizer, [PreferEmoji(tokenizer), EmojiLimitProcessor(tokenizer, limit)], **strategy)
        assert [count_emoji(t) for t in texts] == [limit, limit], (limit, texts)  # it still writes up to the cap


def test_the_start_token_and_prompt_count_towards_the_cap(tokenizer):
    import torch

    prompt = tokenizer("Sunset 🌅", add_special_tokens=False).input_ids
    ids = torch.tensor([[tokenizer.eos_token_id, *prompt]])
    scores = torch.zeros(1, len(tokenizer))
    EmojiLimitProcessor(tokenizer, 1)(ids, scores)
    blocked = set(torch.nonzero(scores[0] == float("-inf")).flatten().tolist())
    assert blocked == set(emoji_table(tokenizer).emoji_ids.tolist())  # the prompt's 🌅 used the one allowed
    assert tokenizer.eos_token_id not in blocked


def test_sessions_at_once_share_one_table_and_agree():
    """Streamlit sessions are threads: the first captions of several at once build one table, not several."""
    import threading

    import torch

    tokenizer = builders.make_tokenizer()  # a tokenizer no table was built for yet
    ids = torch.tensor([[tokenizer.eos_token_id, *tokenizer("a red circle 🎨", add_special_tokens=False).input_ids]])
    tables, blocked, errors = [], [], []
    start = threading.Barrier(6)

    def session():
        try:
            start.wait()
            processor = EmojiLimitProcessor(tokenizer, 1)
            scores = processor(ids, torch.zeros(1, len(tokenizer)))
            tables.append(processor.table)
            blocked.append(frozenset(torch.nonzero(scores[0] == float("-inf")).flatten().tolist()))
        except Exception as err:  # noqa: BLE001 - asserted below
            errors.append(err)

    threads = [threading.Thread(target=session) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(tables) == 6
    assert all(t is tables[0] for t in tables) and len(set(blocked)) == 1 and blocked[0]



@pytest.fixture(scope="module")
def keycap_tokenizer():
    """A tiny tokenizer that has tokens for keycaps, whole ("⃣", "️⃣", " #️⃣") and in bytes."""
    return builders.make_tokenizer(extra_lines=("Top tips 1\ufe0f\u20e3 2\ufe0f\u20e3 #\ufe0f\u20e3 *\u20e3",))


def _ids_for(tokenizer, text: str, partial: bytes = b"") -> list[int]:
    """The decoder start token, text's tokens, then one byte-level token per byte of a partial character."""
    from igcap.emoji_control import _bytes_to_unicode

    table = _bytes_to_unicode()
    return [tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False).input_ids,
            *tokenizer.convert_tokens_to_ids([table[b] for b in partial])]


def _blocked(tokenizer, ids: list[int], limit: int) -> set[int]:
    import torch

    scores = EmojiLimitProcessor(tokenizer, limit)(torch.tensor([ids]), torch.zeros(1, len(tokenizer)))
    return set(torch.nonzero(scores[0] == float("-inf")).flatten().tolist())


@pytest.mark.parametrize("text, partial", [("Press", b""), ("Press 1", b""), ("Press 1\ufe0f", b""),
                                           ("Press 1\ufe0f", b"\xe2\x83")])
def test_keycap_emoji_are_blocked_at_the_cap(keycap_tokenizer, text, partial):
    # "1️⃣" is "1" + U+FE0F + U+20E3: the digit and the selector are no emoji by themselves, so the keycap
    # mark that makes one has to be blocked, whether a token writes it whole, with the rest, or finishes it.
    written = text.encode() + partial
    keycap = {i for i, b in enumerate(emoji_table(keycap_tokenizer).token_bytes)
              if "\u20e3" in (written + b).decode(errors="ignore")}
    assert keycap  # the vocabulary can write one here
    ids = _ids_for(keycap_tokenizer, text, partial)
    assert keycap <= _blocked(keycap_tokenizer, ids, 0)
    assert not keycap & _blocked(keycap_tokenizer, ids, 1)
    assert keycap_tokenizer(" tips", add_special_tokens=False).input_ids[0] not in _blocked(keycap_tokenizer, ids, 0)


def test_a_keycap_in_the_start_words_counts_towards_the_cap(keycap_tokenizer):
    ids = _ids_for(keycap_tokenizer, "Step 1\ufe0f\u20e3")
    assert _blocked(keycap_tokenizer, ids, 1) == set(emoji_table(keycap_tokenizer).emoji_ids.tolist())
