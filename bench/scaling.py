#!/usr/bin/python3
"""Issue 17's scaling sweep and decoding latency: xgrad beside libtorch, in the same run.

    /usr/bin/python3 bench/scaling.py [--xgrad build/bench/xgrad_bench] [--only sweep|flatness|decode]
                                      [--quick] [--rounds 1] [--cells lstm,gru] [--axes T,H,B]
                                      [--plot build/plots/scaling.png] [--xgrad-threads 2] [--interleave 30]

Sweep: a train step (zero grads, forward, backward, SGD) of x [B, T, H] -> 1-layer LSTM / GRU
(H -> H) -> mean(y^2), one axis varied at a time around T = 100, H = 128, B = 32
(`xgrad_bench --sweep` and its twin `torch_twin --sweep`). Every point runs in a fresh process on
each side, so that its peak resident memory (VmHWM) is its own, libtorch then xgrad, so both see
the same machine load. libtorch runs tuned with 1 and 2 threads and keeps its best (as
../shared/bench/compare.py does; its smallest peak memory, as bench/peak_memory.py); xgrad runs
once in the environment as given. Prints a markdown table, the linearity verdict of issue 17 (time
per token flat within 15 % from T = 50 to 800; memory linear in T, with its slope per token) and
draws items/s against each axis (matplotlib, PNG). The time verdict comes from a separate paired
run (--interleave R rounds): one process per side and cell runs all the T back to back in every
round, so that points compare seconds apart, not minutes; the sweep's own processes, minutes apart
on a machine that drifts by a third, give the points' best and median over --rounds for reference.

Decode: batch-1 greedy generation from a 2-layer LSTM character model (`decode` workload of both
binaries); libtorch keeps its best of NoGradGuard / InferenceMode, tuned / as-is, 1 / 2 threads;
prints us per token on both sides and the ratio libtorch / xgrad (issue 17's target: >= 3).

The twin (bench/torch_twin, Debian's libtorch-dev) is built under build/torch-twin/ of the
current directory. The machine is shared and noisy: only ratios from one run mean much.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The grid of `xgrad_bench --sweep` and `torch_twin --sweep` (both hold it too; keep the three in step).
GRID = {"T": [25, 50, 100, 200, 400, 800], "H": [32, 64, 128, 256, 512, 1024], "B": [1, 2, 4, 8, 16, 32, 64, 128]}
SWEEP_CONFIGS = [("tuned", 1), ("tuned", 2)]
DECODE_CONFIGS = [("tuned", 1), ("tuned", 2), ("asis", 1), ("asis", 2)]
SIDES = ("libtorch", "xgrad")


def run_jsonl(cmd, timeout=900):
    """The JSON lines a command prints ([] and a note on stderr when it fails)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"  ! {' '.join(cmd)}: {e}", file=sys.stderr)
        return []
    if out.returncode != 0:
        print(f"  ! {' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()[-400:]}", file=sys.stderr)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def build_twin():
    """bench/torch_twin built under build/torch-twin/ (configured once; brought up to date each run)."""
    build = os.path.join(os.getcwd(), "build", "torch-twin")
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        configure = subprocess.run(["cmake", "-S", os.path.join(HERE, "torch_twin"), "-B", build,
                                    "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
        if configure.returncode != 0:
            sys.exit(f"scaling: configuring the libtorch twin failed (libtorch-dev?):\n{configure.stderr[-2000:]}")
    print("building the libtorch twin (one translation unit; a few minutes the first time)", file=sys.stderr)
    make = subprocess.run(["cmake", "--build", build, "-j2"], capture_output=True, text=True)
    if make.returncode != 0:
        sys.exit(f"scaling: building the libtorch twin failed:\n{make.stdout[-2000:]}{make.stderr[-2000:]}")
    return os.path.join(build, "torch_twin")


# --- sweep ------------------------------------------------------------------------------------------

def sweep(a, twin):
    """({(side, cell, axis, value): {"items_per_s", "peak_rss_mib", "config"}}, each side's best,
    {(side, cell, axis, value): [items/s of each round]}). A round passes over every point once, so
    that a slow spell of the shared machine (it drifts by up to a third over minutes) hits one
    round's points, and the other rounds give each point its undisturbed best."""
    quick = ["--quick"] if a.quick else []
    best, rounds = {}, {}

    def keep(side, key, rows, config):
        top = 0
        for r in rows:
            b = best.setdefault((side,) + key, {"items_per_s": 0, "peak_rss_mib": float("inf"), "config": ""})
            if r["items_per_s"] > b["items_per_s"]:
                b.update(items_per_s=r["items_per_s"], config=config)
            b["peak_rss_mib"] = min(b["peak_rss_mib"], r.get("peak_rss_mib", float("inf")))
            top = max(top, r["items_per_s"])
        return top

    for n in range(a.rounds):
        for axis in a.axes:
            for value in GRID[axis]:
                for cell in a.cells:
                    key = (cell, axis, value)
                    point = ["--sweep", "--cells", cell, "--axes", axis, "--points", str(value)] + quick
                    torch = max(keep("libtorch", key, run_jsonl([twin, *point, "--env", env, "--threads", str(threads)]),
                                     f"{env}:{threads}") for env, threads in SWEEP_CONFIGS)
                    mine = keep("xgrad", key, run_jsonl([a.xgrad, *point, "--threads", str(a.xgrad_threads)]), "")
                    for side, got in zip(SIDES, (torch, mine)):
                        if got > 0:
                            rounds.setdefault((side,) + key, []).append(got)
                    print(f"  round {n + 1}: {cell} {axis} = {value}: libtorch {torch:.0f}, xgrad {mine:.0f} tokens/s",
                          file=sys.stderr)
    return best, rounds


def dims(axis, value):
    point = {"T": 100, "H": 128, "B": 32}
    point[axis] = value
    return point


def print_sweep_table(a, best):
    print("\n### Scaling sweep: train step, tokens/s (B*T per step)\n")
    print("| cell | axis | T | H | B | libtorch tok/s | xgrad tok/s | xgrad / libtorch | libtorch µs/tok | xgrad µs/tok "
          "| libtorch MiB | xgrad MiB |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for axis in a.axes:
        for cell in a.cells:
            for value in GRID[axis]:
                t, x = (best.get((s, cell, axis, value)) for s in SIDES)
                d = dims(axis, value)
                cells = [cell, axis, d["T"], d["H"], d["B"]]
                cells += [f"{t['items_per_s']:.0f} ({t['config']})" if t else "-", f"{x['items_per_s']:.0f}" if x else "-"]
                cells += [f"{x['items_per_s'] / t['items_per_s']:.2f}" if t and x else "-"]
                cells += [f"{1e6 / s['items_per_s']:.2f}" if s else "-" for s in (t, x)]
                cells += [f"{s['peak_rss_mib']:.0f}" if s and s["peak_rss_mib"] != float("inf") else "-" for s in (t, x)]
                print("| " + " | ".join(map(str, cells)) + " |")
    print("\n(libtorch: torch::nn::LSTM/GRU, best of tuned 1 and 2 threads, its config in brackets; "
          f"xgrad: --threads {a.xgrad_threads}, environment as given; MiB: the point's peak resident set)")


def linear_fit(xs, ys):
    """Least squares y = slope * x + intercept, and R^2."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return slope, intercept, 1 - ss_res / ss_tot if ss_tot else 1.0


def print_linearity(a, best, rounds):
    """Issue 17's criteria on the T axis, T = 50..800, from the sweep's separate processes. Peak memory
    linear in T (the verdict): a line through the points (slope in KiB per token), no point off it
    by more than 10 % of the growth from T = 50 to 800. Time per token, for reference only (the
    verdict is print_flatness's paired run): the spread (max / min - 1) of each point's best over
    the rounds, of its median over the rounds, and within each round. Processes minutes apart on
    this machine differ by up to a third, which is why they give no verdict on 15 %."""
    if "T" not in a.axes:
        return
    ts = [t for t in GRID["T"] if 50 <= t <= 800]
    print(f"\n### Linearity in T (T = 50..800, H = 128, B = 32; {a.rounds} round{'s' if a.rounds > 1 else ''})\n")
    print("| side | cell | µs/token min..max | spread of bests | spread of medians | spread in each round | "
          "memory slope KiB/token | segment slopes KiB/token | R² | worst point off the line | memory linear (<= 10 %) |")
    print("|---|---|--:|--:|--:|---|--:|---|--:|--:|---|")
    for side in SIDES:
        for cell in a.cells:
            rows = [best.get((side, cell, "T", t)) for t in ts]
            runs = [rounds.get((side, cell, "T", t), []) for t in ts]
            if not all(rows) or not all(runs):
                continue
            us = [1e6 / r["items_per_s"] for r in rows]
            spread = max(us) / min(us) - 1
            medians = [statistics.median(r) for r in runs]
            per_round = [max(r[i] for r in runs) / min(r[i] for r in runs) - 1 for i in range(min(len(r) for r in runs))]
            cells = [side, cell, f"{min(us):.2f}..{max(us):.2f}", f"{100 * spread:.1f} %",
                     f"{100 * (max(medians) / min(medians) - 1):.1f} %", " ".join(f"{100 * s:.0f} %" for s in per_round)]
            mem = [r["peak_rss_mib"] for r in rows]
            if all(m != float("inf") for m in mem):
                tokens = [32 * t for t in ts]
                slope, intercept, r2 = linear_fit(tokens, mem)
                growth = slope * (tokens[-1] - tokens[0])
                off = max(abs(m - slope * n - intercept) for n, m in zip(tokens, mem)) / growth if growth > 0 else float("inf")
                segments = [1024 * (m1 - m0) / (n1 - n0) for n0, n1, m0, m1 in zip(tokens, tokens[1:], mem, mem[1:])]
                cells += [f"{1024 * slope:.2f}", " ".join(f"{s:.1f}" for s in segments), f"{r2:.4f}",
                          f"{100 * off:.1f} %", "yes" if off <= 0.10 else "NO"]
            else:
                cells += ["-"] * 5
            print("| " + " | ".join(cells) + " |")
    print("\n(µs/token: each point's best over the rounds, as in the table above; spread of bests: slowest over"
          "\n fastest of those - 1; the time spreads are for reference, the verdict on time is the interleaved run's"
          "\n below; spread of medians, in each round: the same for each point's median over the rounds, and within"
          "\n one pass over T; the memory line is fitted to peak MiB against tokens B*T; segment slopes: between"
          "\n neighbouring T; worst point off the line: as a share of the growth 50 -> 800)")


def flatness(a, twin):
    """{(side, config, cell): {T: [µs per token in each round]}} from one process per side, config and
    cell that times the T axis interleaved (`--sweep --axes T --interleave R`: every round runs all
    six T back to back, each for about as long as one T = 800 step; bench/timing.hpp)."""
    out = {}
    for cell in a.cells:
        runs = [("libtorch", f"{env}:{threads}", [twin, "--env", env, "--threads", str(threads)])
                for env, threads in SWEEP_CONFIGS]
        runs.append(("xgrad", "", [a.xgrad, "--threads", str(a.xgrad_threads)]))
        for side, config, cmd in runs:
            rows = run_jsonl(cmd + ["--sweep", "--axes", "T", "--cells", cell, "--interleave", str(a.interleave)])
            out[(side, config, cell)] = {r["T"]: [1000 * ms / (r["B"] * r["T"]) for ms in r["step_ms_rounds"]] for r in rows}
            print(f"  interleaved T axis: {side} {config} {cell}: {len(rows)} points x {a.interleave} rounds", file=sys.stderr)
    return out


def print_flatness(a, runs):
    """Issue 17's time per token flat within 15 % (T = 50..800), from the interleaved runs: in each
    round, each point's µs per token over the geometric mean of the round's points (so that what the
    machine does to a whole round cancels); each point's median of that over the rounds; the spread
    of those medians (slowest over fastest - 1) is the verdict. For reference, the spread of each
    point's plain median over the rounds, and the median of the spreads within one round."""
    ts = [t for t in GRID["T"] if 50 <= t <= 800]
    print(f"\n### Time per token in T, interleaved (T = 50..800, H = 128, B = 32; {a.interleave} rounds in one process)\n")
    print("| side | cell | µs/token at T = " + ", ".join(map(str, ts)) + " (medians) | relative to the round (medians) "
          "| spread, paired | time flat (<= 15 %) | spread of plain medians | median spread within a round |")
    print("|---|---|---|---|--:|---|--:|--:|")
    for (side, config, cell), points in runs.items():
        if not all(t in points for t in ts):
            continue
        us = [points[t] for t in ts]  # [point][round]
        rounds = range(min(len(u) for u in us))
        rel = [[us[i][r] / statistics.geometric_mean([u[r] for u in us]) for r in rounds] for i in range(len(ts))]
        rel_med = [statistics.median(x) for x in rel]
        plain_med = [statistics.median(u) for u in us]
        within = statistics.median(max(u[r] for u in us) / min(u[r] for u in us) - 1 for r in rounds)
        paired = max(rel_med) / min(rel_med) - 1
        name = f"{side} ({config})" if config else side
        print(f"| {name} | {cell} | {' '.join(f'{m:.2f}' for m in plain_med)} | {' '.join(f'{m:.3f}' for m in rel_med)} "
              f"| {100 * paired:.1f} % | {'yes' if paired <= 0.15 else 'NO'} | {100 * (max(plain_med) / min(plain_med) - 1):.1f} % "
              f"| {100 * within:.1f} % |")
    print("\n(each side, config and cell in one process: every round runs the six T (25 included, not in the verdict)"
          "\n back to back, each repeated to about one T = 800 step's time, the first point rotating; relative: a point's"
          "\n µs/token over the geometric mean of its round's points 50..800; spread, paired: slowest over fastest of"
          "\n those medians - 1, the verdict)")


def plot(a, best):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, panels = plt.subplots(1, len(a.axes), figsize=(5 * len(a.axes), 4.2), squeeze=False)
    for panel, axis in zip(panels[0], a.axes):
        for side, color in zip(SIDES, ("tab:orange", "tab:blue")):
            for cell, style in zip(a.cells, ("-o", "--s")):
                pts = [(v, best[(side, cell, axis, v)]["items_per_s"]) for v in GRID[axis] if (side, cell, axis, v) in best]
                if pts:
                    panel.plot(*zip(*pts), style, color=color, label=f"{side} {cell.upper()}")
        fixed = ", ".join(f"{k} = {v}" for k, v in dims(axis, None).items() if k != axis)
        panel.set(xscale="log", yscale="log", xlabel=axis, ylabel="tokens/s (train step)", title=f"{axis} varied ({fixed})")
        panel.set_xticks(GRID[axis], [str(v) for v in GRID[axis]])
        panel.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        panel.grid(True, alpha=0.3)
        panel.legend(fontsize=8)
    fig.suptitle("xgrad vs libtorch: LSTM / GRU train step (float32, batch-first)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(a.plot)), exist_ok=True)
    fig.savefig(a.plot, dpi=110)
    print(f"\nplot: {a.plot}")


# --- decode -----------------------------------------------------------------------------------------

def decode(a, twin):
    """{(side, impl, H): (us per token, config)}, each the best over rounds (and libtorch's configs)."""
    quick = ["--quick"] if a.quick else []
    best = {}
    for _ in range(a.rounds):
        runs = [("libtorch", [twin, "--workloads", "decode", "--env", env, "--threads", str(t)], f"{env}:{t}")
                for env, t in DECODE_CONFIGS]
        runs.append(("xgrad", [a.xgrad, "--workloads", "decode", "--threads", str(a.xgrad_threads)], ""))
        for side, cmd, config in runs:
            for r in run_jsonl(cmd + quick):
                key = (side, r["impl"], r["H"])
                if key not in best or r["us_per_token_median"] < best[key][0]:
                    best[key] = (r["us_per_token_median"], config)
    return best


def print_decode_table(best):
    print("\n### Decoding latency: batch 1, greedy, 2-layer LSTM char model (vocab 96, embed 32), µs per token\n")
    impls = {side: sorted({k[1] for k in best if k[0] == side}) for side in SIDES}
    head = [f"libtorch {i}" for i in impls["libtorch"]] + [f"xgrad {i}" for i in impls["xgrad"]]
    print("| H | " + " | ".join(head) + " | libtorch best | xgrad best | libtorch / xgrad |")
    print("|--:|" + "--:|" * (len(head) + 3))
    for H in sorted({k[2] for k in best}):
        cells = [str(H)]
        cells += [f"{best[('libtorch', i, H)][0]:.1f} ({best[('libtorch', i, H)][1]})" if ("libtorch", i, H) in best else "-"
                  for i in impls["libtorch"]]
        cells += [f"{best[('xgrad', i, H)][0]:.1f}" if ("xgrad", i, H) in best else "-" for i in impls["xgrad"]]
        t = min((best[k] for k in best if k[0] == "libtorch" and k[2] == H), default=None)
        x = min((best[k] for k in best if k[0] == "xgrad" and k[2] == H), default=None)
        cells += [f"{t[0]:.1f}" if t else "-", f"{x[0]:.1f}" if x else "-", f"{t[0] / x[0]:.2f}" if t and x else "-"]
        print("| " + " | ".join(cells) + " |")
    print("\n(median µs per generated token over runs of 200 tokens; libtorch: torch::nn::LSTM(num_layers 2), best of "
          "env:threads in brackets;\n xgrad generate = nn::generate with a DecoderStep, loop = a hand loop under "
          "NoGradGuard; issue 17's target: libtorch / xgrad >= 3)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--xgrad", default="build/bench/xgrad_bench")
    p.add_argument("--only", choices=["sweep", "flatness", "decode"],
                   help="one measurement: the sweep (with its flatness run), the flatness run alone, or decoding (default all)")
    p.add_argument("--quick", action="store_true", help="shorter points (about a third of the time)")
    p.add_argument("--rounds", type=int, default=1, help="passes over every point; each side keeps its best")
    p.add_argument("--cells", default="lstm,gru")
    p.add_argument("--axes", default="T,H,B")
    p.add_argument("--xgrad-threads", type=int, default=2)
    p.add_argument("--interleave", type=int, default=None,
                   help="rounds of the interleaved T-axis run behind the flatness verdict (default 30, 8 with --quick; 0: none)")
    p.add_argument("--plot", default="build/plots/scaling.png", help="the sweep's PNG")
    a = p.parse_args()
    a.cells, a.axes = a.cells.split(","), a.axes.split(",")
    for c in a.cells:
        if c not in ("lstm", "gru"):
            p.error(f"unknown cell {c!r} (lstm, gru)")
    for x in a.axes:
        if x not in GRID:
            p.error(f"unknown axis {x!r} (T, H, B)")
    if a.interleave is None:
        a.interleave = 8 if a.quick else 30
    if a.interleave < 0:
        p.error("--interleave must be >= 0")
    if a.only == "flatness" and (a.interleave == 0 or "T" not in a.axes):
        p.error("--only flatness runs the T axis interleaved: it needs T in --axes and --interleave > 0")
    if a.rounds < 1:
        p.error("--rounds must be >= 1")
    if not os.access(a.xgrad, os.X_OK):
        p.error(f"no xgrad_bench at {a.xgrad} (cmake --build build --target xgrad_bench)")

    twin = build_twin()
    load = os.getloadavg()[0]
    print(f"scaling.py, {datetime.datetime.now():%Y-%m-%d %H:%M}, load average {load:.2f} "
          f"({os.cpu_count()} cores){'; the machine is busy: the ratios are noisy' if load > 1.5 else ''}")
    if a.only in (None, "sweep"):
        best, rounds = sweep(a, twin)
        print_sweep_table(a, best)
        print_linearity(a, best, rounds)
        plot(a, best)
    if a.only in (None, "sweep", "flatness") and "T" in a.axes and a.interleave > 0:
        print_flatness(a, flatness(a, twin))
    if a.only in (None, "decode"):
        print_decode_table(decode(a, twin))


if __name__ == "__main__":
    main()
