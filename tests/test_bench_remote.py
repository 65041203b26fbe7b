"""`fer-edge bench --device rpi` end to end against a real OpenSSH server on localhost.

The test starts its own sshd (temporary host key, user key, known_hosts and client
config, a free non-default port) and points the bench at it through an ssh_config
alias; the "device" Python is this venv's interpreter (numpy + ai-edge-litert), the
missing-package case a bare venv without either.
"""

from __future__ import annotations

import sys
import venv

import pytest

from fer_edge.bench import schema
from fer_edge.bench.core import BenchOptions, run_bench
from fer_edge.bench.ssh import RemoteError

from sshd_support import client_alias, free_port, keygen, start_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    keygen(d / "id_user")
    keygen(d / "id_stranger")  # a key the server does not know
    server = start_sshd(d / "server", (d / "id_user.pub").read_text())
    (d / "known_hosts").write_text(server.known_hosts_line + "\n")
    (d / "ssh_config").write_text(
        client_alias("fer-pi", server.port, d / "id_user", d / "known_hosts")
        + client_alias("fer-pi-stranger", server.port, d / "id_stranger", d / "known_hosts")
        + client_alias("fer-pi-unknown-key", server.port, d / "id_user", d / "empty_known_hosts")
    )
    yield {"config": str(d / "ssh_config"), "port": server.port, "dir": d}
    server.stop()


def _opts(sshd, host="fer-pi", **kw) -> BenchOptions:
    base = dict(devices=("rpi",), host=host, ssh_config=sshd["config"], remote_python=sys.executable,
                remote_dir=str(sshd["dir"] / "remote-home" / "bench"), warmup=3, runs=20, batch=8, limit=200,
                worker_timeout=120)
    base.update(kw)
    return BenchOptions(**base)


def test_rpi_path_end_to_end(sshd, tflite_bundles):
    paths = [str(tflite_bundles["fp32"]), str(tflite_bundles["int8"])]
    rep = run_bench(paths, _opts(sshd))
    rows = [r for r in rep.results if r.device == "rpi"]
    assert len(rows) == 4  # 2 bundles x threads {1, 4}
    assert all(r.status == schema.OK for r in rows), [r.error for r in rows]
    assert {r.threads for r in rows} == {1, 4}
    env = rep.environments["rpi:fer-pi"]
    assert env["python"] and env["cpu_model"] and "numpy" in env["packages"]
    for r in rows:
        assert r.timing == schema.MEASURED  # x86 localhost: real, not emulated
        assert 0 < r.latency.p50_ms <= r.latency.p90_ms <= r.latency.p99_ms
        assert 0.0 <= r.accuracy <= 1.0 and r.eval_n == 200
        assert r.peak_rss_mb > 0 and r.first_inference_ms > 0
    # The device ran the same numbers as the host runtime: same predictions, same accuracy.
    host = run_bench(paths, BenchOptions(devices=("cpu",), threads=1, warmup=1, runs=5, batch=4, limit=200))
    by_bundle = {r.bundle: r.accuracy for r in host.results}
    for r in rows:
        assert r.accuracy == pytest.approx(by_bundle[r.bundle], abs=1e-9)
    # The remote folder is cleaned up after the run.
    assert not (sshd["dir"] / "remote-home" / "bench").exists()


def test_rpi_unreachable_host(sshd, tflite_bundles):
    with pytest.raises(RemoteError, match="cannot reach"):
        run_bench([str(tflite_bundles["int8"])], _opts(sshd, host="127.0.0.1", port=free_port(), ssh_config=None))


def test_rpi_auth_failure(sshd, tflite_bundles):
    with pytest.raises(RemoteError, match="authentication .* failed"):
        run_bench([str(tflite_bundles["int8"])], _opts(sshd, host="fer-pi-stranger"))


def test_rpi_unknown_host_key_is_refused_cli(sshd, tflite_bundles):
    """Through the CLI: one `error:` line, no traceback, non-zero exit."""
    from click.testing import CliRunner

    from fer_edge.cli.main import main as cli

    res = CliRunner().invoke(cli, ["bench", str(tflite_bundles["int8"]), "--device", "rpi", "--host", "fer-pi-unknown-key",
                                   "--ssh-config", sshd["config"], "--limit", "20"])
    assert res.exit_code == 2
    assert res.stderr.splitlines()[-1].startswith("error: host key of fer-pi-unknown-key is unknown or has changed")
    assert "Traceback" not in res.output


def test_rpi_missing_package(sshd, tflite_bundles, tmp_path):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)  # a Python with neither numpy nor a TFLite interpreter
    with pytest.raises(RemoteError, match=r"lacks numpy .* ai-edge-litert or tflite-runtime.*--setup"):
        run_bench([str(tflite_bundles["int8"])], _opts(sshd, remote_python=str(bare / "bin" / "python")))


def test_rpi_missing_python(sshd, tflite_bundles):
    with pytest.raises(RemoteError, match="not found on the device"):
        run_bench([str(tflite_bundles["int8"])], _opts(sshd, remote_python="/nonexistent/python3"))
