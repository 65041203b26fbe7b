"""`fer-edge doctor`: can this machine run fer-edge well, and if not, which command fixes it.

    from fer_edge.doctor import run_doctor
    report = run_doctor()            # DoctorReport: .checks (name, status, summary, fix, details), .ok
    print(report.format())           # or report.to_dict() for machines

Standard library at import; each probe imports what it inspects. Models run in child processes.
"""

from __future__ import annotations

from .checks import FAIL, INFO, OK, WARN, Check, DoctorReport, run_doctor

__all__ = ["FAIL", "INFO", "OK", "WARN", "Check", "DoctorReport", "run_doctor"]
