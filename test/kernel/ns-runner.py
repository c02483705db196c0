#!/usr/bin/env python3
"""Command runner for the kernel agreement suite. Runs inside one lab namespace (started with `ip netns exec`).

One request per line on stdin, one answer per line on stdout, until stdin closes:
  {"argv": ["nft", "-f", "..."], "input": "...", "cwd": "...", "timeout_ms": 30000}
  -> {"code": 0, "stdout": "...", "stderr": "...", "timed_out": false, "cpu_ms": 4.2}
  -> {"error": "..."} when the command cannot be started at all

Why: the suite runs a few thousand short commands (nft, iptables-restore, ip) in its lab namespaces. Started from
the test process, each one forks a large node process and goes through `ip netns exec` (a new mount namespace, /sys
remounted); started from here, it forks this small process, already inside the namespace. A command that overruns
its timeout is killed (by subprocess, by its own PID).
"""
import json
import resource
import subprocess
import sys


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def run(req):
    before = children_cpu_ms()
    try:
        r = subprocess.run(
            req["argv"],
            input=req.get("input", "").encode(),
            capture_output=True,
            cwd=req.get("cwd") or None,
            timeout=req.get("timeout_ms", 30000) / 1000,
        )
    except subprocess.TimeoutExpired as e:
        return {
            "code": 128,
            "stdout": (e.stdout or b"").decode("utf-8", "replace"),
            "stderr": (e.stderr or b"").decode("utf-8", "replace"),
            "timed_out": True,
        }
    except OSError as e:
        return {"error": str(e)}
    # A command killed by a signal: 128, as the suite's node runner reports it.
    code = r.returncode if r.returncode >= 0 else 128
    return {
        "code": code,
        "stdout": r.stdout.decode("utf-8", "replace"),
        "stderr": r.stderr.decode("utf-8", "replace"),
        "timed_out": False,
        # The command's CPU (user + sys), for the suite's summary of where its time goes.
        "cpu_ms": round(children_cpu_ms() - before, 2),
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line))
        except Exception as e:  # a malformed request: answered, so the suite's queue stays in step
            answer = {"error": "runner: %s" % e}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
