"""Word-level tokenizers built from text, for models trained from scratch offline (the demo, tests)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def build_word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A fast tokenizer whose vocabulary is every word and punctuation mark in ``texts``.

    Ids follow T5's conventions (pad 0, EOS 1, unknown 2) and EOS is appended, so a T5 built from a config
    works with it unchanged; offsets come for free, which attribution needs.
    """
    splitter = pre_tokenizers.Whitespace()
    words = sorted({word for text in texts for word, _ in splitter.pre_tokenize_str(text)})
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = splitter
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces, punctuation attached
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
