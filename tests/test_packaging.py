"""What each install brings: the lean runner's extras pull nothing of TensorFlow."""

import re
import tomllib

from conftest import ROOT

TRAINING_ONLY = {"tensorflow", "keras", "tensorboard", "onnx", "onnxconverter-common", "tf2onnx",
                 "opencv-python-headless"}
MODULES = {"opencv_python_headless": "cv2"}  # packages imported under another name


def requirements(extra: str | None) -> set[str]:
    """Package names an install of the project (with `extra`) asks for, following self-references."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) if extra is None else list(project["optional-dependencies"][extra])
    names = set()
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower()
        if name == "epilogue":
            names |= {n for inner in re.findall(r"\[(.*)\]", requirement)[0].split(",")
                      for n in requirements(inner.strip())}
        else:
            names.add(name)
    return names


def test_the_lean_runner_installs_pull_no_tensorflow():
    for extra in (None, "cpu", "runner-gpu"):
        assert not requirements(extra) & TRAINING_ONLY, extra
    assert "onnxruntime-gpu" in requirements("runner-gpu") and "onnxruntime" not in requirements("runner-gpu")


def test_a_gpu_training_machine_gets_cuda_tensorflow_and_the_gpu_runner():
    gpu = requirements("gpu")
    assert {"tensorflow", "keras", "onnxruntime-gpu"} <= gpu and "onnxruntime" not in gpu


def test_the_training_commands_name_the_extra_for_every_module_it_brings():
    from trainer.extras import TRAINING

    packages = {name.replace("-", "_") for name in requirements("train") - requirements("cpu")}
    assert {MODULES.get(name, name) for name in packages} == TRAINING
