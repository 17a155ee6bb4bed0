"""explain answers nothing (no article, not even a likely one) for an error of the model, the request, the data or
the user's code, and still names the article where a real environment signature is in the same text.

Each negative is the wording of the library that raises it, with its source file named; the numbers, paths and
names in them are made up. The gates are explain.NOT_ENVIRONMENT (never the GPU stack) and
explain.NOT_ENVIRONMENT_UNLESS_EVIDENCE (words that also turn up around a GPU-stack failure: silent only where
the text carries no environment evidence)."""

from __future__ import annotations

import pytest

from bwdoctor import explain
from bwdoctor.explain import analyse_text, evidence_keys, extract_evidence
from bwdoctor.knowledge import load_all

ARTS = load_all()

NEGATIVES = [
    # huggingface_hub utils/_http.py hf_raise_for_status (GatedRepo, RepoNotFound, EntryNotFound)
    "huggingface_hub.errors.GatedRepoError: 403 Client Error.\n\nCannot access gated repo for url "
    "https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json.",
    "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error.\n\nRepository Not Found for url: "
    "https://huggingface.co/api/models/someone/nothing-here.\nPlease make sure you specified the correct `repo_id` "
    "and `repo_type`.",
    "huggingface_hub.errors.RemoteEntryNotFoundError: 404 Client Error.\n\nEntry Not Found for url: "
    "https://huggingface.co/org/model/resolve/main/model_index.json.",
    # huggingface_hub file_download.py and utils/_http.py (offline mode)
    "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache and outgoing "
    "traffic has been disabled. To enable hf.co look-ups and downloads online, set 'local_files_only' to False.",
    "huggingface_hub.errors.OfflineModeIsEnabled: Cannot reach https://huggingface.co/api/models/org/m: offline mode "
    "is enabled. To disable it, please unset the `HF_HUB_OFFLINE` environment variable.",
    # transformers utils/hub.py cached_file
    "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached "
    "files.\nCheck your internet connection or see how to run the library in offline mode at "
    "'https://huggingface.co/docs/transformers/installation#offline-mode'.",
    # transformers dynamic_module_utils.py resolve_trust_remote_code (5.x, then 4.x)
    "ValueError: The repository for org/custom-7b contains custom code which must be executed to correctly load the "
    "model. You can inspect the repository content at https://hf.co/org/custom-7b.\nPlease pass the argument "
    "`trust_remote_code=True` to allow custom code to be run.",
    "ValueError: Loading org/custom-7b requires you to execute the configuration file in that repo on your local "
    "machine. Make sure you have read the code there to avoid malicious use, then set the option "
    "`trust_remote_code=True` to remove this error.",
    # transformers tokenization_utils_base.py, models/auto/tokenization_auto.py
    "ValueError: Asking to pad but the tokenizer does not have a padding token. Please select a token to use as "
    "`pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)`",
    "ValueError: Tokenizer class Qwen9Tokenizer does not exist or is not currently imported.",
    # transformers 4.x: utils/hub.py, modeling_utils.py, a config.json newer than the library (the rope_scaling
    # check of models/llama/configuration_llama.py before 4.43)
    "OSError: Error no file named pytorch_model.bin, model.safetensors, tf_model.h5, model.ckpt.index or "
    "flax_model.msgpack found in directory /models/m.",
    # transformers configuration_utils.py: a local model directory without config.json
    "OSError: Can't load the configuration of '/models/Qwen3-8B'. If you were trying to load it from "
    "'https://huggingface.co/models', make sure you don't have a local directory with the same name. Otherwise, "
    "make sure '/models/Qwen3-8B' is the correct path to a directory containing a config.json file",
    "OSError: You seem to have cloned a repository without having git-lfs installed. Please install git-lfs and run "
    "`git lfs install` followed by `git lfs pull` in the folder you cloned.",
    "ValueError: `rope_scaling` must be a dictionary with with two fields, `type` and `factor`, got {'factor': 8.0, "
    "'low_freq_factor': 1.0, 'high_freq_factor': 4.0, 'rope_type': 'llama3'}",
    # tokenizers: serde's error on a tokenizer.json written by a newer tokenizers
    "Exception: data did not match any variant of untagged enum ModelWrapper at line 757479 column 3",
    # jinja2/exceptions.py; the raise_exception() transformers' chat_template_utils.py gives a chat template
    "jinja2.exceptions.TemplateError: Conversation roles must alternate user/assistant/user/assistant/...",
    "jinja2.exceptions.UndefinedError: 'messages' is undefined",
    # safetensors tensor.rs SafeTensorError: the Debug name (<= 0.7), the words (0.8)
    "safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge",
    "safetensors_rust.SafetensorError: Error while deserializing header: incomplete metadata, file not fully covered",
    # vLLM core/scheduler.py, v1/core/sched/scheduler.py
    "WARNING 01-02 03:04:05 scheduler.py:949] Input prompt (9000 tokens) is too long and exceeds limit of 8192",
    # vLLM entrypoints serving: an unknown served model name, a LoRA adapter that is not there
    '{"object":"error","message":"The model `gpt-4` does not exist.","type":"NotFoundError","param":null,"code":404}',
    "vllm.exceptions.LoRAAdapterNotFoundError: Loading lora sql-lora failed: No adapter found for /loras/sql",
    # vLLM 0.6 engine/llm_engine.py and entrypoints/openai/serving_engine.py
    "ValueError: The prompt (total length 9000) is too long to fit into the model (context length 8192). Make sure "
    "that `max_model_len` is no smaller than the number of text tokens.",
    '{"object":"error","message":"The lora adapter \'sql-lora\' cannot be found.","type":"InvalidUserInput"}',
    # vLLM lora/peft_helper.py, the tool parser check, v1/structured_output/backend_xgrammar.py
    "ValueError: LoRA rank 64 is greater than max_lora_rank 16.",
    'ValueError: "auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    "vllm.exceptions.VLLMValidationError: The provided JSON schema contains features not supported by xgrammar.",
    # vLLM model_executor/layers/quantization/fp8.py (block-quantized weights split by tensor parallelism)
    "ValueError: Weight output_partition_size = 1344 is not divisible by weight quantization block_n = 128.",
    # vLLM model_executor/models/registry.py, with no environment evidence
    "ValueError: Model architectures ['MyNewForCausalLM'] are not supported for now. Supported architectures: "
    "dict_keys(['AquilaModel', 'LlamaForCausalLM'])",
    # pydantic_core: a request body that lacks a field
    "pydantic_core._pydantic_core.ValidationError: 1 validation error for ChatCompletionRequest\nmessages\n  Field "
    "required [type=missing, input_value={'model': 'm'}, input_type=dict]",
    # openai/_exceptions.py and _base_client.py ("Error code: %d")
    "openai.UnprocessableEntityError: Error code: 422 - {'detail': [{'loc': ['body', 'messages'], 'msg': 'x'}]}",
    # torch: nn/modules/module.py load_state_dict, ATen shape and dtype checks, the embedding's index check
    "RuntimeError: Error(s) in loading state_dict for LlamaForCausalLM:\n\tsize mismatch for "
    "model.embed_tokens.weight: copying a param with shape torch.Size([32001, 4096]) from checkpoint, the shape in "
    "current model is torch.Size([32000, 4096]).",
    "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4096x4096 and 1024x4096)",
    "RuntimeError: expected scalar type Float but found BFloat16",
    "IndexError: index out of range in self",
    # aten/src/ATen/native/cuda/Indexing.cu's assert, wrapped by a terminal before "failed"
    "Indexing.cu:1422: indexSelectLargeIndex: block: [31,0,0], thread: [16,0,0] Assertion `srcIndex < "
    "srcSelectDimSize`\n failed.",
    # Python: a checkpoint's parameter name, a module and a name of the user's own
    "KeyError: 'model.layers.0.mlp.down_proj.weight'",
    "ModuleNotFoundError: No module named 'my_dataset_utils'",
    "NameError: name 'PeftModel' is not defined",
    # asyncio base_events.py create_server ("error while attempting to bind on address %r: %s"), errno 98
    "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use",
    "OSError: [Errno 98] Address already in use",
    # a model download that fills the disk, a cache directory of another user, a server that is not up
    "OSError: [Errno 28] No space left on device: '/root/.cache/huggingface/hub/models--org--m/blobs/x.incomplete'",
    "PermissionError: [Errno 13] Permission denied: '/root/.cache/huggingface/hub/.locks'",
    "requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=8000): Max retries exceeded with "
    "url: /v1/completions (Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] "
    "Connection refused'))",
    # argparse "unrecognized arguments: %s" with no option among them (a second positional), and nvcc's
    # "Value '%s' is not defined for option 'gpu-architecture'" for a value that is no arch name
    "vllm: error: unrecognized arguments: /models/Qwen3-8B",
    "nvcc fatal   : Value '[sm_80]' is not defined for option 'gpu-architecture'",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_an_error_of_the_model_request_or_code_gets_no_article(text):
    res = analyse_text(text, ARTS)
    assert res["matches"] == [], res["matches"][:2]
    assert res.get("not_environment"), "no gate named the error"


# Environment signatures in the same text as the look-alike words: the article must still win. The environment
# lines are the wording of their sources: vLLM config/vllm.py (the quantization capability check, inside pydantic's
# ValidationError as vLLM's config dataclasses raise it), NCCL src/include/shm.h's WARN, torch's driver check
# (vllm-project/vllm#1772's title), torch's CUDA allocator, ATen's "no kernel image" CUDA error, torch's
# "Found no NVIDIA driver on your system".
MIXED = [
    (
        "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the "
        "cached files.\nRuntimeError: CUDA error: no kernel image is available for execution on the device",
        "no-kernel-image",
    ),
    (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for VllmConfig\n  Value error, The "
        "quantization method fp8 is not supported for the current GPU. Minimum capability: 89. Current capability: "
        "86. [type=value_error, input_value=ArgsKwargs((), {}), input_type=ArgsKwargs]",
        "quant-needs-newer-gpu",
    ),
    ("include/shm.h:28 NCCL WARN Call to posix_fallocate failed : No space left on device", "nccl-shm-too-small"),
    (
        "PermissionError: [Errno 13] Permission denied: '/dev/nvidia0'\n"
        "RuntimeError: Found no NVIDIA driver on your system.",
        "no-driver-in-container",
    ),
    # pydantic's range check of vLLM's config/cache.py (gpu_memory_utilization: Field(gt=0, le=1)): a serve flag's
    # value, the article's own symptom, not a request's validation error
    ("pydantic_core._pydantic_core.ValidationError: 1 validation error for CacheConfig\ngpu_memory_utilization\n"
     "  Input should be less than or equal to 1 [type=less_than_equal, input_value=1.5, input_type=float]",
     "bad-serve-flag-value"),
    ("gpu_memory_utilization: Input should be less than or equal to 1", "bad-serve-flag-value"),
    # a client's connection error pasted under the server's failure: tier 2 names the server's cause
    ("RuntimeError: The NVIDIA driver on your system is too old\nopenai.APIConnectionError: Connection error.",
     "driver-too-old"),
    (
        "KeyError: 'model.embed_tokens.weight'\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate "
        "2.00 GiB.",
        "runtime-oom",
    ),
]  # fmt: skip


@pytest.mark.parametrize("text, slug", MIXED)
def test_an_environment_signature_wins_over_look_alike_words(text, slug):
    res = analyse_text(text, ARTS)
    assert res["matches"] and res["matches"][0]["slug"] == slug, res["matches"][:2]


def test_a_look_alike_gate_opens_only_on_environment_evidence():
    """The same words gate tier 2 alone and not beside an NCCL, OOM or compiled-extension failure."""
    alone = "OSError: [Errno 28] No space left on device"
    shm = "NCCL WARN Error while creating shared memory segment /dev/shm/nccl-x (size 9637888)\n" + alone
    for text, vetoed in ((alone, True), (shm, False)):
        keys = evidence_keys(extract_evidence(text))
        assert bool(explain._not_environment(text, keys)) is vetoed, text
    # a compiled extension of the stack that is missing is the environment's, a module of the user's is not
    assert explain._not_environment("ModuleNotFoundError: No module named 'vllm._C'", []) is None
    assert explain._not_environment("ModuleNotFoundError: No module named 'sgl_kernel.common_ops'", []) is None
    assert explain._not_environment("ModuleNotFoundError: No module named 'train_utils'", [])
    # an op a compiled library lacks (torch/_ops.py's _OpNamespace) and two torch copies are not the user's code
    op = "AttributeError: '_OpNamespace' 'sgl_kernel' object has no attribute 'fp8_scaled_mm'"
    assert explain._not_environment(op, []) is None
    assert (
        explain._not_environment("AttributeError: module 'torch._C' has no attribute 'ComplexDoubleStorageBase'")
        is None
    )
    assert explain._not_environment("AttributeError: 'SamplingParams' object has no attribute 'update'", [])
    # the KV-scale KeyError is an article's (missing-kv-scales), not the user's
    assert explain._not_environment("KeyError: 'model.layers.3.self_attn.k_scale'", []) is None
    # a flag the release does not know is unknown-serve-option's, a well-formed arch nvcc lacks is nvcc-too-old's
    assert explain._not_environment("vllm: error: unrecognized arguments: --swap-space 16", []) is None
    nvcc = "nvcc fatal   : Value 'sm_120' is not defined for option 'gpu-architecture'"
    assert explain._not_environment(nvcc) is None


def test_a_vllm_start_that_only_mentions_trust_remote_code_is_not_gated():
    """vLLM's engine config line lists trust_remote_code=True on every start: only the refusal's wording gates."""
    line = "INFO llm_engine.py:237] Initializing an LLM engine (v0.6.3) with config: model='m', trust_remote_code=True"
    assert explain._not_environment(line, []) is None
