"""Version-aware validation of vLLM serve configs, and rules joining them with machine facts.

lint(config, release, machine) gives Lint records (rule, slug, severity, message, location,
evidence); checks/serve.py lints every config once per run and turns the records into findings, each
pointing to its rule's article (ARTICLE). Pure: reads nothing but its arguments.
"""

from __future__ import annotations

import difflib
import re
from typing import List, Optional

from bwdoctor.domain.versions import version_key as vkey
from bwdoctor.serve.config import ServeConfig, Token
from bwdoctor.serve.releases import Release

from ..records import dataclass, field

# The KB article (kb/<slug>.md) of each rule: a finding of the rule points to it.
ARTICLE = {
    "unknown-flag": "unknown-serve-option",
    "unknown-quantization": "unknown-serve-option",
    "env-not-read": "unknown-serve-option",
    "env-deprecated": "bad-attention-backend",
    "bad-attention-backend": "bad-attention-backend",
    "flashinfer-sm120": "flashinfer-sm120",
    "awq-marlin": "workaround-flags-slow",
    "bitsandbytes-sm120": "bitsandbytes-sm120",
    "workaround-flags-slow": "workaround-flags-slow",
    "fa3-blackwell": "fa3-blackwell",
    "tp-exceeds-gpus": "tp-exceeds-gpus",
    "config-ignored": "config-flag-ignored",
    "sampler-warmup-oom": "sampler-warmup-oom",
    "kv-cache-too-small": "kv-cache-too-small",
    "bad-flag-value": "bad-serve-flag-value",
}
# A variable that selects something with an article of its own points there rather than to ARTICLE's.
ENV_ARTICLE = {"VLLM_ATTENTION_BACKEND": "bad-attention-backend"}


@dataclass
class Lint:
    """One problem in one serve config, at the token a person edits."""

    rule: str
    slug: str
    severity: str
    message: str
    path: str
    line: int
    column: int
    evidence: dict = field(default_factory=dict)


@dataclass
class Machine:
    """What the rules need to know about the machine the config will run on."""

    targets: tuple = ()  # ("sm_120", ...)
    gpu_count: Optional[int] = None
    gpu_mem_bytes: Optional[int] = None  # smallest total memory of the GPUs
    vllm_runs_natively: Optional[bool] = None  # vLLM's _C has code (cubin or PTX) for the targets; None = unknown

    @property
    def blackwell_consumer(self) -> bool:
        return any(t.startswith("sm_12") for t in self.targets)


@dataclass
class Option:
    """One --flag as vLLM's parser sees it, with its value token when it takes one."""

    flag: Token
    name: str  # canonical --long-name (dashes, no =value, no .key)
    value: Optional[Token]
    inline: bool = False  # --flag=value
    dotted: str = ""  # "level" of --compilation-config.level


def canonical(word: str) -> tuple:
    """(--name, dotted key, inline value or None) with FlexibleArgumentParser's `_`→`-` rule."""
    body, inline = word.split("=", 1) if "=" in word else (word, None)
    name, _, dotted = body.partition(".")
    return "--" + name[2:].replace("_", "-"), dotted, inline


def is_boolean(release: Release, name: str) -> bool:
    negs = release.names("negations")
    return (
        ("--no-" + name[2:]) in negs
        or name.startswith("--no-")
        and name in negs
        or name.startswith(("--enable-", "--disable-"))
        and name in negs
    )


def options(cfg: ServeConfig, release: Release) -> tuple:
    """([Option], positional tokens) of a config's argv."""
    out, positional = [], []
    argv = cfg.argv
    i = 0
    while i < len(argv):
        tok = argv[i]
        text = tok.text
        if text.startswith("--") and len(text) > 2:
            name, dotted, inline = canonical(text)
            value = None
            if inline is not None:
                value = Token(inline, tok.path, tok.line, tok.column + len(text) - len(inline), tok.origin)
            elif i + 1 < len(argv) and not _looks_like_option(argv[i + 1].text) and not is_boolean(release, name):
                value = argv[i + 1]
                i += 1
            elif cfg.kind == "vllm-yaml" and i + 1 < len(argv) and argv[i + 1].text.lower() in ("true", "false"):
                value = argv[i + 1]
                i += 1
            out.append(Option(tok, name, value, inline is not None, dotted))
        elif text.startswith("-") and len(text) > 1 and not _is_number(text):
            short = text.split("=", 1)[0].split(".", 1)[0]
            value = None
            if "=" not in text and i + 1 < len(argv) and not _looks_like_option(argv[i + 1].text):
                value = argv[i + 1]
                i += 1
            out.append(Option(tok, short, value, "=" in text))
        else:
            positional.append(tok)
        i += 1
    return out, positional


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _looks_like_option(text: str) -> bool:
    return text.startswith("-") and len(text) > 1 and not _is_number(text)


def _lint(
    rule: str, severity: str, message: str, tok: Token, use_origin: bool = False, slug: Optional[str] = None, **evidence
) -> Lint:
    """A Lint at a token; its article is the rule's (ARTICLE) unless `slug` names a more specific one."""
    where = tok.origin if use_origin and tok.origin else (tok.path, tok.line, tok.column)
    return Lint(rule, slug or ARTICLE[rule], severity, message, where[0], where[1], where[2], evidence)


_SUGGESTED: dict = {}


def suggest(name: str, candidates) -> Optional[str]:
    """The closest known name, for a did-you-mean (memoized: scripts repeat their mistakes)."""
    key = (name, id(candidates), len(candidates))
    if key not in _SUGGESTED:
        # a ratio >= 0.6 needs lengths within a factor of 2; skip the rest before difflib's O(n·m) work
        near = [c for c in candidates if len(name) / 2 <= len(c) <= len(name) * 2]
        match = difflib.get_close_matches(name, near, n=1, cutoff=0.6)
        if len(_SUGGESTED) > 4096:
            _SUGGESTED.clear()
        _SUGGESTED[key] = match[0] if match else None
    return _SUGGESTED[key]


SHORT_ALIASES_ALWAYS = {"-O", "-h"}
# vLLM's short aliases and the long flag each stands for (vllm/engine/arg_utils.py add_cli_args, read from the
# vllm-0.15.1 wheel: parallel_group "--tensor-parallel-size", "-tp" ... ; model_group "--quantization", "-q").
SHORT_ALIAS_OF = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-dcp": "--decode-context-parallel-size",
    "-pcp": "--prefill-context-parallel-size",
    "-dpn": "--data-parallel-rank",
    "-dpr": "--data-parallel-start-rank",
    "-dpl": "--data-parallel-size-local",
    "-dpa": "--data-parallel-address",
    "-dpp": "--data-parallel-rpc-port",
    "-dpb": "--data-parallel-backend",
    "-dph": "--data-parallel-hybrid-lb",
    "-dpe": "--data-parallel-external-lb",
    "-ep": "--enable-expert-parallel",
    "-n": "--nnodes",
    "-r": "--node-rank",
    "-q": "--quantization",
    "-cc": "--compilation-config",
    "-ac": "--attention-config",
}
_KNOWN: dict = {}


def _known(release: Release) -> frozenset:
    """Long flags and their negations of one release (one object per release, so suggest can memoize)."""
    if release.index not in _KNOWN:
        _KNOWN[release.index] = frozenset(release.names("flags") | release.names("negations"))
    return _KNOWN[release.index]


def check_flags(cfg: ServeConfig, release: Release, opts: list) -> list:
    """Unknown and removed flags: argparse stops vLLM with `unrecognized arguments`."""
    out = []
    shorts = release.names("short")
    known = _known(release)
    for o in opts:
        name = o.name
        if name.startswith("--"):
            if name in known:
                continue
            removed = release.removed_in("flags", name) or release.removed_in("negations", name)
            added = release.added_in("flags", name) or release.added_in("negations", name)
            if removed:
                msg = (
                    f"{o.flag.text.split('=')[0]} was removed in vLLM {removed}; vLLM {release.requested} "
                    f"stops with 'unrecognized arguments'"
                )
            elif added:
                msg = (
                    f"{o.flag.text.split('=')[0]} does not exist in vLLM {release.requested} (added in "
                    f"{added}); it stops with 'unrecognized arguments'"
                )
            else:
                alias = "-" + name[2:]  # --tp for vLLM's -tp: the alias, never a look-alike (--dtype)
                hint: Optional[str]
                if alias in shorts and alias in SHORT_ALIAS_OF:
                    hint = f"{alias} ({SHORT_ALIAS_OF[alias]})"
                else:
                    hint = suggest(name, known)
                msg = f"unknown flag {o.flag.text.split('=')[0]} for vLLM {release.requested}" + (
                    f"; did you mean {hint}?" if hint else ""
                )
            out.append(
                _lint(
                    "unknown-flag",
                    "error",
                    msg,
                    o.flag,
                    flag=name,
                    removed_in=removed,
                    added_in=added,
                    vllm=release.version,
                )
            )
        elif name not in shorts and name not in SHORT_ALIASES_ALWAYS and not name.startswith("-O"):
            out.append(
                _lint(
                    "unknown-flag",
                    "error",
                    f"unknown short option {name} for vLLM {release.requested}",
                    o.flag,
                    flag=name,
                )
            )
    return out


ATTENTION_ENV_REPLACEMENT = "--attention-backend (or --attention-config.backend)"


def check_env(cfg: ServeConfig, release: Release) -> list:
    """VLLM_* variables this release does not read (removed ones name the release that removed them)."""
    out = []
    env_names = release.names("env")
    for e in cfg.env:
        if not e.name.startswith("VLLM_") or e.name in env_names:
            continue
        tok = Token(e.name, e.path, e.line, e.column)
        removed = release.removed_in("env", e.name)
        if removed:
            repl = f"; use {ATTENTION_ENV_REPLACEMENT} {e.value}" if e.name == "VLLM_ATTENTION_BACKEND" else ""
            msg = f"{e.name} is not read by vLLM {release.requested} (removed in {removed}): it is ignored{repl}"
        else:
            added = release.added_in("env", e.name)
            hint = suggest(e.name, env_names)
            msg = (
                f"{e.name} is not read by vLLM {release.requested}"
                + (f" (added in {added})" if added else "")
                + (f"; did you mean {hint}?" if hint and not added else "")
            )
        out.append(
            _lint(
                "env-not-read",
                "warning",
                msg,
                tok,
                slug=ENV_ARTICLE.get(e.name),
                variable=e.name,
                value=e.value,
                removed_in=removed,
                vllm=release.version,
            )
        )
    return out


def option_value(opts: list, *names: str) -> Optional[Option]:
    """The last occurrence of any of these flags (argparse keeps the last)."""
    found = None
    for o in opts:
        if o.name in names:
            found = o
    return found


def check_attention(cfg: ServeConfig, release: Release, opts: list, machine: Machine) -> list:
    """Attention backend names: unknown / wrong case / removed; and backends that do not run on sm_12x."""
    out = []
    members = release.names("attention")
    choices = []
    o = option_value(opts, "--attention-backend")
    if o and o.value:
        choices.append((o.value, "--attention-backend"))
    for opt in opts:
        if opt.name == "--attention-config" and opt.dotted == "backend" and opt.value:
            choices.append((opt.value, "--attention-config.backend"))
    env = cfg.env_map().get("VLLM_ATTENTION_BACKEND")
    if env and release.has("env", "VLLM_ATTENTION_BACKEND") and release.has("flags", "--attention-backend"):
        gone = release.added_in("env", "VLLM_ATTENTION_BACKEND") is None and release.last_release_with(
            "env", "VLLM_ATTENTION_BACKEND"
        )
        out.append(
            _lint(
                "env-deprecated",
                "warning",
                f"VLLM_ATTENTION_BACKEND is deprecated in vLLM {release.requested} and no longer read from "
                f"the release after {gone}: use --attention-backend {env.value}",
                Token(env.name, env.path, env.line, env.column),
                variable=env.name,
            )
        )
    if env and release.has("env", "VLLM_ATTENTION_BACKEND"):
        choices.append((Token(env.value, env.path, env.line, env.column + len(env.name) + 1), "VLLM_ATTENTION_BACKEND"))
    for tok, source in choices:
        value = tok.text
        if "$" in value or not value:
            continue
        upper = value.upper()
        if source != "VLLM_ATTENTION_BACKEND" and upper in members:
            name = upper  # --attention-backend is case-insensitive (AttentionBackendEnum[value.upper()])
        elif value in members:
            name = value
        else:
            hint = attention_hint(upper, members)
            removed = release.removed_in("attention", upper)
            msg = f"{source} {value!r} is not an attention backend of vLLM {release.requested}"
            if removed:
                msg += f" (removed in {removed})"
            if hint:
                msg += f"; did you mean {hint}? (names are upper case: TRITON_ATTN, FLASH_ATTN, FLASHINFER)"
            out.append(
                _lint(
                    "bad-attention-backend",
                    "error",
                    msg,
                    tok,
                    use_origin=True,
                    value=value,
                    suggestion=hint,
                    vllm=release.version,
                )
            )
            continue
        if machine.blackwell_consumer:
            out.extend(_attention_on_sm12x(name, tok, release, machine))
    return out


def attention_hint(upper: str, members: set) -> Optional[str]:
    """The backend a short or mis-cased name most likely meant ("triton" → TRITON_ATTN)."""
    if upper + "_ATTN" in members:
        return upper + "_ATTN"
    prefixed = sorted((m for m in members if m.startswith(upper + "_")), key=len)
    return prefixed[0] if prefixed else suggest(upper, members)


# Backends whose supports_compute_capability excludes 12.x (vllm-knowledge §2.2, vLLM 0.33.0 sources)
NOT_ON_SM12X = {
    "FLASHMLA",
    "FLASHMLA_SPARSE",
    "CUTLASS_MLA",
    "FLASHINFER_MLA",
    "FLASH_ATTN_MLA",
    "TOKENSPEED_MLA",
    "FLASHINFER_MLA_SPARSE",
    "FLASHINFER_MLA_SPARSE_SM90",
    "FLASH_ATTN_MLA_SPARSE",
    "HPC_ATTN",
    "TRITON_FLASHINFER",
    "TRITON_FLASH_ATTN",
    "FLASHMLA_SPARSE_DSV4",
    "FLASH_ATTN_MLA_SPARSE_FA4",
}


def _attention_on_sm12x(name: str, tok: Token, release: Release, machine: Machine) -> list:
    targets = ", ".join(t for t in machine.targets if t.startswith("sm_12"))
    if name in NOT_ON_SM12X:
        return [
            _lint(
                "bad-attention-backend",
                "error",
                f"attention backend {name} has no kernels for {targets}; vLLM refuses it ('compute capability "
                f"not supported'): use TRITON_ATTN or FLASH_ATTN (TRITON_MLA for MLA models)",
                tok,
                use_origin=True,
                value=name,
                targets=list(machine.targets),
            )
        ]
    if name == "FLASHINFER" and vkey("0.15.0") <= vkey(release.version) < vkey("0.16.0"):
        return [
            _lint(
                "flashinfer-sm120",
                "warning",
                f"FLASHINFER attention on {targets} with vLLM {release.requested} crashes in "
                "prefill_wrapper.plan(); use --attention-backend TRITON_ATTN (or FLASH_ATTN)",
                tok,
                use_origin=True,
                value=name,
                vllm=release.version,
            )
        ]
    return []


def check_quantization(cfg: ServeConfig, release: Release, opts: list, machine: Machine) -> list:
    """Quantization names; awq/gptq forcing the slow kernel; bitsandbytes on sm_12x."""
    out: List[Lint] = []
    o = option_value(opts, "--quantization", "-q")
    if not o or not o.value or "$" in o.value.text:
        return out
    value = o.value.text
    methods = release.names("quantization")
    if value not in methods:
        removed = release.removed_in("quantization", value)
        hint = suggest(value.lower(), methods)
        msg = f"--quantization {value!r} is not a quantization method of vLLM {release.requested}"
        msg += f" (removed in {removed}; now an out-of-tree plugin)" if removed else ""
        msg += f"; did you mean {hint}?" if hint and hint != value else ""
        out.append(
            _lint("unknown-quantization", "error", msg, o.value, use_origin=True, value=value, removed_in=removed)
        )
        return out
    if value in ("awq", "gptq") and vkey(release.version) < vkey("0.24.0") and f"{value}_marlin" in methods:
        out.append(
            _lint(
                "awq-marlin",
                "warning",
                f"--quantization {value} forces vLLM's slow non-Marlin {value.upper()} kernel "
                f"(vLLM < 0.24 logs 'you specified quantization={value} explicitly, so forcing {value}'): "
                f"use --quantization {value}_marlin or leave --quantization out",
                o.value,
                use_origin=True,
                value=value,
                fix=f"{value}_marlin",
            )
        )
    if value == "bitsandbytes" and machine.blackwell_consumer:
        out.append(
            _lint(
                "bitsandbytes-sm120",
                "error",
                "bitsandbytes kernels give garbage output (e.g. '!!!!!!!') on sm_120: use an AWQ/GPTQ "
                "(Marlin), FP8 or NVFP4 checkpoint instead",
                o.value,
                use_origin=True,
                value=value,
            )
        )
    return out


def workarounds_cost_speed(release: Release, vllm_runs_natively: Optional[bool]) -> bool:
    """Whether Blackwell workaround flags only slow this vLLM down: it has sm_12x code.

    Without that code the workarounds are what keeps it running; unknown (None), an installed vLLM from
    0.9.2 on is taken to have it (PyPI wheels before 0.9.2 carry no sm_120 code). The installed version,
    not the table's nearest release: the table starts at 0.9.2."""
    if vllm_runs_natively is None:
        return vkey(release.requested) >= vkey("0.9.2")
    return vllm_runs_natively


def check_workarounds(cfg: ServeConfig, release: Release, opts: list, machine: Machine) -> list:
    """Blackwell workaround flags left on once the installed vLLM has sm_12x kernels (3–8 vs 32 tok/s)."""
    if not machine.blackwell_consumer or not workarounds_cost_speed(release, machine.vllm_runs_natively):
        return []
    hits = []
    disabled = cfg.env_map().get("VLLM_DISABLED_KERNELS")
    if disabled and "MarlinLinearKernel" in disabled.value:
        hits.append(
            (
                Token(disabled.name, disabled.path, disabled.line, disabled.column),
                "VLLM_DISABLED_KERNELS=MarlinLinearKernel makes AWQ/GPTQ fall back to slow kernels; Marlin runs "
                "on sm_120",
            )
        )
    eager = option_value(opts, "--enforce-eager")
    if eager and not (eager.value and eager.value.text.lower() == "false"):
        hits.append((eager.flag, "--enforce-eager turns off torch.compile and CUDA graphs"))
    attn = option_value(opts, "--attention-backend")
    if hits and attn and attn.value and attn.value.text.upper() == "TRITON_ATTN":
        # alone TRITON_ATTN is a legitimate choice (attention sinks, FlashInfer crashes); next to the
        # other workarounds it is part of the pre-native-kernel recipe
        hits.append((attn.value, "--attention-backend TRITON_ATTN replaces FlashAttention 2, which runs on sm_120"))
    return [
        _lint(
            "workaround-flags-slow",
            "warning",
            f"{why} (vLLM {release.requested} has sm_120 kernels): remove it",
            tok,
            use_origin=True,
        )
        for tok, why in hits
    ]


def check_fa3(cfg: ServeConfig, release: Release, opts: list, machine: Machine) -> list:
    """FlashAttention 3 forced on Blackwell: FA3 is Hopper-only."""
    if not any(t.startswith(("sm_10", "sm_11", "sm_12")) for t in machine.targets):
        return []
    found = []
    env = cfg.env_map().get("VLLM_FLASH_ATTN_VERSION")
    if env and env.value.strip() == "3" and release.has("env", "VLLM_FLASH_ATTN_VERSION"):
        found.append(Token(env.name, env.path, env.line, env.column))
    for o in opts:
        if o.name == "--attention-config" and o.dotted == "flash_attn_version" and o.value and o.value.text == "3":
            found.append(o.flag)
        elif (
            o.name == "--attention-config"
            and o.value
            and '"flash_attn_version"' in o.value.text.replace(" ", "")
            and ":3" in o.value.text.replace(" ", "")
        ):
            found.append(o.flag)
    crash = vkey(release.version) < vkey("0.17.0")
    return [
        _lint(
            "fa3-blackwell",
            "error" if crash else "warning",
            "FlashAttention 3 is Hopper-only (compute capability 9.0); on "
            + ", ".join(machine.targets)
            + (
                " vLLM dies with 'FlashAttention version not detected'"
                if crash
                else " vLLM falls back to FA2 with a warning"
            )
            + ": leave flash_attn_version unset or 2",
            tok,
        )
        for tok in found
    ]


def _int(tok: Optional[Token]) -> Optional[int]:
    try:
        return int(tok.text) if tok else None
    except ValueError:
        return None


def check_parallel(cfg: ServeConfig, opts: list, machine: Machine) -> list:
    """Tensor × pipeline parallel larger than the GPUs this machine has."""
    if not machine.gpu_count:
        return []
    tp_o = option_value(opts, "--tensor-parallel-size", "-tp")
    pp_o = option_value(opts, "--pipeline-parallel-size", "-pp")
    tp, pp = _int(tp_o.value if tp_o else None) or 1, _int(pp_o.value if pp_o else None) or 1
    visible = cfg.env_map().get("CUDA_VISIBLE_DEVICES")
    count = machine.gpu_count
    if visible and visible.value.strip() and "$" not in visible.value:
        count = min(count, len([v for v in visible.value.split(",") if v.strip()]))
    if tp * pp <= count or not (tp_o or pp_o):
        return []
    given = tp_o or pp_o
    assert given is not None  # tested above
    tok = given.value or given.flag
    return [
        _lint(
            "tp-exceeds-gpus",
            "error",
            f"tensor-parallel {tp} × pipeline-parallel {pp} needs {tp * pp} GPUs; this machine has {count}"
            + (" visible (CUDA_VISIBLE_DEVICES)" if count < machine.gpu_count else ""),
            tok,
            use_origin=True,
            tp=tp,
            pp=pp,
            gpus=count,
        )
    ]


def check_config_flag(cfg: ServeConfig, release: Release, opts: list) -> list:
    """--config=x.yaml is silently ignored; YAML `key: false` is dropped up to 0.27."""
    out = []
    for o in opts:
        if o.name == "--config" and o.inline:
            out.append(
                _lint(
                    "config-ignored",
                    "error",
                    f"{o.flag.text}: vLLM only expands --config as two words; with '=' the file is "
                    f"silently ignored: write --config {o.value.text if o.value else 'FILE'}",
                    o.flag,
                )
            )
    if cfg.kind == "vllm-yaml" and vkey(release.version) < vkey("0.28.0"):
        for o in opts:
            if o.value and o.value.text.lower() == "false":
                out.append(
                    _lint(
                        "config-ignored",
                        "warning",
                        f"{o.name[2:]}: false is silently dropped by vLLM {release.requested}'s --config "
                        f"reader (fixed in 0.28.0): use the flag --no-{o.name[2:]} on the command line",
                        o.value,
                    )
                )
    return out


# What vLLM's argument parser and its config classes accept for common flags, read from the vllm-0.15.1 wheel:
# vllm/config/model.py ModelDType = Literal["auto", "half", "float16", "bfloat16", "float", "float32"] (the same
# list since vLLM 0.4); vllm/config/cache.py CacheDType (below) and gpu_memory_utilization = Field(gt=0, le=1);
# vllm/config/parallel.py tensor/pipeline/data_parallel_size: int (argparse type=int; vLLM refuses sizes < 1);
# vllm/config/model.py max_model_len = Field(ge=-1), parsed by human_readable_int_or_auto ("32k", "1M", -1, auto).
MODEL_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
CACHE_DTYPES = {"0.15": ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla")}
PARALLEL_SIZES = (
    ("--tensor-parallel-size", "-tp"),
    ("--pipeline-parallel-size", "-pp"),
    ("--data-parallel-size", "-dp"),
)
HUMAN_INT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgGtT])$")


def _human_int(text: str) -> Optional[int]:
    """vLLM's human_readable_int: 32768, 32k (10^3), 32K (2^10); None when it is not one."""
    t = text.strip()
    if re.match(r"^-?\d+$", t):
        return int(t)
    m = HUMAN_INT.match(t)
    if not m:
        return None
    base = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}.get(m.group(2)) or 2 ** (
        10 * "KMGT".index(m.group(2)) + 10
    )
    return int(float(m.group(1)) * base)


def _bad_value(o: Option, release: Release, why: str, **evidence) -> Lint:
    tok = o.value or o.flag
    flag = o.flag.text.split("=")[0]
    value = o.value.text if o.value else ""
    return _lint(
        "bad-flag-value",
        "error",
        f"{flag} {value}: {why}; vLLM {release.requested} stops at startup",
        tok,
        flag=o.name,
        value=value,
        vllm=release.version,
        **evidence,
    )


def check_values(cfg: ServeConfig, release: Release, opts: list) -> list:
    """Values of common flags vLLM refuses (argparse choices and types, its config classes' ranges)."""
    out = []
    minor = ".".join(str(release.version).split(".")[:2])
    for o in opts:
        if o.value is None or "$" in o.value.text:  # a shell variable: the value is not known here
            continue
        text = o.value.text.strip()
        if o.name == "--dtype" and text not in MODEL_DTYPES:
            hint = suggest(text, MODEL_DTYPES)
            out.append(
                _bad_value(
                    o,
                    release,
                    f"not a model dtype (choose from {', '.join(MODEL_DTYPES)})"
                    + (f"; did you mean {hint}?" if hint else ""),
                    choices=list(MODEL_DTYPES),
                )
            )
        elif o.name == "--kv-cache-dtype" and minor in CACHE_DTYPES and text not in CACHE_DTYPES[minor]:
            out.append(
                _bad_value(
                    o,
                    release,
                    f"not a KV-cache dtype (choose from {', '.join(CACHE_DTYPES[minor])})",
                    choices=list(CACHE_DTYPES[minor]),
                )
            )
        elif o.name == "--gpu-memory-utilization":
            try:
                frac = float(text)
            except ValueError:
                frac = float("nan")
            if not 0 < frac <= 1:  # NaN fails too
                out.append(_bad_value(o, release, "must be a fraction of GPU memory in (0, 1], e.g. 0.9"))
        elif any(o.name in names for names in PARALLEL_SIZES):
            n = _int(o.value)
            if n is None or n < 1:
                out.append(_bad_value(o, release, "must be a whole number of GPUs, at least 1"))
        elif o.name == "--max-model-len":
            n = None if text.lower() == "auto" else _human_int(text)
            if text.lower() != "auto" and (n is None or n < -1 or n == 0):
                out.append(
                    _bad_value(o, release, "must be a number of tokens (32768, 32k) or -1/auto for the model's own")
                )
    return out


def lint(cfg: ServeConfig, release: Release, machine: Optional[Machine] = None) -> list:
    """Every Lint of one config (and the --config files it names) for one vLLM release and machine."""
    machine = machine if machine is not None else Machine()
    out = []
    opts, _ = options(cfg, release)
    if cfg.launcher:
        out += check_flags(cfg, release, opts)
        out += check_values(cfg, release, opts)
        out += check_attention(cfg, release, opts, machine)
        out += check_quantization(cfg, release, opts, machine)
        out += check_workarounds(cfg, release, opts, machine)
        out += check_fa3(cfg, release, opts, machine)
        out += check_parallel(cfg, opts, machine)
        out += check_config_flag(cfg, release, opts)
    else:
        out += check_workarounds(cfg, release, [], machine)
        out += check_fa3(cfg, release, [], machine)
    out += check_env(cfg, release)
    for inc in cfg.includes:
        out += lint(inc, release, machine)
    return out
