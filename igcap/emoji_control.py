"""Emoji kept, banned, or capped at N while the caption is written, not cut afterwards.

GPT-2's tokenizer is byte-level: one emoji is often two or three tokens ("🌅" = F0 9F 8C 85 may come as
"\\xf0\\x9f" + "\\x8c\\x85"), so a token's decoded text alone does not say whether it writes an emoji. The
table below reads each token's bytes:
- tokens holding a whole emoji, or ending in the first bytes of one (bytes that begin an emoji far more
  often than anything else: F0 9F…, E2 9C…), count as emoji tokens;
- tokens starting with continuation bytes complete whatever character is pending at the end of the
  caption so far; when that completion is an emoji, they are emoji tokens at that step.
A keycap ("1️⃣" = "1" + U+FE0F + U+20E3) is an emoji only through its last character, the keycap mark: a
token writing that mark counts as an emoji token even where it makes no keycap.
:class:`EmojiLimitProcessor` counts the emoji already in each sequence (the "Start with…" words included:
the cap is on the whole caption) and, once the cap is reached, sets the score of every emoji token to -inf.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from functools import lru_cache

from igcap.text import EMOJI, KEYCAP_MARK, count_emoji

EMOJI_PREFIX_SHARE = 0.5  # a partial character whose completions are mostly emoji counts as starting one


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte ↔ printable-character table (the tokenizer's vocabulary is written in it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


_BYTE_OF = {c: b for b, c in _bytes_to_unicode().items()}


def _writes_emoji(char: str) -> bool:
    """Whether one character makes an emoji: one by itself, or the mark that turns "1" into "1️⃣"."""
    return char == KEYCAP_MARK or bool(EMOJI.fullmatch(char))


def _emoji_in(text: str) -> int:
    """Emoji in text, keycap marks outside a keycap included (a token may write the mark alone)."""
    return count_emoji(text) + EMOJI.sub("", text).count(KEYCAP_MARK)


def _seq_len(lead: int) -> int:
    return 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 0


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(leading continuation bytes, whole characters, trailing partial character)."""
    start = 0
    while start < len(data) and 0x80 <= data[start] <= 0xBF:
        start += 1
    end = len(data)
    for back in range(1, min(4, end - start) + 1):
        byte = data[end - back]
        if byte >= 0xC0:
            if _seq_len(byte) > back:
                end -= back
            break
        if byte < 0x80:
            break
    return data[:start], data[start:end], data[end:]


@lru_cache(maxsize=4096)
def prefix_starts_emoji(prefix: bytes) -> bool:
    """Whether a partial UTF-8 character (lead byte + some continuation bytes) mostly completes to an emoji."""
    need = _seq_len(prefix[0]) - len(prefix) if prefix else 0
    if not prefix or need <= 0 or need > 2:  # a lone 4-byte lead (F0) is mostly not emoji; 3 free bytes: skip
        return False
    hits = total = 0
    for tail in range(64 ** need):
        extra = bytes(0x80 | ((tail >> (6 * i)) & 0x3F) for i in reversed(range(need)))
        try:
            char = (prefix + extra).decode("utf-8")
        except UnicodeDecodeError:
            continue
        total += 1
        hits += _writes_emoji(char)
    return total > 0 and hits / total > EMOJI_PREFIX_SHARE


def _completes_emoji(pending: bytes, continuation: bytes) -> bool:
    need = _seq_len(pending[0]) - len(pending)
    if len(continuation) >= need:
        try:
            return _writes_emoji((pending + continuation[:need]).decode("utf-8"))
        except UnicodeDecodeError:
            return False
    return prefix_starts_emoji(pending + continuation)


class EmojiTable:
    """Per tokenizer: each token's bytes, and which tokens write emoji."""

    def __init__(self, tokenizer):
        import torch

        self.token_bytes = token_bytes(tokenizer)
        self.emoji_count = [0] * len(self.token_bytes)  # emoji this token writes by itself
        by_continuation: dict[bytes, list[int]] = defaultdict(list)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        for i, data in enumerate(self.token_bytes):
            if i in special or not data:
                continue
            lead, whole, partial = _split(data)
            self.emoji_count[i] = _emoji_in(whole.decode("utf-8", errors="ignore")) + prefix_starts_emoji(partial)
            if lead:
                by_continuation[lead[:3]].append(i)
        self.by_continuation = dict(by_continuation)
        self.emoji_ids = torch.tensor([i for i, n in enumerate(self.emoji_count) if n], dtype=torch.long)
        self.multi = [(i, n) for i, n in enumerate(self.emoji_count) if n > 1]  # tokens writing several
        self._completing: dict[bytes, object] = {}
        self._lock = threading.Lock()

    def completing(self, pending: bytes):
        """Ids of tokens whose leading continuation bytes turn the pending partial character into an emoji."""
        import torch

        with self._lock:
            if pending not in self._completing:
                ids = [i for cont, group in self.by_continuation.items() if _completes_emoji(pending, cont)
                       for i in group]
                self._completing[pending] = torch.tensor(ids, dtype=torch.long)
            return self._completing[pending]


def token_bytes(tokenizer) -> list[bytes]:
    """Every token's bytes: byte-level vocabularies through GPT-2's table, others through decode()."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    out = []
    for i, piece in enumerate(pieces):
        if piece is None or piece in special:
            out.append(b"")
        elif all(c in _BYTE_OF for c in piece):
            out.append(bytes(_BYTE_OF[c] for c in piece))
        else:
            out.append(tokenizer.decode([i]).encode("utf-8"))
    return out


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def emoji_table(tokenizer) -> EmojiTable:
    """The table for this tokenizer, built once (sessions captioning at once share it)."""
    with _TABLES_LOCK:
        table = _TABLES.get(tokenizer)
        if table is None:
            table = _TABLES[tokenizer] = EmojiTable(tokenizer)
        return table


class EmojiLimitProcessor:
    """A transformers logits processor: at most ``max_emoji`` emoji in each sequence (0 = none).

    ``skip`` leading ids of every sequence are not text (the decoder start token).
    """

    def __init__(self, tokenizer, max_emoji: int, skip: int = 1):
        if max_emoji < 0:
            raise ValueError("max_emoji must be 0 (no emoji) or more")
        self.table, self.max_emoji, self.skip = emoji_table(tokenizer), max_emoji, skip

    def __call__(self, input_ids, scores):
        vocab = scores.shape[-1]
        emoji_ids = self.table.emoji_ids[self.table.emoji_ids < vocab].to(scores.device)
        for row, ids in enumerate(input_ids.tolist()):
            data = b"".join(self.table.token_bytes[i] for i in ids[self.skip:] if i < len(self.table.token_bytes))
            _, _, pending = _split(data)
            started = bool(pending) and prefix_starts_emoji(pending)  # an emoji half written: counted, finished
            left = self.max_emoji - _emoji_in(data.decode("utf-8", errors="ignore")) - started
            if left <= 0:
                scores[row, emoji_ids] = float("-inf")
                if pending and not started:  # e.g. a lone F0 that the next token would make an emoji
                    completing = self.table.completing(pending)
                    scores[row, completing[completing < vocab].to(scores.device)] = float("-inf")
            else:  # a token writing more emoji than are left is blocked too ("😂😂" with one left)
                over = [i for i, n in self.table.multi if n > left and i < vocab]
                if over:
                    scores[row, over] = float("-inf")
        return scores


def emoji_processors(tokenizer, max_emoji: int | None) -> list:
    """The logits processors for an emoji setting: none for "keep" (None)."""
    if max_emoji is None:
        return []
    return [EmojiLimitProcessor(tokenizer, max_emoji)]
