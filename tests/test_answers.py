"""Which tokens count as yes/no (zeal.scorers.answers) on the real vocabularies, the "exact" spellings of
the published code, P(yes) from top log-probs with its bound, and the local scorer reading exactly the
spellings of its mode (against the model's own logits, computed here independently)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tiny_models
from zeal.errors import ConfigError
from zeal.scorers.answers import (BOUND_TOLERANCE, HFTokenizer, plain_spellings, read_top_logprobs,
                                  resolve_answer_ids)


def _qwen2():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_models.DATA / "qwen2"))


def test_exact_spellings_are_the_published_code_tokens():
    qwen2, tekken = _qwen2(), tiny_models.tekken_tokenizer()
    # LLaVA-OneVision (Qwen2 vocabulary) and Pixtral (tekken): convert_tokens_to_ids("yes") / ("no")
    for tokenizer, model_type in ((qwen2, "llava_onevision"), (tekken, "llava")):
        exact = resolve_answer_ids(tokenizer, "m", "exact", model_type)
        assert exact.yes == (tokenizer.convert_tokens_to_ids("yes"),)
        assert exact.no == (tokenizer.convert_tokens_to_ids("no"),)
    # Qwen2-VL: the ids 9454 / 2753 the published code hard-codes, "Yes" / "No" in the Qwen2 vocabulary
    exact = resolve_answer_ids(qwen2, "m", "exact", "qwen2_vl")
    assert (exact.yes, exact.no) == ((9454,), (2753,))
    assert qwen2.convert_ids_to_tokens([9454, 2753]) == ["Yes", "No"]
    every = resolve_answer_ids(qwen2, "m", "all", "qwen2_vl")
    assert set(exact.yes) < set(every.yes) and set(exact.no) < set(every.no)
    with pytest.raises(ConfigError, match="answer_spellings"):
        resolve_answer_ids(qwen2, "m", "some")


def test_a_tab_before_no_is_not_a_spelling_anywhere():
    qwen2 = _qwen2()
    assert qwen2.decode([72104]) == "\tno"  # Qwen2's '\tno': a token, but not one of the spellings
    spellings = resolve_answer_ids(qwen2, "qwen2")
    assert 72104 not in spellings.no
    top = [(" Yes", -0.3), ("\tno", -0.2), ("No", -2.0), ("the", -4.0)]
    answer = read_top_logprobs(top, spellings)
    yes, no = -0.3, -2.0  # '\tno' is left out, as the local scorer leaves its logit out
    assert answer.p_yes == pytest.approx(1 / (1 + math.exp(no - yes)), abs=1e-12)
    assert read_top_logprobs(top, plain_spellings()).p_yes == pytest.approx(answer.p_yes, abs=1e-12)


def _spelling_top(spellings, logprobs: dict[str, float], floor_tokens: list[tuple[str, float]]):
    return [(text, lp) for text, lp in logprobs.items()] + floor_tokens


def test_missing_spellings_are_bounded_only_when_they_could_matter():
    spellings = resolve_answer_ids(_qwen2(), "qwen2")  # 6 spellings a side
    present = {"Yes": -0.5, " Yes": -1.5, "No": -1.0, " no": -2.5}
    # The smallest returned log-prob is -4: each of the 8 missing spellings may be as likely as that.
    near = read_top_logprobs(_spelling_top(spellings, present, [("the", -4.0)]), spellings)
    assert near.bounded and near.absent == 0
    # The same answer with the floor at -30: the missing spellings cannot move P(yes) by 1e-3.
    far = read_top_logprobs(_spelling_top(spellings, present, [("the", -30.0)]), spellings)
    assert not far.bounded and far.p_yes == pytest.approx(near.p_yes, abs=1e-15)
    # An oracle for the bound: P(yes) with every missing spelling placed at the floor moves by the width.
    yes = np.logaddexp.reduce([-0.5, -1.5] + [-4.0] * 4)
    no = np.logaddexp.reduce([-1.0, -2.5])
    assert abs(1 / (1 + np.exp(no - yes)) - near.p_yes) > BOUND_TOLERANCE
    # A side with no spelling returned is always bounded; the plain rule (spellings unknown) too.
    assert read_top_logprobs([("Yes", -0.1), ("a", -3.0)], spellings).bounded
    unknown = read_top_logprobs(_spelling_top(None, present, [("the", -4.0)]), plain_spellings())
    assert not unknown.bounded and unknown.p_yes == pytest.approx(near.p_yes, abs=1e-15)


def test_the_rule_needs_only_encode_and_decode():
    qwen2 = _qwen2()

    class Plain:  # a tokenizer with nothing but the two calls (what a server's /tokenize gives)
        def __init__(self, tok):
            self.tok = HFTokenizer(tok)

        def encode(self, text):
            return self.tok.encode(text)

        def decode(self, ids):
            return self.tok.decode(ids)

    for mode, model_type in (("all", None), ("exact", "qwen2_vl"), ("exact", "llava_onevision")):
        local = resolve_answer_ids(qwen2, "m", mode, model_type)
        through = resolve_answer_ids(Plain(qwen2), "m", mode, model_type, source="server")
        assert (through.yes, through.no, through.texts) == (local.yes, local.no, local.texts)


@pytest.mark.parametrize("arch,model_type", [("llava_onevision", "llava_onevision"), ("qwen2_vl", "qwen2_vl")])
def test_the_local_scorer_reads_exactly_its_spellings(arch, model_type, tiny):
    """P(yes) of each mode equals softmax over that mode's answer logits of the model's own forward."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from zeal.scorers.local import LVLMScorer

    folder = tiny.lvlm(arch)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    tok = processor.tokenizer
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(2)]
    texts = ["\nThis is a frame from a video of Diving.\nIs the diver on the board? Only answer yes or no.\n",
             "This is a frame from a video of Diving. Is the diver under water? Only answer yes or no."]
    exact_words = ("Yes", "No") if model_type == "qwen2_vl" else ("yes", "no")
    with tiny_models.single_thread():
        for mode in ("exact", "all"):
            scorer = LVLMScorer(model, processor, folder, answer_spellings=mode)
            got = scorer.p_yes(images, texts)
            if mode == "exact":
                yes_ids, no_ids = ([tok.convert_tokens_to_ids(exact_words[0])],
                                   [tok.convert_tokens_to_ids(exact_words[1])])
            else:  # the six vocabulary entries of each answer in the Qwen2 vocabulary (Ġ = a space)
                yes_ids = tok.convert_tokens_to_ids(["yes", "Yes", "YES", "Ġyes", "ĠYes", "ĠYES"])
                no_ids = tok.convert_tokens_to_ids(["no", "No", "NO", "Ġno", "ĠNo", "ĠNO"])
            with torch.inference_mode():
                for i, image in enumerate(images):
                    for j, text in enumerate(texts):
                        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
                        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                        enc = processor(text=[prompt], images=[image], return_tensors="pt", add_special_tokens=False)
                        logits = model(**enc).logits[0, -1].double()
                        yes, no = torch.logsumexp(logits[yes_ids], 0), torch.logsumexp(logits[no_ids], 0)
                        assert got[i, j] == pytest.approx(float(torch.sigmoid(yes - no)), abs=1e-4), (mode, i, j)
            assert scorer.model_id.endswith(f"|answers={mode}")
