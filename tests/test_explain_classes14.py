"""Classes of this round, answered by the rules alone (the corpus model switched off, so that the rule is what is
tested), each on a real development row (benchmarks/explain_eval, by id) or an upstream program's own message:

- GPU code missing for an arch said in a sentence ("has no SM70 kernel image", "the sm_120 kernel image is
  missing") is no-kernel-image; a sentence about kernel images with no arch in it is not.
"""

from __future__ import annotations

import pytest
from evalrows import ROWS, slugs

pytestmark = pytest.mark.usefixtures("rules_only")

top = slugs


def test_a_kernel_image_missing_for_an_arch_in_words_is_no_kernel_image():
    assert top(ROWS["h11184"]["excerpt"])[0] == "no-kernel-image"  # gptq_marlin_repack has no SM70 kernel image
    assert top("The sm_120 kernel image is missing from the 0.9.2 wheel")[0] == "no-kernel-image"
    assert top("flash_attn ships no kernel image for compute capability 12.0")[0] == "no-kernel-image"


def test_kernel_images_without_an_arch_are_not_no_kernel_image():
    assert "no-kernel-image" not in top("there is no kernel image problem here, the model config is wrong")
