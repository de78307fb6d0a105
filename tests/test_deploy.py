"""deploy/: the image and the TFJob manifest are what the trainer expects of them (no cluster needed)."""

import re
import tomllib
from pathlib import Path

import typer
import yaml

from trainer.cli import app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def manifests() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "tfjob.yaml").read_text())}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_tfjob_has_a_chief_and_workers_that_a_restart_resumes():
    found = manifests()
    assert set(found) == {"TFJob", "PersistentVolumeClaim"}
    job, claim = found["TFJob"], found["PersistentVolumeClaim"]
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # the chief and every worker write runs/ on it
    specs = job["spec"]["tfReplicaSpecs"]
    assert set(specs) == {"Chief", "Worker"} and specs["Chief"]["replicas"] == 1
    replicas = sum(spec["replicas"] for spec in specs.values())
    known = {opt for param in typer.main.get_command(app).params for opt in param.opts}
    commands = set()
    for name, spec in specs.items():
        assert spec["restartPolicy"] == "ExitCode", name  # retries 143 (preempted, peer lost), not 2 (a mistake)
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "tensorflow", name  # the operator's name for the training container
        args = container["args"]
        assert {a for a in args if a.startswith("--")} <= known, name
        assert int(option(args, "--batch-size")) % replicas == 0, name  # the global batch splits over replicas
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        for path in (option(args, "--run-dir"), args[0]):  # the run directory and the video live on the claim
            mount = next(m for m in mounts if path.startswith(m.rstrip("/") + "/"))
            assert mounts[mount]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"], (name, path)
        commands.add(tuple(args))
    assert len(commands) == 1  # every replica runs the same command


def test_the_image_copies_what_exists_and_starts_the_trainer():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = [source for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for source in line.split()[:-1]]
    assert copied and all((ROOT / source).exists() for source in copied), copied
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entry,) = re.findall(r'^ENTRYPOINT \["([\w-]+)"\]', dockerfile, re.M)
    assert entry in scripts and scripts[entry] == "trainer.cli:main"
    assert "make install GPU=1" in dockerfile and re.search(r"then make install;", dockerfile)
