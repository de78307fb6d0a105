"""More than one worker: each reads its own share, a lost peer or a preemption ends the cluster cleanly in
bounded time, a restart resumes at the step every worker saved, and the workers end with the same weights."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from itertools import combinations

import numpy as np
import pytest
from conftest import PROGRAMS, barcode_frame, read_barcode, write_video

from infer.config import resolve
from trainer import data, store
from trainer.plan import plan, shard

BOUND = 60  # seconds: a worker whose peer is lost must have said so and stopped by then


def mine_frames(plans) -> set[tuple[int, int]]:
    return {(n, f) for n, p in enumerate(plans) for f in p.frames_used("train")}


@pytest.mark.parametrize("workers", [2, 3])
def test_each_worker_reads_its_own_block_and_together_they_read_every_window_once(barcode_video, tmp_path,
                                                                                   workers):
    import tensorflow as tf

    second = write_video(tmp_path / "second.mp4", (barcode_frame(1000 + i, 64, 96) for i in range(60)))
    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video), str(second)), "stride": 3, "hop": 1,
                                             "jitter": 0.0}, "train": {"batch_size": workers}})
    plans = plan(config)
    every = sorted(tuple(base + f for f in w) for base, p in zip((0, 1000), plans, strict=True)
                   for w in p.splits["train"].windows(3, 2))  # as barcodes: the second video counts from 1000
    shares = []
    for me in range(workers):
        mine = shard(plans, "train", me, workers)
        count = sum(len(p.splits["train"].starts) for p in mine)
        frames = store.open_store(config, mine, "train", tmp_path / "frames", f"train-{me}-of-{workers}")
        assert frames.count == count and frames.bytes == len(mine_frames(mine)) * 64 * 64 * 3  # its own frames only
        pipeline = tf.distribute.InputContext(workers, me, workers)
        batches = [windows[0] for _, windows in data.train_batches(config, frames, 0, pipeline).take(count)
                   .as_numpy_iterator()]  # per replica: 1 window
        epoch = [tuple(read_barcode(frame) for frame in window) for window in batches]
        assert len(set(epoch)) == count  # one epoch of a worker: each of its windows once
        resumed = next(data.train_batches(config, frames, 2, pipeline).as_numpy_iterator())[1][0]
        np.testing.assert_array_equal(resumed, batches[2])  # a resumed worker picks up at its own position
        shares.append(set(epoch))
    assert all(a.isdisjoint(b) for a, b in combinations(shares, 2))
    assert sorted(set().union(*shares)) == every
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # a remainder is one window, said at start


def test_mirrored_over_two_cpus_matches_one_device_on_the_same_global_batch(square_video, tmp_path):
    result = subprocess.run([sys.executable, PROGRAMS / "two_cpus.py", "losses", str(square_video),
                             str(tmp_path / "cache"), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, mirrored = json.loads(result.stdout.strip().splitlines()[-1])
    for step_one, step_mirrored in zip(one, mirrored, strict=True):
        for name in ("gen", "gan", "l1", "disc"):
            assert step_mirrored[name] == pytest.approx(step_one[name], rel=1e-4), (name, one, mirrored)


class FailingCollective:
    """A strategy whose collective fails with `error`, as one does when a peer is gone or something else breaks."""

    def __init__(self, error):
        self.error = error

    def run(self, fn):
        raise self.error

    def reduce(self, op, value, axis):
        return value


def test_the_barrier_lets_a_worker_already_gone_pass_and_raises_any_other_error():
    import tensorflow as tf

    from trainer import faults

    faults.barrier(tf.distribute.get_strategy())  # alone: everyone is here at once
    for gone in (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
                 tf.errors.FailedPreconditionError):
        faults.barrier(FailingCollective(gone(None, None, "/job:worker/replica:0/task:1 is gone")))
    for real in (tf.errors.InvalidArgumentError, tf.errors.ResourceExhaustedError, tf.errors.InternalError):
        with pytest.raises(real, match="^broken$"):
            faults.barrier(FailingCollective(real(None, None, "broken")))


class Cluster:
    """`epilogue-train --local-workers 2` on the tiny preset, its lines collected as they come."""

    def __init__(self, video, run_dir, steps: int):
        command = [sys.executable, "-m", "trainer.cli", str(video), "--preset", "tiny", "--steps", str(steps),
                   "--batch-size", "2", "--local-workers", "2", "--run-dir", str(run_dir)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "CI": "1"})
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.pids = [int(p) for p in re.search(r"pids (\d+), (\d+)", self.wait_for("local cluster:")).groups()]

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 300) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if found := [line for _, line in self.lines if text in line]:
                return found[0]
            if self.process.poll() is not None:
                time.sleep(0.5)  # the reader's last lines
                end = min(end, time.monotonic())
            time.sleep(0.1)
        raise AssertionError(f"no line with {text!r} in {timeout} s:\n" + self.output)

    def when(self, text: str) -> float:
        return next(t for t, line in self.lines if text in line)

    def end(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # the reader's last lines
        return code

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


@pytest.mark.heavy
@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])  # a dead node; a partitioned one (its socket stays open)
def test_a_lost_worker_ends_the_other_in_bounded_time_with_one_line(square_video, tmp_path, fault):
    cluster = Cluster(square_video, tmp_path / "run", steps=100_000)
    cluster.wait_for("[worker 1] eval at step 20")
    os.kill(cluster.pids[1], getattr(signal, fault))
    sent = time.monotonic()
    try:
        said = cluster.wait_for("[worker 0] error:", timeout=BOUND + 30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already reaped by the launcher
            os.kill(cluster.pids[1], signal.SIGKILL)
    assert cluster.end() == 143  # worker 0's: TFJob's ExitCode policy retries it
    assert re.fullmatch(r"\[worker 0\] error: worker 1 of 2 stopped responding at step (\d+); restart the job to "
                        r"resume from step (20|40|60|80)", said), cluster.output
    assert cluster.when("[worker 0] error:") - sent < BOUND
    worker0 = [line for _, line in cluster.lines if line.startswith("[worker 0]")]
    assert not [line for line in worker0 if "Traceback" in line or "E0000" in line or "GRPC" in line], worker0[-20:]
    assert "local cluster: stopped (exit 143); resume: run the same command again" in cluster.output


@pytest.mark.heavy
def test_a_preempted_cluster_saves_one_step_everywhere_exits_143_and_resumes_there(square_video, tmp_path):
    import tensorflow as tf

    run, other = tmp_path / "run", tmp_path / "run" / "workers" / "worker-1"
    first = Cluster(square_video, run, steps=60)
    first.wait_for("[worker 0] eval at step 20")
    first.process.send_signal(signal.SIGTERM)  # the launcher passes it to both, as a pod delete would
    assert first.end() == 143, first.output
    stopped = {int(n) for n in re.findall(r"\[worker \d\] stopped at step (\d+) with the whole cluster", first.output)}
    assert len(stopped) == 1 and 20 < (step := stopped.pop()) < 60, first.output
    for where in (run, other):
        assert tf.train.latest_checkpoint(str(where / "checkpoints")).endswith(f"ckpt-{step}")

    second = Cluster(square_video, run, steps=60)
    assert second.end() == 0, second.output
    assert second.output.count(f"resuming at step {step} of 60") == 2
    assert "local cluster: all 2 workers done" in second.output
    assert json.loads((run / "metrics.json").read_text())["step"] == 60
    assert json.loads((other / "metrics.json").read_text())["step"] == 60
    assert sorted(p.name for p in (run / "workers").iterdir()) == ["worker-1"]

    def weights(where):
        prefix = tf.train.latest_checkpoint(str(where / "checkpoints"))
        return {name: tf.train.load_variable(prefix, name) for name, _ in tf.train.list_variables(prefix)
                if name.startswith("gen_opt/_trainable_variables/")}  # the generator, through its optimizer

    mine, theirs = weights(run), weights(other)
    assert mine and mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
