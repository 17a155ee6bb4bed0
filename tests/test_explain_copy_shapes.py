"""What a copy from a web page, a chat, a word processor or a container runtime does to an error, undone before
matching: no-break and other Unicode spaces, zero-width characters, typographic quotes, docker's JSON log records,
a Markdown list of inline-code lines, the log prefixes of kubectl, pm2 and srun, and a word-wrapped line that broke
at a space. Each shape is applied to real
development rows (benchmarks/explain_eval, by id) that the rules answer rightly as pasted; the answer must stay."""

from __future__ import annotations

import json
import textwrap

import pytest
from evalrows import ROWS, slugs

from bwdoctor.explain import LINE_MAX, normalize

# rows of several families and shapes (one line, a traceback, a log with prefixes), all answered by a signature
IDS = ["h071", "h076", "h10032", "h10052", "h106", "h10227", "h11048", "h11118", "h11158", "h091"]


pytestmark = pytest.mark.usefixtures("rules_only")


def top(text: str):
    return (slugs(text) or [None])[0]


def right(rid: str, slug) -> bool:
    row = ROWS[rid]
    return slug in {row["label"], *row["also"]}


SHAPES = {
    "nbsp": lambda t: t.replace(" ", "\u00a0"),
    "narrow-nbsp": lambda t: t.replace(" ", "\u202f"),
    "zero-width": lambda t: t.replace("_", "_\u200b").replace(".", "\u2060."),
    "smart-quotes": lambda t: t.replace("'", "\u2019").replace('"', "\u201c"),
    "docker-json": lambda t: "\n".join(
        json.dumps({"log": ln + "\n", "stream": "stderr", "time": "2026-11-30T05:00:00.1Z"}) for ln in t.split("\n")
    ),
    "md-inline-code": lambda t: "\n".join(f"- `{ln}`" if ln.strip() else ln for ln in t.split("\n")),
    # log prefixes of kubectl logs --prefix, pm2 and srun --label
    "kubectl": lambda t: "\n".join("[pod/vllm-7d9c5-x2k4p/vllm] " + ln for ln in t.split("\n")),
    "pm2": lambda t: "\n".join("0|vllm     | " + ln for ln in t.split("\n")),
    "srun": lambda t: "\n".join("3: " + ln for ln in t.split("\n")),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("rid", IDS)
def test_a_copied_error_keeps_its_answer(rid, shape):
    text = ROWS[rid]["excerpt"]
    assert right(rid, top(text))  # the row as pasted
    assert right(rid, top(SHAPES[shape](text)))


def test_the_characters_are_made_plain():
    assert normalize("a\u00a0b\u2003c\u200bd \u2018e\u2019 \u201cf\u201d") == "a b cd 'e' \"f\""
    assert normalize("\ufeffImportError") == "ImportError"
    # a text that is not a copy keeps its other non-ASCII characters
    assert normalize("模型 加载 失败 — ✓") == "模型 加载 失败 — ✓"


def test_a_json_record_gives_its_message_and_other_json_stays():
    line = json.dumps({"log": "RuntimeError: CUDA error: no kernel image\n", "stream": "stderr"})
    assert normalize(line) == "RuntimeError: CUDA error: no kernel image"
    # an API's error body is not a log record: it is read as it stands
    body = '{"object": "error", "message": "maximum context length is 4096 tokens", "code": 400}'
    assert normalize(body) == body
    # a broken record, a record whose log is not a string: the line as it stands, no error
    for bad in ['{"log": "unterminated', '{"log": 5}', '{"log": ["a"]}', '{"log": "a\\ud800"']:
        assert normalize(bad) == bad
    # a huge record is cut like any long line before it is read: bounded, no error
    assert len(normalize('{"log": "' + "x" * 100000 + '"}')) <= LINE_MAX + 3


def test_a_markdown_item_of_inline_code_is_its_code():
    assert normalize("- `ImportError: libcudnn.so.9: cannot open shared object file`") == (
        "ImportError: libcudnn.so.9: cannot open shared object file"
    )
    assert normalize("1. `nvidia-smi` shows no GPU") == "1. `nvidia-smi` shows no GPU"  # code inside prose stays


def test_a_word_wrapped_line_that_broke_at_a_space_keeps_the_space():
    text = "ValueError: Free memory on device (16.56/22.05 GiB) on startup is \nless than desired GPU memory"
    assert "startup is less than" in normalize(text)
    # a terminal's hard wrap inside a word (a full line, no blank at the break) is still joined without a space
    sym = "_ZN3c104cuda9SetDeviceEi"
    line = "ImportError: /x/flash_attn_2_cuda.so: undefined symbol: " + sym[:4]
    line = line.rjust(80, "/")
    assert normalize(line + "\n" + sym[4:]).split("\n")[0].endswith(sym)


def _word_wrap(text: str, width: int = 80) -> str:
    return "\n".join(x for ln in text.split("\n") for x in (textwrap.wrap(ln, width, break_on_hyphens=False) or [""]))


@pytest.mark.parametrize("rid", ["h11012", "h11086", "h045"])
def test_a_word_wrapped_paste_keeps_its_answer(rid):
    # some of these lines reach the width exactly; the paste's other breaks say it broke at spaces (h11012:
    # "on|device"), except inside a token longer than a line (h045: a path)
    assert right(rid, top(ROWS[rid]["excerpt"]))
    assert right(rid, top(_word_wrap(ROWS[rid]["excerpt"])))


def test_a_timestamp_prefix_leaves_a_level_word_that_heads_the_message():
    # "FATAL: kernel ..." is xformers' message, not a log level after the timestamp (h11100)
    line = ROWS["h11100"]["excerpt"]
    assert normalize("2026-11-30T05:00:01.123456Z " + line) == line
    assert right("h11100", top("2026-11-30T05:00:01.123456Z " + line))
    # a level between the timestamp and the message still goes
    assert normalize("2024-01-01 12:00:00,123 - ERROR - boom") == "boom"
    assert normalize("2024-01-01 12:00:00 [ERROR] boom") == "boom"
