"""The README's Python snippets run as printed.

Every ```python block of README.md, tools/model_converter/README.md and
smd_hpi_examples/*/README.md runs, unchanged, as a script in a fresh interpreter (a crash fails
one test) whose working folder holds the files the READMEs talk about: ``mnist-symbol.json`` /
``mnist-0001.params`` (the zoo's binary LeNet for 28x28 images, exported untrained), the model
converter's ``binarized_mnist-*`` files made from them, and ``out/mnist-*`` (the unconverted
checkpoint under ``out/``, as in the converter README's Python example). Nothing else is
prepared: a snippet that needs a name it does not define fails.
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

from subproc import describe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = ["README.md", "tools/model_converter/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "smd_hpi_examples", "*",
                                                             "README.md")))


def python_blocks(path):
    """[(line number of the opening fence, code)] of the ```python blocks of a markdown file."""
    blocks, code, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fence = line.strip()
            if code is None and fence.startswith("```") and fence[3:].strip() == "python":
                code, start = [], number
            elif code is not None and fence.startswith("```"):
                blocks.append((start, "".join(code)))
                code = None
            elif code is not None:
                code.append(line)
    assert code is None, "%s: the ```python block at line %d is not closed" % (path, start)
    return blocks


SNIPPETS = [(readme, line, code) for readme in READMES
            for line, code in python_blocks(os.path.join(ROOT, readme))]


def test_the_extractor_finds_the_snippets(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text\n```python\na = 1\n```\n```\nshell\n```\n  ```python\nb = 2\nc = 3\n"
                  "  ```\n")
    assert python_blocks(str(md)) == [(2, "a = 1\n"), (8, "b = 2\nc = 3\n")]
    assert any(r == "README.md" for r, _, _ in SNIPPETS)


@pytest.fixture(scope="module")
def tutorial_files(tmp_path_factory):
    """A folder holding mnist-* (a binary LeNet for 28x28 images, exported as `make demo` does),
    binarized_mnist-* (the model converter's output) and out/mnist-*."""
    import mxnet as mx
    from bmxnet import model_zoo
    from bmxnet.converter import convert_checkpoint
    root = tmp_path_factory.mktemp("tutorial")
    (root / "out").mkdir()
    net = model_zoo.get_model("binary_lenet", prefix="lenet_")
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    for folder in (root, root / "out"):
        net.export(str(folder / "mnist"), epoch=1)
    convert_checkpoint(str(root / "mnist-0001.params"))
    assert sorted(os.listdir(str(root))) == [
        "binarized_mnist-0001.params", "binarized_mnist-symbol.json", "mnist-0001.params",
        "mnist-symbol.json", "out"]
    return root


@pytest.mark.parametrize("readme, line, code", SNIPPETS,
                         ids=["%s:%d" % (r, n) for r, n, _ in SNIPPETS])
def test_snippet_runs_as_printed(tmp_path, tutorial_files, readme, line, code):
    work = tmp_path / "work"
    shutil.copytree(str(tutorial_files), str(work))
    script = work / "snippet.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=str(work), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, "%s line %d:\n%s\n%s" % (readme, line, code, describe(proc))
