"""`fer-edge bench --device rpi` on a fleet: several hosts in parallel, one table.

Two real OpenSSH servers on localhost (ports picked here): server A accepts our key,
server B knows only another key (the "wrong key" case); a third host is a closed port.
The "device" Python is this venv's interpreter, as in test_bench_remote.py.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from fer_edge.bench import schema
from fer_edge.bench.core import BenchOptions, run_bench
from fer_edge.bench.fleet import Host, bench_fleet, parse_host, read_hosts_file
from fer_edge.cli.main import main as cli
from fer_edge.errors import ConfigError

from sshd_support import client_alias, free_port, keygen, start_sshd


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    keygen(d / "id_user")
    keygen(d / "id_other")
    good = start_sshd(d / "a", (d / "id_user.pub").read_text())
    wrong_key = start_sshd(d / "b", (d / "id_other.pub").read_text())  # refuses id_user
    known = d / "known_hosts"
    known.write_text(good.known_hosts_line + "\n" + wrong_key.known_hosts_line + "\n")
    (d / "ssh_config").write_text(
        client_alias("fer-pi-a", good.port, d / "id_user", known)
        + client_alias("fer-pi-b", wrong_key.port, d / "id_user", known)
        # plain 127.0.0.1[:PORT] hosts use the same key and known_hosts
        + f"Host 127.0.0.1\n  IdentitiesOnly yes\n  IdentityFile {d / 'id_user'}\n"
          f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n"
    )
    yield SimpleNamespace(dir=d, config=str(d / "ssh_config"), good=good.port, wrong_key=wrong_key.port)
    good.stop()
    wrong_key.stop()


def test_fleet_hosts_file_one_row_per_device_and_bundle(fleet, tflite_bundles, tmp_path):
    closed = free_port()
    hosts_file = tmp_path / "pis.txt"
    hosts_file.write_text(f"# the fleet\nfer-pi-a rpi4\n\nfer-pi-b   # wrong key\n127.0.0.1:{closed} rpi5\n")
    hosts = read_hosts_file(hosts_file)
    assert hosts == [Host("fer-pi-a", None, "rpi4"), Host("fer-pi-b"), Host("127.0.0.1", closed, "rpi5")]
    opts = BenchOptions(devices=("rpi",), hosts=tuple(hosts), ssh_config=fleet.config, remote_python=sys.executable,
                        remote_dir=str(fleet.dir / "remote-home" / "bench"), threads=1, warmup=2, runs=10, batch=4,
                        limit=100, worker_timeout=120)
    rep = run_bench([str(tflite_bundles["fp32"]), str(tflite_bundles["int8"])], opts)
    by_machine: dict[str, list] = {}
    for r in rep.results:
        by_machine.setdefault(r.machine, []).append(r)
    assert list(by_machine) == ["rpi:fer-pi-a", "rpi:fer-pi-b", f"rpi:127.0.0.1:{closed}"]  # hosts in file order
    for machine, rows in by_machine.items():
        assert sorted(r.precision for r in rows) == ["fp32", "int8"]  # one row per device x bundle
    ok = by_machine["rpi:fer-pi-a"]
    assert all(r.status == schema.OK and r.latency.p50_ms > 0 and r.eval_n == 100 for r in ok), [r.error for r in ok]
    assert all(r.status == schema.FAILED and "authentication to fer-pi-b" in r.error for r in by_machine["rpi:fer-pi-b"])
    assert all(r.status == schema.FAILED and "cannot reach" in r.error for r in by_machine[f"rpi:127.0.0.1:{closed}"])
    # The device that ran records its environment; failed ones record none.
    env = rep.environments["rpi:fer-pi-a"]
    assert env["python"] and "numpy" in env["packages"]
    assert "rpi:fer-pi-b" not in rep.environments
    assert rep.settings["hosts"][2] == {"name": "127.0.0.1", "port": closed, "profile": "rpi5"}


def test_fleet_cli_repeated_host_with_ports(fleet, tflite_bundles, tmp_path):
    md = tmp_path / "fleet.md"
    res = CliRunner().invoke(cli, [
        "bench", str(tflite_bundles["int8"]), "--device", "rpi", "--host", f"127.0.0.1:{fleet.good}",
        "--host", f"127.0.0.1:{fleet.wrong_key}", "--ssh-config", fleet.config, "--remote-python", sys.executable,
        "--threads", "1", "--warmup", "2", "--runs", "10", "--batch", "4", "--limit", "50", "--json", "-",
        "--md", str(md)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = {r["machine"]: r for r in out["results"]}
    good, bad = f"rpi:127.0.0.1:{fleet.good}", f"rpi:127.0.0.1:{fleet.wrong_key}"
    assert set(rows) == {good, bad}
    assert rows[good]["status"] == "ok" and rows[bad]["status"] == "failed"
    assert set(out["environments"]) == {"host", good}
    text = md.read_text()
    assert good in text and bad in text and "authentication to 127.0.0.1" in text


def test_fleet_hosts_run_in_parallel(monkeypatch):
    """Each host's bench runs in its own thread: two hosts must be inside bench_remote at once."""
    import fer_edge.bench.remote as remote

    both_inside = threading.Barrier(2, timeout=10)

    def fake_bench_remote(targets, ws, first_model, options, say):
        both_inside.wait()  # raises BrokenBarrierError if the hosts ran one after the other
        return [], {remote.machine_key(options): {"host": options.host}}

    monkeypatch.setattr(remote, "bench_remote", fake_bench_remote)
    opts = BenchOptions(devices=("rpi",), hosts=(Host("pi@a"), Host("pi@b", 2222)))
    rows, envs = bench_fleet([], None, None, opts, lambda m: None)
    assert rows == [] and list(envs) == ["rpi:pi@a", "rpi:pi@b:2222"]


@pytest.mark.parametrize("line, why", [
    ("pi@a rpi4 extra", "expected USER@HOST[:PORT] [PROFILE]"),
    ("pi@a:99999", "outside 1-65535"),
    ("pi@a:port", "expected USER@HOST[:PORT]"),
    ("pi@@a", "expected USER@HOST[:PORT]"),
    ("pi@a rpi9", "unknown profile 'rpi9'"),
    ("pi@a cpu", "unknown profile 'cpu'"),
])
def test_hosts_file_malformed_line_names_file_and_line(tmp_path, line, why):
    f = tmp_path / "pis.txt"
    f.write_text(f"pi@ok\n# comment\n{line}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))}:3: .*{re.escape(why)}"):
        read_hosts_file(f)


def test_hosts_cli_errors_are_one_line(tmp_path):
    f = tmp_path / "pis.txt"
    f.write_text("pi@a\npi@b:22 rpi5 oops\n")
    for args, msg in (
        (["--hosts", str(f)], f"error: {f}:2: expected USER@HOST[:PORT] [PROFILE], got 'pi@b:22 rpi5 oops'"),
        (["--hosts", str(tmp_path / "none.txt")], f"error: cannot read hosts file {tmp_path / 'none.txt'}"),
        (["--host", "pi@a", "--host", "pi@a"], "error: host pi@a is given twice"),
        (["--host", "pi@a:0"], "error: --host: port 0 is outside 1-65535"),
    ):
        res = CliRunner().invoke(cli, ["bench", "some-bundle", "--device", "rpi", *args])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip().startswith(msg) and len(res.stderr.strip().splitlines()) == 1, res.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="no hosts"):
        read_hosts_file(empty)


def test_parse_host_forms():
    assert parse_host("pi@raspberrypi.local") == Host("pi@raspberrypi.local")
    assert parse_host("pi@10.0.0.7:2222") == Host("pi@10.0.0.7", 2222)
    assert parse_host("kitchen-pi") == Host("kitchen-pi")
    assert parse_host("pi@[fe80::1]:22") == Host("pi@fe80::1", 22)
