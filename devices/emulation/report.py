"""benchmarks/results/arm64_emulation.md from the JSON that ``arm64_emulation.py check`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _f(x, fmt: str = ".4f") -> str:
    return "-" if x is None else format(x, fmt)


def _yes(x) -> str:
    return "-" if x is None else ("yes" if x else "**NO**")


def markdown(out: dict[str, Any]) -> str:
    lines = ["# Raspberry Pi journey and ISA paths on emulated Pi 4 / Pi 5 CPUs (qemu user-mode)", "",
             f"Command: `sudo .venv/bin/python {out['command']}` ({out['date']}, {out['minutes']} min on this 2-core x86 "
             f"machine, load average {out['host_load_average_start']} at start, {out['host_load_average_end']} at "
             f"{'the last write' if out.get('partial') else 'end'}); "
             f"{out['qemu']}.", "",
             "**Every arm64 duration below is emulated**: qemu translating ARM code on this x86 CPU, 10-100x slower "
             "than the instructions would run natively, and not proportional to a Pi's speed. None is a Raspberry Pi "
             "time; only a real Pi can measure latency and camera I/O.", ""]
    if out.get("partial"):
        lines += [f"**Partial results, written while the check ran: {out['partial']}.**", ""]
    lines += ["## Emulated CPUs", "",
              "Each profile is a qemu CPU model plus that Pi's `/proc/cpuinfo` (`devices/emulation/`), bind-mounted "
              "over the one qemu passes through from the x86 host (which crashed the runtime's CPU detection).", "",
              "| profile | board | qemu CPU | ISA | release | CPU part seen | HWCAP features seen |", "|---|---|---|---|---|---|---|"]
    for name, p in out["profiles"].items():
        for release, seen in p["seen"].items():
            feats = seen.get("error") or " ".join(seen.get("features", []))
            lines.append(f"| {name} | {p['board']} | {p['qemu_cpu']} | {p['isa']} | {release} | "
                         f"{' '.join(seen.get('cpu_part', []))} | {feats} |")
    lines += ["", "qemu's cortex-a72 also offers the crypto extensions (aes pmull sha1 sha2), which the Pi 4's BCM2711 "
              "lacks; neural-network kernels do not use them.", "",
              "Releases: " + "; ".join(f"{r}: {d}" for r, d in out["releases"].items()) + ".", ""]
    if "journey" in out:
        lines += _journey(out["journey"])
    if "isa" in out:
        lines += _isa(out["isa"])
    return "\n".join(lines) + "\n"


def _journey(j: dict[str, Any]) -> list[str]:
    lines = ["## The user's journey", "",
             f"The wheel `{j['wheel']}` built from this checkout (`pip wheel --no-deps .`) is installed in a fresh venv "
             "in each root exactly as the README's Raspberry Pi section says (`python3 -m venv ~/fer-edge-venv && "
             "~/fer-edge-venv/bin/pip install fer_edge-*.whl`; pip pulls the rest from PyPI). Then, per emulated CPU: "
             "`fer-edge doctor`, `fer-edge predict astronaut.jpg --json` (the shipped sample), "
             f"`fer-edge live --source faces.avi --headless --frames {j['frames']}` (JAFFE and CK+ faces moving over a "
             "background, one then two faces; the live tests' clip) and `fer-edge bench` of the shipped bundles "
             f"(`--threads 1`, {j['limit']} FER2013 PrivateTest faces). The same commands ran with this checkout's "
             "fer-edge on x86-64 for reference. Faces are found by YuNet (the shared weights) on both.", "",
             "### What pip installed", "", "| release | Python | install exit | install time (emulated) | packages |",
             "|---|---|---|---|---|"]
    for root in j["arm64"]:
        ins = root["install"]
        v = ins.get("versions", {})
        pk = ", ".join(f"{k} {x}" for k, x in v.get("packages", {}).items()) or ins.get("stderr_tail", "")[-300:]
        lines.append(f"| {root['release']} | {v.get('python', '-')} | {ins['exit']} | {ins['seconds']:.0f} s | {pk} |")
    lines += ["", "### Each step (exit code, emulated wall time)", "",
              "| release | Pi | doctor | predict | live | bench | probe |", "|---|---|---|---|---|---|---|"]
    for root in j["arm64"]:
        for prof, steps in root["profiles"].items():
            cells = []
            for name in ("doctor", "predict", "live", "bench", "probe"):
                s = steps.get(name, {})
                if s.get("skipped"):
                    cells.append(f"not run: {s['skipped']}")
                elif s.get("exit") == 0:
                    cells.append(f"ok, {s['seconds']:.0f} s")
                else:
                    cells.append(f"exit {s.get('exit')}: {s.get('stderr_tail', '')[-200:]}".replace("\n", " ").replace("|", "/"))
            lines.append(f"| {root['release']} | {prof} | " + " | ".join(cells) + " |")
    x86 = j["x86"]
    lines += ["", "x86-64 reference: " + ", ".join(f"{k} " + ("not run" if s.get("skipped") else f"exit {s.get('exit')}")
                                                 for k, s in x86.items()) + ".", "",
              "### Against x86-64", "",
              "| release | Pi | predict: faces, labels equal | predict: max prob diff | live: frames (x86 / arm64) | "
              "live: frames with equal labels / same face count | live: max prob diff | live: max box diff px |",
              "|---|---|---|---|---|---|---|---|"]
    for row in j["compared"]:
        p, lv = row["predict"], row["live"]
        pc = p.get("error") or f"{p['faces_arm64']} ({p['faces_x86']} on x86), {_yes(p['labels_equal'])}"
        lc = lv.get("error") or f"{lv['frames_x86']} / {lv['frames_arm64']}"
        lines.append(f"| {row['release']} | {row['profile']} | {pc} | {_f(p.get('max_prob_diff'))} | {lc} | "
                     f"{lv.get('frames_labels_equal', '-')} / {lv.get('frames_same_face_count', '-')} | "
                     f"{_f(lv.get('max_prob_diff'))} | {_f(lv.get('max_box_diff_px'), '.1f')} |")
    lines += ["", "Scores in `predict --json` and `live` lines are rounded to 4 decimals; a difference of one int8 "
              "output step of the shipped model is 1/256 = 0.0039.", "",
              "### Where arm64 and x86 part: preprocessing vs the model", "",
              "`devices/emulation/preprocess_probe.py` runs with the installed fer-edge on both machines: the bench's "
              "evaluation faces, their model input as fer-edge preprocesses them (`InputSpec.preprocess`: OpenCV "
              "bilinear resize of the uint8 face), the shipped model's probabilities, and on arm64 also the "
              "probabilities for x86's model input.", "",
              "| release | Pi | faces | faces equal | input pixels differing | max input diff (grey levels) | "
              "predictions differing | max prob diff | same input: bit-identical | same input: max prob diff |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in j["compared"]:
        q = row.get("preprocessing", {})
        if "error" in q:
            lines.append(f"| {row['release']} | {row['profile']} | {q['error'][-200:]} |" + " - |" * 7)
            continue
        lines.append(f"| {row['release']} | {row['profile']} | {q['faces']} | {_yes(q['faces_equal'])} | "
                     f"{q['input_pixels_differing']:.1%} | {q['max_input_diff']:g} | {q['predictions_differing']} | "
                     f"{q['max_prob_diff']:.4f} | {'yes' if q['same_input_bit_identical'] else 'no'} | "
                     f"{q['same_input_max_prob_diff']:.2e} |")
    probes = [row["preprocessing"] for row in j["compared"] if "error" not in row.get("preprocessing", {"error": 1})]
    if any(q["input_pixels_differing"] > 0 for q in probes):
        worst = max(probes, key=lambda q: (q["same_input_predictions_differing"], q["same_input_max_prob_diff"]))
        lines += ["", f"Given the same model input, {worst['same_input_predictions_differing']} of {worst['faces']} "
                  f"predictions differ between arm64 and x86 (probabilities within {worst['same_input_max_prob_diff']:.2e}, "
                  "the worst run). The model input differs: OpenCV's bilinear resize of uint8 images rounds differently "
                  f"on its x86 and ARM SIMD paths (at most {max(q['max_input_diff'] for q in probes):g} grey level), "
                  "and that is what moves the predictions in the columns before."]
    lines += ["",
              "### Local bench of the shipped bundles", "",
              "| release | Pi | bundle | backend | status | accuracy arm64 | accuracy x86 | n | p50 ms (emulated) | p50 ms x86 | "
              "timing label | version | error |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in j["compared"]:
        b = row["bench"]
        if isinstance(b, dict):
            lines.append(f"| {row['release']} | {row['profile']} | - | - | {b['error']} |" + " - |" * 8)
            continue
        for r in b:
            err = (r["error"] or "").replace("|", "/")[:160]
            lines.append(f"| {row['release']} | {row['profile']} | {r['bundle']} | {r['backend']} | {r['status']} | {_f(r['accuracy_arm64'])} | "
                         f"{_f(r['accuracy_x86'])} | {r['eval_n'] or '-'} | {_f(r['p50_ms_emulated'], '.2f')} | "
                         f"{_f(r['p50_ms_x86'], '.3f')} | {r['timing'] if r['status'] == 'ok' else '-'} | {r['backend_version'] or '-'} | {err} |")
    doctor = [(root["release"], prof, steps["doctor"]) for root in j["arm64"] for prof, steps in root["profiles"].items()
              if steps.get("doctor", {}).get("stdout")]
    if doctor:
        lines += ["", "### `fer-edge doctor`", ""]
        for release, prof, s in doctor:
            lines += [f"{release} {prof} (exit {s['exit']}):", "", "```", s["stdout"].strip()[-3000:], "```", ""]
    return lines + [""]


def _isa(r: dict[str, Any]) -> list[str]:
    lines = ["## Each ISA path against x86-64", "",
             f"The bench runner (`fer_edge/bench/runner.py`, what `fer-edge bench --device rpi` copies to a Pi) scores "
             f"each bundle on the same {r['limit']} FER2013 PrivateTest faces (`{r['faces']}`, a fixed random subset), staged by bench's own "
             "code, with one thread; the x86 reference uses the same interpreter version in an x86 venv.", ""]
    name = lambda path: r.get("names", {}).get(path, Path(path).name)  # noqa: E731
    for bundle, what in r.get("bundle_sources", {}).items():
        lines.append(f"- {name(bundle)}: {what}")
    lines += ["", "| bundle | release | Pi | interpreter | n | predictions equal | top-1 agreement | max abs prob diff | "
              "mean abs prob diff | bit-identical |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["comparison"]:
        lines.append(f"| {name(c['bundle'])} | {c['release']} | {c['profile']} | {c['interpreter']} | {c['n']} | "
                     f"{_yes(c['predictions_equal'])} | {c['top1_agreement']:.4f} | {c['max_abs_prob_diff']:.2e} | "
                     f"{c['mean_abs_prob_diff']:.2e} | {'yes' if c['bit_identical'] else 'no'} |")
    if r.get("cross_profile"):
        lines += ["", "Pi 4 vs Pi 5 CPU model (same root and interpreter):", "",
                  "| bundle | release | interpreter | bit-identical | top-1 agreement | max abs prob diff |",
                  "|---|---|---|---|---|---|"]
        for c in r["cross_profile"]:
            lines.append(f"| {name(c['bundle'])} | {c['release']} | {c['interpreter']} | "
                         f"{'yes' if c['bit_identical'] else 'no'} | {c['top1_agreement']:.4f} | {c['max_abs_prob_diff']:.2e} |")
    lines += ["", "### Runs", "", "| run | Python / machine | bundle | status | accuracy | p50 ms | timing | interpreter | "
              "wall time | error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, run in r["runs_by"].items():
        if not run["ok"]:
            lines.append(f"| {key} | - | - | failed | - | - | - | - | {run['seconds']:.0f} s | "
                         f"{run['error'][-300:].replace('|', '/').replace(chr(10), ' ')} |")
            continue
        env = run["environment"]
        for row in run["rows"]:
            lines.append(f"| {key} | {env['python']} / {env['machine']} | {name(row['bundle'])} | {row['status']} | "
                         f"{_f(row['accuracy'])} | {_f(row['p50_ms'], '.3f')} | {row['timing']} | "
                         f"{row['backend_version'] or '-'} | {run['seconds']:.0f} s | {(row['error'] or '')[:160]} |")
    lines += ["", "### Environments", ""]
    for key, run in r["runs_by"].items():
        if run["ok"]:
            env = run["environment"]
            pk = ", ".join(f"{n} {v}" for n, v in env.get("packages", {}).items())
            lines.append(f"- {key}: {env['os']}, Python {env['python']}, {env['machine']}, CPU as seen: {env['cpu_model']}; "
                         f"{pk}; timing label: {env.get('timing')}")
    return lines + [""]
