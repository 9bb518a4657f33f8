#!/usr/bin/env python3
"""Peak resident memory of each benchmark workload: xgrad against the libtorch anchor.

    python3 bench/peak_memory.py [--xgrad build/bench/xgrad_bench]
                                 [--anchor build/torch-anchor/torch_anchor_cpp] [--workloads a,b]

Each workload runs alone in a fresh process (--quick, 2 threads) and its peak resident set size
(ru_maxrss from wait4) is read when it exits: model, data, optimizer and the training steps, as a
user's program would hold them. The anchor runs every implementation (fused, composed) in both of
its environments (tuned, asis), and the table keeps PyTorch's smallest peak: the bar xgrad has to
stay under. `make compare` builds the anchor under build/torch-anchor.
"""
import argparse
import os
import subprocess
import sys

WORKLOADS = ["lstm_lm", "small_lstm", "gru_imdb", "cnn_gru", "bilstm_tagger", "dglstm", "mha"]


def peak_mib(command):
    """Runs `command` to the end and returns its peak resident set size in MiB."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"peak_memory: {' '.join(command)} failed ({child.returncode}): {child.stderr.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--xgrad", default="build/bench/xgrad_bench")
    p.add_argument("--anchor", default="build/torch-anchor/torch_anchor_cpp")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    a = p.parse_args()
    common = ["--threads", "2", "--quick"]
    print(f"{'workload':<15}{'libtorch MiB (config)':>32}{'xgrad MiB':>12}{'ratio':>8}")
    for w in a.workloads.split(","):
        mine = peak_mib([a.xgrad, "--workloads", w] + common)
        theirs = min((peak_mib([a.anchor, "--workloads", w, "--impl", impl, "--env", env] + common), f"{impl} {env}")
                     for impl in ("fused", "composed") for env in ("tuned", "asis"))
        print(f"{w:<15}{theirs[0]:>14.0f} ({theirs[1]:>14}){mine:>14.0f}{mine / theirs[0]:>8.2f}", flush=True)
    print("(peak resident set size; ratio < 1: xgrad uses less)")


if __name__ == "__main__":
    main()
