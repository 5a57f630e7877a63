"""`--scheduler`: evaluate and segment on a real Dask cluster, a scheduler and two workers on 127.0.0.1.

The processes are Dask's own (`python -m dask scheduler` / `dask worker`), on
ports the scheduler picks (port 0, its address read from its scheduler file),
one thread each, no dashboard; they are stopped at the end of the module. The
results must equal the local run's bit for bit.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from dataset_fixtures import BLUE, DM05, GREEN, RED, stripes, tiny_model
from PIL import Image

from pydeeplab.cli import main

# The test extra installs Dask: in CI its absence is a failure, elsewhere a skip.
if os.environ.get("CI", "").lower() == "true":
    import distributed  # noqa: F401
else:
    pytest.importorskip("distributed")

START_TIMEOUT = 90  # seconds for the scheduler and both workers to come up


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # Dask's processes close their connections and exit on SIGTERM
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The scheduler's address; two single-thread workers are connected to it."""
    from distributed import Client

    d = tmp_path_factory.mktemp("dask")
    sched_file = d / "scheduler.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    common = ["--no-dashboard"]
    procs = []
    logs = []

    def start(*args, name):
        log = open(d / f"{name}.log", "wb")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=d, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(sched_file), *common,
              name="scheduler")
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.exists() and time.monotonic() < deadline:
            if procs[0].poll() is not None:
                pytest.fail(f"dask scheduler exited: {(d / 'scheduler.log').read_text()}")
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for k in (1, 2):
            start("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--name", f"w{k}",
                  *common, name=f"worker{k}")
        with Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        _stop(procs[::-1])
        for log in logs:
            log.close()


@pytest.fixture
def pascal_model(tmp_path):
    p = tmp_path / "tiny21.tflite"
    p.write_bytes(tiny_model(21, red=15, green=8))
    return p


def test_voc_evaluate_on_two_workers_is_identical(cluster, voc, voc_local_json, model_path, capsys):
    rc_local, local = voc_local_json
    rc = main(["evaluate", "--model", str(model_path(DM05)), "--dataset", str(voc[0]), "--json",
               "--scheduler", cluster])
    assert rc == rc_local == 0
    assert capsys.readouterr().out == local  # the whole JSON, confusion matrix included, byte for byte
    # The work really ran on both workers, each of which loaded the model once and kept it.
    digest = hashlib.sha256(model_path(DM05).read_bytes()).hexdigest()
    loaded = _models_loaded(cluster)
    assert len(loaded) == 2 and all(v.count(digest) == 1 for v in loaded.values()), loaded


def _models_loaded(address) -> dict[str, list[str]]:
    """Worker address -> SHA-256 of each model in that worker's segmenter cache."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        # A lambda travels by value: the workers cannot import this test module.
        return client.run(lambda: [spec.sha256 for spec in
                                   __import__("pydeeplab.distributed", fromlist=["_SEGMENTERS"])._SEGMENTERS])


def _photos(folder, n=6):
    folder.mkdir()
    for k in range(n):
        colors = [RED, GREEN, BLUE][k % 3:] + [RED, GREEN, BLUE][: k % 3]
        Image.fromarray(stripes(16, 24, colors)).save(folder / f"img{k}.png")


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_segment_on_the_cluster_writes_what_a_local_run_writes_and_resumes(cluster, tmp_path, pascal_model, capsys):
    photos = tmp_path / "photos"
    _photos(photos)
    base = ["segment", str(photos), "--model", str(pascal_model), "--overlay", "--format", "npy", "-q"]
    assert main(base + ["--out", str(tmp_path / "local")]) == 0
    remote = tmp_path / "remote"
    assert main(base + ["--out", str(remote), "--scheduler", cluster]) == 0
    capsys.readouterr()
    local_files, remote_files = _tree(tmp_path / "local"), _tree(remote)
    assert sorted(local_files) == sorted(remote_files) and len(local_files) == 18
    for name, data in local_files.items():
        if name.endswith(".json"):  # timings differ; the rest does not
            a, b = json.loads(data), json.loads(remote_files[name])
            for d in (a, b):
                d.pop("timings_ms")
                d["outputs"] = {k: os.path.basename(v) for k, v in d["outputs"].items()}
            assert a == b, name
        else:
            assert data == remote_files[name], name
    # --resume: nothing is rewritten; a removed output is made again, and only that image is run.
    stamps = {p: p.stat().st_mtime_ns for p in remote.iterdir()}
    (remote / "img3_labels.npy").unlink()
    assert main(base + ["--out", str(remote), "--scheduler", cluster, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "1 of 6 images segmented" in err and "5 already done (--resume)" in err
    for p, stamp in stamps.items():
        if p.name.startswith("img3"):
            assert p.stat().st_mtime_ns != stamp
        else:
            assert p.stat().st_mtime_ns == stamp, p.name
    np.testing.assert_array_equal(np.load(remote / "img3_labels.npy"), np.load(tmp_path / "local" / "img3_labels.npy"))
    assert not [p for p in remote.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_unreachable_scheduler_is_a_clear_error(tmp_path, pascal_model, capsys, monkeypatch):
    import socket

    from pydeeplab import distributed

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 3.0)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _photos(tmp_path / "photos", n=1)
    rc = main(["segment", str(tmp_path / "photos"), "--model", str(pascal_model), "--out", str(tmp_path / "o"),
               "--scheduler", f"tcp://127.0.0.1:{port}", "-q"])
    assert rc == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
