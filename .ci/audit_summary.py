"""Summarise ``pip-audit -f json`` for CI: fail only on a known vulnerability.

pip-audit reports "No known vulnerabilities found" even when it could audit nothing (every
package "not found on PyPI" because the vulnerability service is unreachable from this
network); this prints what was really audited.

Usage: python .ci/audit_summary.py AUDIT.json AUDIT.stderr  (exit 1 on a finding)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(report: Path, stderr: Path) -> int:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        deps = data["dependencies"]
    except (OSError, ValueError, KeyError, TypeError):
        message = stderr.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        print("pip-audit: could not run (" + (message[-1] if message else "no output")
              + "); dependencies not audited")
        return 0
    skipped = [d for d in deps if "skip_reason" in d]
    editable = [d for d in skipped if "editable" in d["skip_reason"]]
    unreachable = [d for d in skipped if d not in editable]
    audited = [d for d in deps if "skip_reason" not in d]
    findings = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
    for name, version, vuln in findings:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"pip-audit: {name} {version}: {vuln['id']} (fixed in {fixed})")
    if findings:
        print(f"pip-audit: {len(findings)} known vulnerabilities in {len(audited)} audited "
              "packages")
        return 1
    if not audited:
        print(f"pip-audit: vulnerability database unreachable; {len(unreachable)} packages "
              "not audited")
        return 0
    print(f"pip-audit: {len(audited)} packages audited, no known vulnerabilities"
          + (f"; {len(unreachable)} could not be audited" if unreachable else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
