"""`epilogue-train --local-workers N` (`make cluster WORKERS=N`): a cluster of N workers on this machine.

The way to try multi-worker training before there is a cluster: each worker is the same command with a
TF_CONFIG of its own on a free loopback port, and TensorFlow does the rest as it would across machines. Their
lines come out prefixed with the worker's name. Ctrl-C (or SIGTERM) is passed to every worker, and they stop
together at one step with a checkpoint, as a preempted cluster does; running the same command resumes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO

from infer.errors import UserError

GRACE = 60  # seconds the other workers get to end by themselves once one has failed
# What a worker exits with when it stopped for something a restart cures (a preemption, a lost peer): TFJob's
# `restartPolicy: ExitCode` retries codes >= 128, and 143 is SIGTERM's own (128 + 15).
RESTART = 143


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback now (all held open while choosing, so none repeats)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("localhost", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def _relay(stream: IO[bytes], prefix: str, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()


def exit_code(process: subprocess.Popen) -> int:
    """A shell's view of it: a worker killed by signal N ended with 128 + N."""
    code = process.returncode
    return 128 - code if code < 0 else code


def launch(args: list[str], workers: int) -> int:
    """Run `epilogue-train ARGS` as `workers` local workers until all end; the first non-zero exit code (in
    worker order) is the cluster's."""
    ports = free_ports(workers)
    processes = [subprocess.Popen([sys.executable, "-m", "trainer.cli", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "TF_CONFIG": tf_config(ports, i)}) for i in range(workers)]
    print(f"local cluster: {workers} workers on localhost ports {', '.join(map(str, ports))} (pids "
          f"{', '.join(str(p.pid) for p in processes)}); Ctrl-C stops them all at one step", flush=True)
    lock = threading.Lock()
    relays = [threading.Thread(target=_relay, args=(p.stdout, f"[worker {i}] ", lock), daemon=True)
              for i, p in enumerate(processes)]
    for relay in relays:
        relay.start()

    def forward(sig: int, _frame) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(sig)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait(processes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for relay in relays:
        relay.join(timeout=10)
    return next((code for code in map(exit_code, processes) if code), 0)


def _wait(processes: list[subprocess.Popen]) -> None:
    """Wait for every worker; once one has failed, the others get GRACE seconds to notice, then are killed."""
    failed_at = None
    while any(p.poll() is None for p in processes):
        if failed_at is None and any(p.returncode for p in processes if p.returncode is not None):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > GRACE:
            for i, process in enumerate(processes):
                if process.poll() is None:
                    print(f"local cluster: worker {i} still running {GRACE} s after another failed: killing it",
                          flush=True)
                    process.kill()
        time.sleep(0.2)


class ClusterStopped(Exception):  # noqa: N818 (not an error: the cluster stopped as asked)
    """Every worker has its checkpoint of the same step: end the process now, with `code`."""

    code = RESTART


class PeerLost(UserError):
    """Another worker died or stopped answering: this one can't go on, and a restart of the job resumes."""

    code = RESTART

    def __init__(self, peer: str, step: int, checkpoint: str | None):
        resume = f"resume from step {checkpoint.rsplit('-', 1)[1]}" if checkpoint else "start again"
        super().__init__(f"{peer} stopped responding at step {step}; restart the job to {resume}")
